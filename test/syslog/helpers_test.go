package syslog

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/natefinch/lumberjack.v2"

	"github.com/leodido/go-syslog/v4/rfc3164"

	"github.com/siemship/siemship/internal/testenv/syslogd"
	"github.com/siemship/siemship/internal/testkit"
	"github.com/siemship/siemship/test/internal/agentproc"
)

const (
	fileBytes  = 128 << 10 // the writer rotates at 128 KiB
	backups    = 400       // more than the run writes: no rotation outruns the agent, nothing is reported lost
	linesPerMs = 4         // writer pace: ~4k lines/s
	hostname   = "syslog-e2e-node"
)

// line is a Tetragon-shaped numbered line, as test/torture writes them.
func line(seq int) string {
	return fmt.Sprintf(`{"process_exec":{"process":{"exec_id":"syslog-e2e:%09d","pid":%d,"uid":0,"binary":"/usr/bin/curl","arguments":"-sS https://example.internal/%09d"}},"node_name":"%s","time":"2026-11-22T10:%02d:%02d.%09dZ"}`+"\n",
		seq, 100000+seq%50000, seq, hostname, (seq/60000)%60, (seq/1000)%60, seq)
}

var seqRe = regexp.MustCompile(`"exec_id":"syslog-e2e:(\d{9})"`)

// writer writes total numbered lines through lumberjack, rotating at
// fileBytes, like Tetragon's exporter.
type writer struct {
	dir   string
	total int
	mu    sync.Mutex
	n     int // lines written so far
}

func (w *writer) run() error {
	lj := &lumberjack.Logger{
		Filename:   filepath.Join(w.dir, "tetragon.log"),
		MaxSize:    1 << 20, // MB: never reached; Rotate below makes small files
		MaxBackups: backups,
	}
	defer lj.Close()
	size := 0
	for seq := 0; seq < w.total; seq++ {
		l := line(seq)
		if size+len(l) > fileBytes {
			if err := lj.Rotate(); err != nil {
				return fmt.Errorf("rotate: %w", err)
			}
			size = 0
		}
		if _, err := lj.Write([]byte(l)); err != nil {
			return fmt.Errorf("write line %d: %w", seq, err)
		}
		size += len(l)
		w.mu.Lock()
		w.n = seq + 1
		w.mu.Unlock()
		if seq%linesPerMs == 0 {
			time.Sleep(time.Millisecond) // the writer's pace, not a poll
		}
	}
	return nil
}

func (w *writer) written() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}

// start runs the writer in the background; the returned channel yields its
// result.
func (w *writer) start() <-chan error {
	done := make(chan error, 1)
	go func() { done <- w.run() }() // owned: the test reads done before it ends
	return done
}

// agent is the real binary reading the writer's files and shipping them to
// one syslog sink.
type agent struct {
	t       *testing.T
	bin     string
	dir     string
	cfg     string
	log     string
	proc    *agentproc.Proc
	kills   int
	started int
}

