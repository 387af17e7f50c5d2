package tetragon

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"

	"github.com/siemship/siemship/internal/checkpoints"
	"github.com/siemship/siemship/internal/event"
	"github.com/siemship/siemship/internal/testkit"
)

// harness runs a Source over a temporary export directory and acknowledges
// every batch it emits, recording the events.
type harness struct {
	t        *testing.T
	dir      string
	path     string
	state    string
	cfg      Config
	src      *Source
	reg      *prometheus.Registry
	cancel   context.CancelFunc
	runErr   chan error
	consumed chan struct{}
	hold     chan struct{} // when non-nil, the consumer waits on it before acking each batch
	drop     bool          // the consumer records batches but never acknowledges them (a sink that rejects everything)
	ackFirst int64         // when > 0, only the first ackFirst batches are acknowledged, the rest dropped
	budget   int64         // the shared buffer budget (buffer_bytes)
	logger   *slog.Logger  // when non-nil, the source logs here
	// prelude, when set, runs on the source before Run, with Run's channel.
	prelude  func(ctx context.Context, s *Source, out chan<- *event.Batch)
	received atomic.Int64 // batches the consumer got
	// missingWarnAfter and missingWarnEvery, when set, replace the source's.
	missingWarnAfter, missingWarnEvery time.Duration

	mu     sync.Mutex
	events []event.Event // copies
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	dir := testkit.KeptDir(t)
	return &harness{
		t:      t,
		dir:    dir,
		path:   filepath.Join(dir, "tetragon.log"),
		state:  filepath.Join(t.TempDir(), "state"),
		budget: 16 << 20,
		cfg: Config{
			MaxLineBytes:       1 << 20,
			ReadBufferBytes:    64 << 10,
			PollInterval:       20 * time.Millisecond,
			MaxBackups:         5,
			StartAt:            "oldest",
			CheckpointInterval: 50 * time.Millisecond,
		},
	}
}

func (h *harness) start() {
	h.t.Helper()
	store, err := checkpoints.Open(h.state)
	if err != nil {
		h.t.Fatal(err)
	}
	cfg := h.cfg
	cfg.Path = h.path
	h.reg = prometheus.NewRegistry()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if h.logger != nil {
		log = h.logger
	}
	h.src = New("tetragon", cfg, store, semaphore.NewWeighted(h.budget), h.reg, log)
	if h.missingWarnAfter > 0 {
		h.src.missingWarnAfter, h.src.missingWarnEvery = h.missingWarnAfter, h.missingWarnEvery
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	out := make(chan *event.Batch, 2)
	h.runErr = make(chan error, 1)
	h.consumed = make(chan struct{})
	go func() {
		if h.prelude != nil {
			h.prelude(ctx, h.src, out)
		}
		h.runErr <- h.src.Run(ctx, out)
		close(out)
	}()
	go func() {
		defer close(h.consumed)
		for b := range out {
			h.received.Add(1)
			if h.hold != nil {
				<-h.hold
			}
			h.mu.Lock()
			for _, e := range b.Events {
				e.Raw = bytes.Clone(e.Raw)
				h.events = append(h.events, e)
			}
			h.mu.Unlock()
			if h.drop || (h.ackFirst > 0 && h.received.Load() > h.ackFirst) {
				continue
			}
			b.Expect(1)
			for i := range b.Events {
				b.Events[i].Batch().Delivered(1)
			}
		}
	}()
}

// stop stops reading, waits for the last acknowledgements and saves the checkpoint.
func (h *harness) stop() {
	h.t.Helper()
	h.cancel()
	if err := <-h.runErr; err != nil {
		h.t.Fatalf("Run: %v", err)
	}
	<-h.consumed
	if err := h.src.Close(); err != nil {
		h.t.Fatalf("Close: %v", err)
	}
}

func (h *harness) lines() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]string, len(h.events))
	for i, e := range h.events {
		out[i] = string(e.Raw)
	}
	return out
}

func (h *harness) eventsCopy() []event.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]event.Event(nil), h.events...)
}

