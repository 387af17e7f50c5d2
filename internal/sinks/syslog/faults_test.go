package syslog

import (
	"syscall"
	"testing"
	"time"

	"github.com/siemship/siemship/internal/testenv/syslogd"
	"github.com/siemship/siemship/internal/tetragongen"
)

// rsyslogSlack bounds what rsyslog holds in its own memory, read from the
// socket but not yet written, when it is frozen: imtcp's and imrelp's read
// buffers (tens of KiB) with a margin. Its queues are direct, so nothing
// waits in a queue.
const rsyslogSlack = 256 << 10

// killOutcome is what a receiver kill -9 in the middle of a stream cost.
type killOutcome struct {
	beforeKill   int // messages the receiver wrote before it died
	ackedAtKill  []bool
	txQueue      int // sender socket: bytes the peer had not acknowledged
	rxQueue      int // receiver socket: bytes the receiver had not read
	lost         []int
	lostBytes    int
	duplicates   int
	unackedFound bool // every event unacknowledged at the kill arrived
}

// killMidStream streams n events to a fresh rsyslog of kind, freezes it
// (SIGSTOP) once it wrote a third of them, streams the rest, waits until
// the sender is blocked, records both sockets' queues and the events acknowledged, kills
// it with SIGKILL, restarts it and lets the sink finish.
func killMidStream(t *testing.T, kind string, mod func(*Config), n int) killOutcome {
	t.Helper()
	rcv := syslogd.Start(t, syslogd.Options{Kind: kind})
	cfg := testConfig(rcv.Addr)
	mod(&cfg)
	evs := genEvents(t, n, 11)
	r := startRun(t, cfg, n)
	// A third reaches the receiver; then it freezes with the connection
	// open and the rest streams into the frozen connection, so that the
	// kill finds data in flight in both kernels and in the sink.
	r.send(evs, 0, n/3)
	rcv.WaitMessages(n/3, 30*time.Second)
	rcv.Signal(syscall.SIGSTOP)
	sent := make(chan struct{})
	go func() { r.send(evs, n/3, n); close(sent) }() // owned: waited for below

	// Frozen, the receiver reads nothing: the sender fills both socket
	// buffers and blocks. Wait until its byte count stops moving.
	var last float64 = -1
	stable := 0
	for deadline := time.Now().Add(20 * time.Second); stable < 5; {
		cur := r.metric("siemship_syslog_bytes_sent_total")
		if cur == last {
			stable++
		} else {
			stable, last = 0, cur
		}
		if time.Now().After(deadline) {
			t.Fatal("the sender never blocked on the frozen receiver")
		}
		time.Sleep(20 * time.Millisecond) // sampling a counter another goroutine moves
	}
	var out killOutcome
	for _, s := range syslogd.Sockets() {
		if s.RemotePort == rcv.Port && s.State == 1 {
			out.txQueue += s.TxQueue
		}
		if s.LocalPort == rcv.Port && s.State == 1 {
			out.rxQueue += s.RxQueue
		}
	}
	out.ackedAtKill = make([]bool, n)
	for i := range out.ackedAtKill {
		out.ackedAtKill[i] = r.acked[i].Load()
	}
	rcv.Kill()
	out.beforeKill = len(rcv.Messages())
	rcv.Restart()

	<-sent
	r.waitAcked(t, n, 60*time.Second)
	r.finish(t, 30*time.Second)

	// What arrived, by the sequence number each event carries, once the
	// receiver wrote all it will: ack: written finishes before that.
	seen := make([]int, n)
	for _, m := range waitQuiet(t, rcv) {
		p := parseMessage(t, cfg.Format, m, time.UTC)
		seq, ok := tetragongen.Seq([]byte(p.body))
		if !ok || seq >= n {
			t.Fatalf("unknown message %.120q", m)
		}
		seen[seq]++
	}
	out.unackedFound = true
	for i, c := range seen {
		switch {
		case c == 0:
			out.lost = append(out.lost, i)
			out.lostBytes += len(evs[i].Raw) + 60
			if !out.ackedAtKill[i] {
				out.unackedFound = false
			}
		case c > 1:
			out.duplicates += c - 1
		}
	}
	t.Logf("%s, %d events: receiver wrote %d before kill -9; at the kill %d acknowledged, sender tx queue %d B, receiver rx queue %d B; lost %d events (%d B), %d duplicates; resent %v, reconnects %v",
		kind, n, out.beforeKill, count(out.ackedAtKill), out.txQueue, out.rxQueue, len(out.lost), out.lostBytes, out.duplicates,
		r.metric("siemship_syslog_messages_resent_total"), r.metric("siemship_syslog_reconnects_total"))
	return out
}

