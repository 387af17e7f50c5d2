package logpush

import (
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/leodido/go-syslog/v4/rfc3164"

	"github.com/siemship/siemship/internal/testenv/syslogd"
)

const (
	alogHost = "cf-logpush"
	alogTag  = "cloudflare"
)

// alogSink is a real rsyslog behind imtcp with TLS (a test CA, client
// certificates required), standing in for ALog's syslog receiver. What it
// wrote is read back with collect: every message must be RFC 3164 with a
// JST timestamp equal to the record's event time and a kv body that
// reverses to the record's fields; the record it reverses to is filed as
// delivered to "syslog".
type alogSink struct {
	t     *testing.T
	rcv   *syslogd.Receiver
	pki   *syslogd.PKI
	rec   *recorder
	jst   *time.Location
	seen  int               // messages collected
	marks []int             // messages written when each session ended
	byKV  map[string]string // flattened fields → record; written only while generating, before collect runs
}

func newALog(t *testing.T, rec *recorder) *alogSink {
	t.Helper()
	jst, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	pki := syslogd.NewPKI(t)
	s := &alogSink{t: t, pki: pki, rec: rec, jst: jst, byKV: map[string]string{},
		rcv: syslogd.Start(t, syslogd.Options{Kind: syslogd.RsyslogTLS, TLS: pki})}
	// Indexed as generated, before the pushes: collect must keep up with
	// the agent while it is killed.
	var mu sync.Mutex
	rec.index = func(r []byte) {
		k := kvKey(flattenJSON(t, r))
		mu.Lock()
		s.byKV[k] = string(r)
		mu.Unlock()
	}
	return s
}

// config is the ALog-style sink: RFC 3164, kv body, Asia/Tokyo, TLS with a
// client certificate, ack peer (a push is answered 200 only once rsyslog's
// TCP stack acknowledged every byte of its records).
func (s *alogSink) config() string {
	return fmt.Sprintf(`  alog:
    type: syslog
    address: %s
    transport: tls
    ca_file: %s
    cert_file: %s
    key_file: %s
    tls_server_name: localhost
    format: rfc3164
    body: kv
    timezone: Asia/Tokyo
    hostname: %s
    app_name: %s
    ack: peer
    retry_initial: 20ms
    retry_max: 300ms
    dial_timeout: 2s
    ack_timeout: 5s
`, s.rcv.Addr, s.pki.CAFile, s.pki.ClientCert, s.pki.ClientKey, alogHost, alogTag)
}

// settle waits until rsyslog has written nothing for 300 ms, and marks
// the session that delivered the messages so far as ended: collect
// attributes messages to sessions by their place in rsyslog's output. Call
// it between a kill and the next start. It counts lines only, so it is
// cheap.
func (s *alogSink) settle() {
	s.t.Helper()
	n, still := s.rcv.Count(), time.Now()
	for deadline := time.Now().Add(30 * time.Second); time.Since(still) < 300*time.Millisecond; {
		if time.Now().After(deadline) {
			s.t.Fatal("rsyslog kept writing for 30 s with no agent running")
		}
		time.Sleep(20 * time.Millisecond) // polling a file another process writes
		if m := s.rcv.Count(); m != n {
			n, still = m, time.Now()
		}
	}
	s.marks = append(s.marks, n)
}

