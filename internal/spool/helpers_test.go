package spool

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/siemship/siemship/internal/event"
)

// gateSink is the sink behind the spool: it records what it delivers, in
// order, and delivers only while its gate is open (the SIEM is up).
type gateSink struct {
	mu   sync.Mutex
	got  []string
	open chan struct{} // closed: up
	once sync.Once
}

func newGateSink(up bool) *gateSink {
	g := &gateSink{open: make(chan struct{})}
	if up {
		g.up()
	}
	return g
}

func (g *gateSink) up() { g.once.Do(func() { close(g.open) }) }

func (g *gateSink) Run(ctx context.Context, in <-chan *event.Batch) error {
	for b := range in {
		select {
		case <-g.open:
		case <-ctx.Done():
			return nil
		}
		evs := make([]*event.Event, len(b.Events))
		g.mu.Lock()
		for i := range b.Events {
			g.got = append(g.got, string(b.Events[i].Raw))
			evs[i] = &b.Events[i]
		}
		g.mu.Unlock()
		event.Deliver(evs)
	}
	return nil
}

func (g *gateSink) Ready() (bool, string)        { return true, "" }
func (g *gateSink) Verify(context.Context) error { return nil }
func (g *gateSink) Status() []any                { return nil }

func (g *gateSink) lines() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.got...)
}

// data returns the delivered lines that are not loss reports, and the reports.
func (g *gateSink) data() (lines, losses []string) {
	for _, l := range g.lines() {
		if strings.Contains(l, "siemship_data_loss") {
			losses = append(losses, l)
		} else {
			lines = append(lines, l)
		}
	}
	return lines, losses
}

// run is one Run of a spool fed by the test.
type run struct {
	s      *Sink
	in     chan *event.Batch
	acked  atomic.Int64  // events acknowledged upstream
	done   chan struct{} // closed when Run returned, with err set
	err    error
	cancel context.CancelFunc
}

func testConfig(dir string) Config {
	c := DefaultConfig()
	c.Enabled, c.Dir, c.Mode = true, dir, ModeAlways
	return c
}

func start(t *testing.T, cfg Config, inner *gateSink) *run {
	t.Helper()
	s, err := New(cfg, "test", inner, prometheus.NewRegistry(), testLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &run{s: s, in: make(chan *event.Batch), done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(r.done)
		r.err = s.Run(ctx, r.in)
	}()
	// Registered after whatever made cfg.Dir (a tmpfs mount), so it runs
	// first: Run has returned and closed its files before the directory
	// goes, also when the test failed and never stopped it.
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return 10s after ctx ended")
		}
	})
	return r
}

// send hands a batch of lines seq[from, to) to the spool.
func (r *run) send(t *testing.T, from, to int) {
	t.Helper()
	select {
	case r.in <- r.batch(from, to):
	case <-time.After(10 * time.Second):
		t.Fatal("the spool took no batch for 10s")
	}
}

func (r *run) batch(from, to int) *event.Batch {
	evs := make([]event.Event, 0, to-from)
	for i := from; i < to; i++ {
		raw := []byte(line(i))
		evs = append(evs, event.Event{Raw: raw, Size: len(raw) + 1, Time: int64(i), Type: "process_exec"})
	}
	n := int64(len(evs))
	b := event.NewBatch("tetragon", evs, func() { r.acked.Add(n) })
	b.Expect(1)
	return b
}

// stop closes the input and waits for Run (the graceful path); like the
// pipeline, it cancels after a grace period: a sink that is down holds
// what it was handed until then.
func (r *run) stop(t *testing.T) {
	t.Helper()
	close(r.in)
	select {
	case <-r.done:
		if r.err != nil {
			t.Fatalf("Run: %v", r.err)
		}
		return
	case <-time.After(500 * time.Millisecond):
	}
	r.kill(t)
}

// kill ends Run hard, as a SIGKILL would leave the files (minus the page cache, which survives).
func (r *run) kill(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return 10s after ctx ended")
	}
}

func line(i int) string {
	// ~300 bytes, not too compressible.
	return fmt.Sprintf(`{"process_exec":{"process":{"exec_id":"spool:%09d","binary":"/usr/bin/x%d","arguments":"%x"}},"time":"%d"}`,
		i, i%97, fmt.Sprint(i*7919, i*104729, i*1299709, i*15485863, i*32452843, i*49979687, i*67867967, i*86028121), i)
}

func eventually(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkSeq asserts lines are exactly seq 0..n-1, each once, in order.
func checkSeq(t *testing.T, lines []string, n int) {
	t.Helper()
	if len(lines) != n {
		t.Fatalf("delivered %d lines, want %d", len(lines), n)
	}
	for i, l := range lines {
		if l != line(i) {
			t.Fatalf("line %d is %.60q, want %.60q", i, l, line(i))
		}
	}
}

func (s *Sink) isOpen() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opened
}

func testLogger() *slog.Logger {
	if os.Getenv("SPOOL_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}
