// Package spool runs the real agent with a disk spool through a compressed
// SIEM outage: the LogScale receiver refuses every connection while ten
// times what Tetragon keeps on disk is written with real rotations, the
// agent is SIGKILLed while it spools and again while it replays, and every
// line is accounted for.
package spool

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gopkg.in/natefinch/lumberjack.v2"

	"github.com/siemship/siemship/internal/emulators/faults"
	emulator "github.com/siemship/siemship/internal/emulators/logscale"
	"github.com/siemship/siemship/internal/testkit"
	"github.com/siemship/siemship/test/internal/agentproc"
)

const (
	fileBytes = 64 << 10 // lumberjack rotates at 64 KiB (as in test/torture)
	backups   = 4        // Tetragon keeps 1 + 4 files: 320 KiB
	retention = (1 + backups) * fileBytes
	token     = "spool-token"
)

func line(seq int) string {
	return fmt.Sprintf(`{"process_exec":{"process":{"exec_id":"spool:%09d","pid":%d,"binary":"/usr/bin/curl","arguments":"-sS https://example.internal/%09d"}},"node_name":"spool-node","time":"2026-11-22T10:%02d:%02d.%09dZ"}`+"\n",
		seq, 100000+seq%50000, seq, (seq/60000)%60, (seq/1000)%60, seq)
}

var seqRe = regexp.MustCompile(`"exec_id":"spool:(\d{9})"`)

// totalLines is ten times Tetragon's retention.
var totalLines = 10*retention/len(line(0)) + 1