// collect parses every message rsyslog wrote and files each as delivered
// by its session; call it once, at the end.
func (s *alogSink) collect() {
	s.t.Helper()
	msgs := s.rcv.Messages()
	s.seen = len(msgs)
	p := rfc3164.NewParser()
	session := int64(1)
	for i, raw := range msgs {
		for int(session) <= len(s.marks) && i >= s.marks[session-1] {
			session++
		}
		m, err := p.Parse([]byte(raw))
		if err != nil {
			s.strange("go-syslog cannot parse it as RFC 3164: %v: %.200q", err, raw)
			continue
		}
		msg := m.(*rfc3164.SyslogMessage)
		if deref(msg.Hostname) != alogHost || deref(msg.Appname) != alogTag || msg.Timestamp == nil {
			s.strange("host %q, tag %q, timestamp %v: %.200q", deref(msg.Hostname), deref(msg.Appname), msg.Timestamp, raw)
			continue
		}
		pairs, err := syslogd.ParseKV(deref(msg.Message))
		if err != nil {
			s.strange("kv body: %v: %.200q", err, raw)
			continue
		}
		rec, ok := s.byKV[kvKey(pairs)]
		if !ok {
			s.strange("kv body reverses to no record pushed: %.300q", raw)
			continue
		}
		// RFC 3164 carries the wall clock without zone or year: it must be
		// the record's own time in JST.
		s.rec.mu.Lock()
		want := s.rec.when[rec].In(s.jst).Format(time.Stamp)
		s.rec.mu.Unlock()
		if got := msg.Timestamp.Format(time.Stamp); got != want {
			s.strange("timestamp %q, want the record's time in JST %q: %.200q", got, want, raw)
			continue
		}
		s.rec.deliveredBy("syslog", rec, "", session)
	}
}

func (s *alogSink) strange(format string, args ...any) {
	s.rec.mu.Lock()
	s.rec.strange = append(s.rec.strange, "syslog: "+fmt.Sprintf(format, args...))
	s.rec.mu.Unlock()
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func kvKey(pairs [][2]string) string {
	var b strings.Builder
	for _, p := range pairs {
		b.WriteString(p[0])
		b.WriteByte(0)
		b.WriteString(p[1])
		b.WriteByte(0)
	}
	return b.String()
}

// flattenJSON is the kv body's reference flattening (syslogd.FlattenJSON).
func flattenJSON(tb testing.TB, raw []byte) [][2]string {
	tb.Helper()
	out, err := syslogd.FlattenJSON(raw)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// The ALog path: three Logpush jobs → siemship → RFC 3164 with a kv body in
// Asia/Tokyo over TLS to a real rsyslog. The agent is SIGKILLed three times
// mid-request (rsyslog frozen for a moment first, so pushes sit in the
// agent half delivered): every record answered 200 is at rsyslog, in RFC
// 3164 with its own time in JST and a body that reverses to its fields;
// what a killed session delivered of an unanswered push arrives twice.
func TestLogpushToSyslogALog(t *testing.T) {
	rec := newRecorder()
	s := newALog(t, rec)
	a := newAgent(t, rec, agentOptions{sinks: "sinks:\n" + s.config()})
	a.start()
	const uploads, per, kills = 24, 400, 3
	ps := a.startPush(uploads, per, 2)
	total := len(jobs) * uploads * per
	for k := 1; k <= kills; k++ {
		// Kills spread by progress, not time, so that pushes are still
		// in flight at the last one however fast the machine is.
		from := s.rcv.Count()
		waitFor(t, fmt.Sprintf("%d%% of the records at rsyslog, with pushes in flight", 100*k/(kills+1)), time.Minute, func() bool {
			left := ps.left.Load()
			n := s.rcv.Count()
			if left == 0 {
				t.Fatalf("every push was answered before kill %d (%s), %d messages at rsyslog", k, ps.stats(), n)
			}
			return n >= k*total/(kills+1) && n-from >= 300
		})
		// Frozen, rsyslog writes nothing more: pushes in flight wait for
		// their records' acknowledgement when the agent dies.
		s.rcv.Signal(syscall.SIGSTOP)
		time.Sleep(300 * time.Millisecond) // let pushes pile up against the frozen receiver
		a.sigkill()
		s.rcv.Signal(syscall.SIGCONT)
		// What rsyslog still had in its socket buffers is the killed
		// session's: let it write that out before the next starts.
		s.settle()
		a.start()
	}
	ps.wait(t, 2*time.Minute)
	a.terminate()
	s.collect()

	acked := ps.acked()
	if len(acked) != total {
		t.Errorf("%d records answered 200, want %d", len(acked), total)
	}
	dups := rec.check(t, acked, "syslog")
	if ps.count(0) == 0 {
		t.Errorf("no push was cut by a kill (%s): the kills did not hit a request", ps.stats())
	}
	a.deadLetters()
	t.Logf("%d SIGKILLs, %d duplicates (%.0f per SIGKILL); pusher: %s", kills, dups, float64(dups)/kills, ps.stats())
}