// newAgent writes the configuration: the tetragon source on exportDir and
// a syslog sink named rsyslog with the given keys (indented for the sink).
func newAgent(t *testing.T, exportDir, sinkKeys string) *agent {
	t.Helper()
	dir := testkit.KeptDir(t)
	a := &agent{t: t, bin: agentproc.Binary(t, testkit.RepoRoot(t)), dir: dir,
		cfg: filepath.Join(dir, "siemship.yaml"), log: filepath.Join(dir, "agent.log")}
	cfg := fmt.Sprintf(`state_dir: %s
listen: ""
shutdown_grace: 10s
status_interval: 5s
log:
  format: text
  level: info
sources:
  tetragon:
    path: %s
    max_backups: %d
    poll_interval: 50ms
sinks:
  rsyslog:
    type: syslog
    hostname: %s
    retry_initial: 20ms
    retry_max: 300ms
    dial_timeout: 2s
    ack_timeout: 5s
%s`, filepath.Join(dir, "state"), filepath.Join(exportDir, "tetragon.log"), backups, hostname, sinkKeys)
	if err := os.WriteFile(a.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return a
}

func (a *agent) start() {
	a.t.Helper()
	a.started++
	a.proc = agentproc.Start(a.t, a.bin, a.cfg, a.log)
	a.proc.WaitForLog(a.t, "siemship started", time.Minute)
}

func (a *agent) sigkill() {
	a.t.Helper()
	a.proc.Kill(a.t)
	a.kills++
}

func (a *agent) terminate() {
	a.t.Helper()
	a.proc.Terminate(a.t, time.Minute)
}

// tally is what a receiver wrote, by line number.
type tally struct {
	count    []int // line → times received
	distinct int
	dups     int
	strange  []string // messages that are not a whole numbered line
}

// read parses every message rsyslog wrote (RFC 3164, the JSON body) with
// go-syslog and counts the lines it carries.
func read(t *testing.T, rcv *syslogd.Receiver, total int) tally {
	t.Helper()
	tl := tally{count: make([]int, total)}
	p := rfc3164.NewParser()
	for _, raw := range rcv.Messages() {
		m, err := p.Parse([]byte(raw))
		if err != nil {
			tl.strange = append(tl.strange, fmt.Sprintf("go-syslog: %v: %.200q", err, raw))
			continue
		}
		msg := m.(*rfc3164.SyslogMessage)
		if msg.Hostname == nil || *msg.Hostname != hostname || msg.Appname == nil || *msg.Appname != "siemship" || msg.Message == nil {
			tl.strange = append(tl.strange, fmt.Sprintf("wrong host, tag or empty body: %.200q", raw))
			continue
		}
		body := *msg.Message
		sm := seqRe.FindStringSubmatch(body)
		if sm == nil {
			tl.strange = append(tl.strange, fmt.Sprintf("no numbered line: %.200q", raw))
			continue
		}
		seq, _ := strconv.Atoi(sm[1])
		if seq >= total || body+"\n" != line(seq) {
			tl.strange = append(tl.strange, fmt.Sprintf("line %d not byte for byte: %.200q", seq, body))
			continue
		}
		if tl.count[seq]++; tl.count[seq] == 1 {
			tl.distinct++
		} else {
			tl.dups++
		}
	}
	return tl
}

// missing returns the lines never received.
func (tl tally) missing() []int {
	var out []int
	for seq, n := range tl.count {
		if n == 0 {
			out = append(out, seq)
		}
	}
	return out
}

// waitAll polls the receiver until every line arrived, failing after
// timeout or after 30 s without progress.
func waitAll(t *testing.T, rcv *syslogd.Receiver, a *agent, total int, timeout time.Duration) tally {
	t.Helper()
	deadline := time.Now().Add(timeout)
	prev, progressed := -1, time.Now()
	for {
		tl := read(t, rcv, total)
		if len(tl.strange) > 0 {
			t.Fatalf("%d unexpected messages, first: %s", len(tl.strange), tl.strange[0])
		}
		if tl.distinct == total {
			return tl
		}
		if tl.distinct != prev {
			prev, progressed = tl.distinct, time.Now()
		}
		if exited, err := a.proc.Exited(); exited {
			t.Fatalf("agent exited: %v (log %s)", err, a.log)
		}
		if time.Now().After(deadline) || time.Since(progressed) > 30*time.Second {
			miss := tl.missing()
			t.Fatalf("%d of %d lines at rsyslog, %d missing (first %v); agent log %s; rsyslog:\n%s",
				tl.distinct, total, len(miss), miss[:min(10, len(miss))], a.log, rcv.Log())
		}
		time.Sleep(250 * time.Millisecond) // polling a file another process writes
	}
}

// waitGrowth polls until the receiver holds at least n messages.
func waitGrowth(t *testing.T, rcv *syslogd.Receiver, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for len(rcv.Messages()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("rsyslog wrote fewer than %d messages within %v; its log:\n%s", n, timeout, rcv.Log())
		}
		time.Sleep(50 * time.Millisecond) // polling a file another process writes
	}
}

func join(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, " ")
}
