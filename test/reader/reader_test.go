// Package reader tests the Tetragon reader's defences end to end: the real
// agent binary reads a real export directory and ships to the strict
// LogScale receiver, and the test checks what arrives there.
package reader

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	emulator "github.com/siemship/siemship/internal/emulators/logscale"
	"github.com/siemship/siemship/internal/testkit"
	"github.com/siemship/siemship/test/internal/agentproc"
)

const token = "reader-token"

// env is one export directory, one receiver and the agent's config.
type env struct {
	t       *testing.T
	bin     string
	dir     string
	export  string
	live    string
	cfg     string
	logPath string

	mu     sync.Mutex
	events []string // attributes JSON of every event received
}

func newEnv(t *testing.T, startAt string) *env {
	t.Helper()
	e := &env{t: t, bin: agentproc.Binary(t, testkit.RepoRoot(t)), dir: testkit.KeptDir(t)}
	e.export = filepath.Join(e.dir, "export")
	e.live = filepath.Join(e.export, "tetragon.log")
	e.cfg = filepath.Join(e.dir, "siemship.yaml")
	e.logPath = filepath.Join(e.dir, "agent.log")
	if err := os.MkdirAll(e.export, 0o755); err != nil {
		t.Fatal(err)
	}
	recv := emulator.New(emulator.Config{
		Tokens: map[string]emulator.Token{token: {Name: "reader", Repo: "tetragon"}},
		OnEvent: func(ev emulator.StoredEvent) {
			e.mu.Lock()
			e.events = append(e.events, strings.Clone(ev.Attributes)+strings.Clone(ev.RawString))
			e.mu.Unlock()
		},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { defer close(served); recv.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-served })
	cfg := fmt.Sprintf(`state_dir: %s
listen: ""
shutdown_grace: 5s
status_interval: 5s
log:
  format: text
  level: debug
sources:
  tetragon:
    path: %s
    start_at: %s
    poll_interval: 50ms
sinks:
  logscale:
    url: http://%s
    linger: 50ms
    retry_initial: 50ms
    retry_max: 500ms
`, filepath.Join(e.dir, "state"), e.live, startAt, ln.Addr())
	if err := os.WriteFile(e.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) start(tok string) *agentproc.Proc {
	e.t.Helper()
	p := agentproc.Start(e.t, e.bin, e.cfg, e.logPath, "SIEMSHIP_LOGSCALE_TOKEN="+tok)
	p.WaitForLog(e.t, "siemship started", time.Minute)
	return p
}

// line is a Tetragon-shaped numbered line.
func line(seq int) string {
	return fmt.Sprintf(`{"process_exec":{"process":{"exec_id":"reader:%09d","pid":%d,"binary":"/usr/bin/curl","arguments":"-sS https://example.internal/%09d"}},"node_name":"reader-node","time":"2026-11-22T10:00:%02d.%09dZ"}`,
		seq, 1000+seq, seq, seq%60, seq)
}

func lines(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, line(i))
	}
	return out
}

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

func backup(dir string, sec int) string {
	return filepath.Join(dir, fmt.Sprintf("tetragon-2026-11-22T09-00-%02d.000.log", sec))
}

var seqRe = regexp.MustCompile(`"exec_id":"reader:(\d{9})"`)

// seqs returns how many times each numbered line arrived, and the events
// that are not numbered lines.
func (e *env) seqs() (map[int]int, []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	got, other := map[int]int{}, []string(nil)
	for _, ev := range e.events {
		if m := seqRe.FindStringSubmatch(ev); m != nil {
			n, _ := strconv.Atoi(m[1])
			got[n]++
			continue
		}
		other = append(other, ev)
	}
	return got, other
}

// waitFor waits until line seq arrived.
func (e *env) waitFor(seq int, timeout time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if got, _ := e.seqs(); got[seq] > 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	got, _ := e.seqs()
	e.t.Fatalf("line %d not delivered within %v; %d distinct lines arrived (agent log %s)", seq, timeout, len(got), e.logPath)
}

// assertExactly checks that the lines in want arrived once each and no other numbered line did.
func (e *env) assertExactly(want []int) {
	e.t.Helper()
	got, _ := e.seqs()
	for _, n := range want {
		if got[n] != 1 {
			e.t.Errorf("line %d arrived %d times, want once", n, got[n])
		}
		delete(got, n)
	}
	for n, c := range got {
		e.t.Errorf("line %d arrived %d times, want never", n, c)
	}
}