func TestOutageLongerThanTetragonsRetentionLosesNothing(t *testing.T) {
	bin := agentproc.Binary(t, testkit.RepoRoot(t))
	dir := testkit.KeptDir(t)
	exportDir, state := filepath.Join(dir, "export"), filepath.Join(dir, "state")
	os.MkdirAll(exportDir, 0o755)

	rec := &recorder{by: make([][]int64, totalLines), kill: map[int64]bool{}}
	recv := emulator.New(emulator.Config{
		Tokens:  map[string]emulator.Token{token: {Name: "spool", Repo: "tetragon"}},
		OnEvent: rec.onEvent,
	})
	var down atomic.Bool
	down.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			faults.ResetConn(w) // refused: the SIEM is unreachable
			return
		}
		recv.ServeHTTP(w, r)
	}))
	defer srv.Close()
	metricsAddr := freeAddr(t)

	cfg := filepath.Join(dir, "siemship.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`state_dir: %s
listen: %s
shutdown_grace: 20s
status_interval: 2s
log:
  format: text
  level: info
sources:
  tetragon:
    path: %s
    max_backups: %d
    poll_interval: 50ms
sinks:
  logscale:
    url: %s
    linger: 100ms
    retry_initial: 50ms
    retry_max: 300ms
    spool:
      enabled: true
      max_bytes: 64MiB
`, state, metricsAddr, filepath.Join(exportDir, "tetragon.log"), backups, srv.URL)), 0o600)
	env := []string{"SIEMSHIP_LOGSCALE_TOKEN=" + token}
	logPath := filepath.Join(dir, "agent.log")
	start := func() *agentproc.Proc {
		rec.session.Add(1)
		p := agentproc.Start(t, bin, cfg, logPath, env...)
		p.WaitForLog(t, "siemship started", time.Minute)
		return p
	}

	// The outage: everything is written (with rotations) while LogScale refuses.
	w := &writer{dir: exportDir}
	writerDone := make(chan error, 1)
	p := start()
	go func() { writerDone <- w.run() }()
	// SIGKILL while the agent spools.
	poll(t, "the writer halfway", 30*time.Second, func() bool { return w.written.Load() > int64(totalLines/2) })
	// The writer waits while the agent is down: Tetragon keeps ~100 ms of
	// this writer's lines, and on a loaded machine a restart takes longer,
	// which would be data Tetragon deleted before the agent could read it
	// (reported, but not what this test is about: the SIEM's outage).
	w.paused.Store(true)
	p.Kill(t)
	rec.killed(rec.session.Load())
	p = start()
	w.paused.Store(false)
	if err := <-writerDone; err != nil {
		t.Fatal(err)
	}
	// The spool acknowledged everything: the checkpoint reaches the end
	// although LogScale took nothing.
	poll(t, "the source checkpoint at the end of tetragon.log while LogScale is down", 30*time.Second, func() bool {
		return checkpointAtEnd(t, state, filepath.Join(exportDir, "tetragon.log"))
	})
	if n := rec.distinct(); n != 0 {
		t.Fatalf("%d lines reached LogScale while it was down", n)
	}
	spooled := metric(t, metricsAddr, "siemship_spool_events")
	t.Logf("outage over: %d lines (%d KiB, %d× Tetragon's retention) written in %d files, %v events spooled",
		totalLines, w.bytes/1024, w.bytes/retention, w.files, spooled)

	// Back up; SIGKILL while the spool replays.
	down.Store(false)
	poll(t, "replay under way", 30*time.Second, func() bool { return rec.distinct() > totalLines/4 })
	p.Kill(t)
	rec.killed(rec.session.Load())
	// A graceful restart mid-replay: it must not cause re-sends.
	p = start()
	time.Sleep(300 * time.Millisecond)
	p.Terminate(t, 30*time.Second)
	p = start()
	deadline := time.Now().Add(60 * time.Second)
	for missing := rec.missing(); len(missing) > 0; missing = rec.missing() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 60s: every line delivered: %d missing, first %v, last %d (agent log %s)",
				len(missing), missing[:min(10, len(missing))], missing[len(missing)-1], logPath)
		}
		time.Sleep(20 * time.Millisecond)
	}
	poll(t, "the spool drained", 20*time.Second, func() bool {
		return metric(t, metricsAddr, "siemship_spool_events") == 0 && metric(t, metricsAddr, "siemship_spool_records") == 0
	})
	p.Terminate(t, 30*time.Second)

	rec.check(t)
	if !checkpointAtEnd(t, state, filepath.Join(exportDir, "tetragon.log")) {
		t.Error("the checkpoint is not at the end of tetragon.log")
	}
	t.Logf("delivered %d distinct lines, %d duplicates (%d SIGKILLs), %d loss reports", rec.distinct(), rec.dups(), 2, len(rec.losses))
}

// writer writes the numbered lines through lumberjack, rotating at
// fileBytes with few backups, as Tetragon does.
type writer struct {
	dir     string
	paused  atomic.Bool // while the agent is down: see the SIGKILL below
	written atomic.Int64
	bytes   int
	files   int
}

func (w *writer) run() error {
	lj := &lumberjack.Logger{Filename: filepath.Join(w.dir, "tetragon.log"), MaxSize: 1 << 20, MaxBackups: backups}
	defer lj.Close()
	size := 0
	w.files = 1
	for seq := range totalLines {
		l := line(seq)
		if size+len(l) > fileBytes {
			if err := lj.Rotate(); err != nil {
				return err
			}
			size = 0
			w.files++
		}
		if _, err := lj.Write([]byte(l)); err != nil {
			return err
		}
		size += len(l)
		w.bytes += len(l)
		w.written.Add(1)
		if seq%4 == 0 {
			time.Sleep(time.Millisecond) // ~3k lines/s: a rotation every ~80 ms
		}
		for w.paused.Load() {
			time.Sleep(time.Millisecond)
		}
	}
	return nil
}

// checkpointAtEnd says whether the source's checkpoint is the end of the
// export file.
func checkpointAtEnd(t *testing.T, state, export string) bool {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(state, "tetragon.json"))
	if err != nil {
		return false
	}
	var st struct {
		Position struct {
			File struct {
				Name string `json:"name"`
			} `json:"file"`
			Offset int64 `json:"offset"`
		} `json:"position"`
	}
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatalf("checkpoint: %v", err)
	}
	fi, err := os.Stat(export)
	return err == nil && st.Position.File.Name == "tetragon.log" && st.Position.Offset == fi.Size()
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// metric reads a gauge of the sink logscale from /metrics (-1 when unreachable).
func metric(t *testing.T, addr, name string) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if l := sc.Text(); strings.HasPrefix(l, name+"{") && strings.Contains(l, `sink="logscale"`) {
			v, _ := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64)
			return v
		}
	}
	return -1
}

func poll(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// recorder keeps, per line, the agent sessions that delivered it.
type recorder struct {
	session atomic.Int64
	mu      sync.Mutex
	by      [][]int64
	kill    map[int64]bool
	losses  []string
	strange []string
}

func (r *recorder) onEvent(e emulator.StoredEvent) {
	s := r.session.Load()
	r.mu.Lock()
	defer r.mu.Unlock()
	if m := seqRe.FindStringSubmatch(e.Attributes); m != nil {
		seq, _ := strconv.Atoi(m[1])
		r.by[seq] = append(r.by[seq], s)
		return
	}
	if strings.Contains(e.Attributes, "siemship_data_loss") {
		r.losses = append(r.losses, e.Attributes)
		return
	}
	r.strange = append(r.strange, e.RawString)
}

func (r *recorder) killed(s int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.kill[s] = true
}

func (r *recorder) missing() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []int
	for seq, s := range r.by {
		if len(s) == 0 {
			out = append(out, seq)
		}
	}
	return out
}

func (r *recorder) distinct() (n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.by {
		if len(s) > 0 {
			n++
		}
	}
	return n
}

func (r *recorder) dups() (n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.by {
		n += max(0, len(s)-1)
	}
	return n
}

// check: nothing lost or reported lost, nothing mangled, and a line is
// sent again by a later session only after a session ended with SIGKILL
// (a graceful stop saves the spool's read position: nothing re-sent).
func (r *recorder) check(t *testing.T) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, l := range r.losses {
		if i < 3 {
			t.Errorf("loss reported: %.300s", l)
		}
	}
	for i, raw := range r.strange {
		if i < 3 {
			t.Errorf("received an event that is not a whole line: %.200q", raw)
		}
	}
	bad := 0
	for seq, sessions := range r.by {
		for i := 0; i+1 < len(sessions); i++ {
			if sessions[i] != sessions[i+1] && !r.kill[sessions[i]] {
				if bad++; bad <= 5 {
					t.Errorf("line %d delivered by sessions %v; session %d ended with SIGTERM, so it must not be re-sent", seq, sessions, sessions[i])
				}
			}
		}
	}
}
