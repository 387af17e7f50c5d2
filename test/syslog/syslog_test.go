// Package syslog runs the syslog sink end to end through the real agent
// binary: a Tetragon-like writer (lumberjack, small files) writes numbered
// lines, siemship ships them as RFC 3164 to a real rsyslog on loopback, and
// what rsyslog wrote is parsed with go-syslog and accounted for line by
// line. The agent is SIGKILLed mid-stream and restarted in every ack mode,
// and for RELP the receiver is killed -9 instead; every line must arrive at
// least once, duplicates are counted.
package syslog

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/siemship/siemship/internal/testenv/syslogd"
)

const (
	totalLines = 30_000 // ~7.5 s of writing
	kills      = 3
	perSession = 1500 // messages a session delivers before it is killed
)

// modes are the ack modes under test, each with its rsyslog input.
var modes = []struct {
	name, kind, keys string
}{
	{"ack-written", syslogd.RsyslogTCP, "    transport: tcp\n    ack: written\n"},
	{"ack-peer", syslogd.RsyslogTCP, "    transport: tcp\n    ack: peer\n"},
	{"relp", syslogd.RsyslogRELP, "    transport: relp\n"},
}

// SIGKILL of the agent, three times mid-stream, in each ack mode: the
// checkpoint only passes what the sink acknowledged, so the next session
// sends again what the killed one had not had acknowledged, and every line
// reaches rsyslog at least once. With ack: written an acknowledged message
// is in the agent's socket send buffer, which the kernel still delivers
// after the process died (the receiver stays up here). Duplicates are what
// a killed session delivered past its last checkpoint.
func TestAgentSIGKILL(t *testing.T) {
	for i, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			rcv := syslogd.Start(t, syslogd.Options{Kind: m.kind})
			exportDir := filepath.Join(t.TempDir(), "export")
			if err := os.MkdirAll(exportDir, 0o755); err != nil {
				t.Fatal(err)
			}
			w := &writer{dir: exportDir, total: totalLines}
			a := newAgent(t, exportDir, fmt.Sprintf("    address: %s\n%s", rcv.Addr, m.keys))
			done := w.start()
			a.start()
			rng := rand.New(rand.NewPCG(uint64(i), 9))
			var atKill, dupsAtKill []int
			for range kills {
				waitGrowth(t, rcv, len(rcv.Messages())+perSession, time.Minute)
				time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond) // a random point in the stream
				a.sigkill()
				tl := read(t, rcv, totalLines)
				if tl.distinct == totalLines {
					t.Fatalf("every line was at rsyslog before kill %d: the kills did not hit the stream", a.kills)
				}
				atKill, dupsAtKill = append(atKill, tl.distinct), append(dupsAtKill, tl.dups)
				a.start()
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			tl := waitAll(t, rcv, a, totalLines, 2*time.Minute)
			a.terminate()
			// Nothing arrives after a clean stop: the count is final.
			tl = read(t, rcv, totalLines)
			perKill := make([]int, len(dupsAtKill))
			for k := range dupsAtKill {
				next := tl.dups
				if k+1 < len(dupsAtKill) {
					next = dupsAtKill[k+1]
				}
				perKill[k] = next - dupsAtKill[k]
			}
			t.Logf("%s: %d lines, %d SIGKILLs (distinct lines at rsyslog at each kill: %s), lost 0, %d duplicates (%.0f per SIGKILL; after each kill: %s)",
				m.name, totalLines, a.kills, join(atKill), tl.dups, float64(tl.dups)/kills, join(perKill))
		})
	}
}

// kill -9 of rsyslog's imrelp mid-stream with the real agent: rsyslog
// acknowledges a RELP frame only once it has processed it (direct queues:
// written), so what it had not answered when it died is sent again to the
// restarted receiver. Zero lost; duplicates are frames it wrote but had
// not answered.
func TestReceiverKillRELP(t *testing.T) {
	rcv := syslogd.Start(t, syslogd.Options{Kind: syslogd.RsyslogRELP})
	exportDir := filepath.Join(t.TempDir(), "export")
	if err := os.MkdirAll(exportDir, 0o755); err != nil {
		t.Fatal(err)
	}
	w := &writer{dir: exportDir, total: totalLines}
	a := newAgent(t, exportDir, fmt.Sprintf("    address: %s\n    transport: relp\n", rcv.Addr))
	done := w.start()
	a.start()
	var wroteBeforeKill []int
	for k := range 2 {
		waitGrowth(t, rcv, len(rcv.Messages())+3000, time.Minute)
		rcv.Kill()
		tl := read(t, rcv, totalLines)
		if tl.distinct == totalLines {
			t.Fatalf("every line was at rsyslog before kill %d", k+1)
		}
		wroteBeforeKill = append(wroteBeforeKill, tl.distinct)
		time.Sleep(700 * time.Millisecond) // down for a while: the agent reconnects with backoff, the writer goes on
		rcv.Restart()
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	tl := waitAll(t, rcv, a, totalLines, 2*time.Minute)
	a.terminate()
	tl = read(t, rcv, totalLines)
	t.Logf("relp: %d lines, rsyslog killed -9 twice (distinct lines written before each kill: %s), lost 0, %d duplicates",
		totalLines, join(wroteBeforeKill), tl.dups)
}