func span(from, to int) []int {
	var out []int
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

// Issue 8, defect 1: start_at: end, a wrong token (nothing is ever
// acknowledged), the agent is killed and restarted with the right one. The
// lines written after the first start must arrive: the start position was
// persisted before reading, so end is not applied again.
func TestStartAtEndSurvivesARestartBeforeTheFirstAck(t *testing.T) {
	e := newEnv(t, "end")
	appendLines(t, e.live, lines(1000, 1010)) // before the first start: skipped by design
	p := e.start("wrong-token")
	p.WaitForLog(t, "no checkpoint, starting", time.Minute)
	appendLines(t, e.live, lines(0, 5))
	p.WaitForLog(t, "rejected the ingest token", time.Minute)
	p.Kill(t)

	p = e.start(token)
	appendLines(t, e.live, lines(5, 8))
	e.waitFor(7, time.Minute) // after 0-4 in the file: they came first or never
	p.Terminate(t, 30*time.Second)
	e.assertExactly(span(0, 8))
}

// gzipped returns ls as one gzip stream.
func gzipped(t *testing.T, ls []string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	for _, l := range ls {
		zw.Write([]byte(l + "\n"))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Issue 8, defect 3: a truncated .gz backup. Its whole lines arrive, then a
// siemship_data_loss event for the rest, then the files after it: the reader
// does not stall.
func TestTruncatedGzipBackupDoesNotStallTheAgent(t *testing.T) {
	e := newEnv(t, "oldest")
	data := gzipped(t, lines(0, 400))
	cut := data[:len(data)/2]
	zr, err := gzip.NewReader(bytes.NewReader(cut))
	if err != nil {
		t.Fatal(err)
	}
	decoded, err := io.ReadAll(zr)
	if err == nil {
		t.Fatal("the cut stream decodes without error")
	}
	whole := bytes.Count(decoded, []byte{'\n'})
	if whole == 0 || whole >= 400 {
		t.Fatalf("%d whole lines decode from the cut stream; the test wants some", whole)
	}
	if err := os.WriteFile(backup(e.export, 1)+".gz", cut, 0o600); err != nil {
		t.Fatal(err)
	}
	appendLines(t, backup(e.export, 2), lines(400, 410))
	appendLines(t, e.live, lines(410, 415))
	p := e.start(token)
	e.waitFor(414, time.Minute)
	p.Terminate(t, 30*time.Second)
	e.assertExactly(append(span(0, whole), span(400, 415)...))
	_, other := e.seqs()
	if len(other) != 1 || !strings.Contains(other[0], `"siemship_data_loss"`) || !strings.Contains(other[0], "corrupt") {
		t.Fatalf("events besides the lines: %.400q, want one loss report for the corrupt rest", other)
	}
}

// Issue 8, defect 5: a symlink with a backup's name pointing at a secret,
// and a FIFO. The secret never reaches the SIEM, the FIFO does not block
// the reader, and both are reported.
func TestSymlinkToASecretIsNeverShipped(t *testing.T) {
	e := newEnv(t, "oldest")
	secret := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(secret, []byte(`{"process_exec":{"process":{"binary":"SECRET-TOKEN-0xdeadbeef"}},"node_name":"x","time":"2026-11-22T10:00:00Z"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, backup(e.export, 1)); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(backup(e.export, 2), 0o600); err != nil {
		t.Fatal(err)
	}
	appendLines(t, backup(e.export, 3), lines(0, 3))
	appendLines(t, e.live, lines(3, 5))
	p := e.start(token)
	e.waitFor(4, time.Minute) // the live file is read last: the symlink and the FIFO were passed by
	p.Terminate(t, 30*time.Second)
	e.mu.Lock()
	for _, ev := range e.events {
		if strings.Contains(ev, "SECRET-TOKEN") {
			t.Errorf("the symlink's target was shipped: %.200q", ev)
		}
	}
	e.mu.Unlock()
	e.assertExactly(span(0, 5))
	log, err := os.ReadFile(e.logPath)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(log), "not a regular file in the export directory"); n != 2 {
		t.Errorf("the agent reported %d files that are not regular, want the symlink and the FIFO (log %s)", n, e.logPath)
	}
}