// waitQuiet waits until the receiver has read everything sent to it and its
// output stopped growing.
func waitQuiet(t *testing.T, rcv *syslogd.Receiver) []string {
	t.Helper()
	last, stable := -1, 0
	for deadline := time.Now().Add(30 * time.Second); ; {
		msgs := rcv.Messages()
		unread := 0
		for _, s := range syslogd.Sockets() {
			if s.LocalPort == rcv.Port || s.RemotePort == rcv.Port {
				unread += s.RxQueue + s.TxQueue
			}
		}
		if unread == 0 && len(msgs) == last {
			if stable++; stable >= 5 {
				return msgs
			}
		} else {
			last, stable = len(msgs), 0
		}
		if time.Now().After(deadline) {
			t.Fatalf("receiver output still moving after 30s (%d messages, %d bytes unread)", len(msgs), unread)
		}
		time.Sleep(20 * time.Millisecond) // polling another process's file
	}
}

func count(b []bool) int {
	n := 0
	for _, v := range b {
		if v {
			n++
		}
	}
	return n
}

// RELP: the receiver answers only what it processed, so a kill -9 loses
// nothing: every event arrives (duplicates allowed).
func TestKillReceiverRELP(t *testing.T) {
	o := killMidStream(t, syslogd.RsyslogRELP, func(c *Config) { c.Transport, c.Format = TransportRELP, FormatRFC5424 }, 6000)
	if len(o.lost) > 0 {
		t.Fatalf("RELP lost %d events, first %v", len(o.lost), o.lost[:min(10, len(o.lost))])
	}
}

// ack: peer: nothing is lost on the sender's side. Every event not
// acknowledged at the kill arrives; what is lost was acknowledged by the
// receiver's TCP stack and then died with the receiver, bounded by its
// unread receive queue and its own buffers.
func TestKillReceiverAckPeer(t *testing.T) {
	o := killMidStream(t, syslogd.RsyslogTCP, func(c *Config) { c.Ack, c.Format = AckPeer, FormatRFC5424 }, 6000)
	if !o.unackedFound {
		t.Fatal("an event the sink had not acknowledged was lost: the resend failed")
	}
	if o.lostBytes > o.rxQueue+rsyslogSlack {
		t.Fatalf("lost %d B, more than the receiver's unread queue %d B + %d B", o.lostBytes, o.rxQueue, rsyslogSlack)
	}
}

// ack: written: the loss is measured and reported. It is bounded by what
// sat in the kernels (the sender's unacknowledged send queue and the
// receiver's unread receive queue) plus rsyslog's own read buffer; and the
// sink never loses an event it had not acknowledged.
func TestKillReceiverAckWritten(t *testing.T) {
	o := killMidStream(t, syslogd.RsyslogTCP, func(c *Config) { c.Ack, c.Format = AckWritten, FormatRFC5424 }, 6000)
	if !o.unackedFound {
		t.Fatal("an event the sink had not acknowledged was lost")
	}
	if o.lostBytes > o.txQueue+o.rxQueue+rsyslogSlack {
		t.Fatalf("lost %d B, more than the kernel queues %d+%d B + %d B", o.lostBytes, o.txQueue, o.rxQueue, rsyslogSlack)
	}
}