// waitLines waits until n events arrived and returns them.
func (h *harness) waitLines(n int) []string {
	h.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if got := h.lines(); len(got) >= n {
			return got
		}
		time.Sleep(10 * time.Millisecond)
	}
	got := h.lines()
	h.t.Fatalf("got %d events, want %d; missing %v; last: %.120q", len(got), n, missingSeqs(got, n), tailOf(got))
	return nil
}

func tailOf(s []string) []string {
	if len(s) > 3 {
		return s[len(s)-3:]
	}
	return s
}

// line is a Tetragon-shaped numbered line, over a KiB so that files have
// full fingerprints like real ones.
func line(n int) string {
	return fmt.Sprintf(`{"process_exec":{"process":{"exec_id":"id-%08d","binary":"/usr/bin/curl","arguments":"%s"}},"node_name":"n1","time":"2026-11-22T10:00:00.%09dZ"}`,
		n, strings.Repeat("a", 1000), n)
}

func lines(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, line(i))
	}
	return out
}

// appendLines writes whole lines the way Tetragon does: one write per line.
func appendLines(t *testing.T, path string, ls []string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, l := range ls {
		if _, err := f.WriteString(l + "\n"); err != nil {
			t.Fatal(err)
		}
	}
}

var rotations int

// rotate renames the live file to a timestamped backup and creates a new
// one, as lumberjack does. It returns the backup's path.
func rotate(t *testing.T, path string) string {
	t.Helper()
	rotations++
	dir := filepath.Dir(path)
	ts := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC).Add(time.Duration(rotations) * time.Second)
	backup := filepath.Join(dir, "tetragon-"+ts.Format("2006-01-02T15-04-05.000")+".log")
	if err := os.Rename(path, backup); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	return backup
}

// compress gzips a backup the way lumberjack does (via .gz.tmp) and deletes the plain file.
func compress(t *testing.T, backup string) string {
	t.Helper()
	gz := compressKeep(t, backup)
	if err := os.Remove(backup); err != nil {
		t.Fatal(err)
	}
	return gz
}

// compressKeep does compress's first steps: the .gz is complete, the plain
// backup not deleted yet.
func compressKeep(t *testing.T, backup string) string {
	t.Helper()
	data, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(data)
	zw.Close()
	if err := os.WriteFile(backup+".gz.tmp", buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(backup+".gz.tmp", backup+".gz"); err != nil {
		t.Fatal(err)
	}
	return backup + ".gz"
}

func assertLines(t *testing.T, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d lines, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("line %d: got %.60q…, want %.60q…", i, got[i], want[i])
		}
	}
}

// missingSeqs lists the first numbered lines absent from got.
func missingSeqs(got []string, n int) []int {
	have := map[string]bool{}
	for _, l := range got {
		have[l] = true
	}
	var out []int
	for i := 0; i < n && len(out) < 20; i++ {
		if !have[line(i)] {
			out = append(out, i)
		}
	}
	return out
}

// knows reports whether the watcher tracks the backup at path as newer than
// the file being read.
func (w *watcher) knows(path string) bool {
	e, ok := w.set.classify(filepath.Base(path))
	if !ok {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	_, known := w.known[e.key]
	return known
}

// waitUntil polls cond until it holds, failing the test after 30 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitIdle waits until the reader has, n more times, found nothing left to
// read and gone to wait for a change: whatever it was going to emit from
// what is on disk now, it has emitted.
func (h *harness) waitIdle(n int64) {
	h.t.Helper()
	target := h.src.idle.Load() + n
	waitUntil(h.t, fmt.Sprintf("the reader is idle %d more times", n), func() bool { return h.src.idle.Load() >= target })
}

// waitWaits waits until the reader has waited for a change n more times,
// whatever for (a file, the next data, a retry).
func (h *harness) waitWaits(n int64) {
	h.t.Helper()
	target := h.src.waits.Load() + n
	waitUntil(h.t, fmt.Sprintf("the reader waits %d more times", n), func() bool { return h.src.waits.Load() >= target })
}
