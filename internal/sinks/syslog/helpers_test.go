package syslog

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/leodido/go-syslog/v4"
	"github.com/leodido/go-syslog/v4/rfc3164"
	"github.com/leodido/go-syslog/v4/rfc5424"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/tidwall/gjson"

	"github.com/siemship/siemship/internal/event"
	"github.com/siemship/siemship/internal/testenv/syslogd"
	"github.com/siemship/siemship/internal/tetragongen"
)

// genEvents returns n realistic Tetragon events; each carries its index as
// the sequence number tetragongen.Seq reads back.
func genEvents(tb testing.TB, n int, seed uint64) []event.Event {
	tb.Helper()
	g := tetragongen.New(seed, "node-a")
	evs := make([]event.Event, n)
	for i := range evs {
		line := g.Line(nil, i)
		ts, err := time.Parse(time.RFC3339Nano, gjson.GetBytes(line, "time").String())
		if err != nil {
			tb.Fatal(err)
		}
		var typ string
		gjson.ParseBytes(line).ForEach(func(k, _ gjson.Result) bool { typ = k.String(); return false })
		evs[i] = event.Event{Raw: line, Time: ts.UnixMilli(), Type: typ, Size: len(line)}
	}
	return evs
}

// run is a sink running on its own goroutine with one-event batches, so
// each event's acknowledgement is seen on its own.
type run struct {
	s      *Sink
	reg    *prometheus.Registry
	in     chan *event.Batch
	acked  []atomic.Bool
	nacked atomic.Int64
	cancel context.CancelFunc
	errc   chan error
	once   sync.Once
}

func testConfig(addr string) Config {
	cfg := DefaultConfig()
	cfg.Address = addr
	cfg.Hostname = "node-a"
	cfg.RetryInitial, cfg.RetryMax = 20*time.Millisecond, 200*time.Millisecond
	cfg.DialTimeout = 5 * time.Second
	return cfg
}

func startRun(tb testing.TB, cfg Config, n int) *run {
	tb.Helper()
	reg := prometheus.NewRegistry()
	log := slog.New(slog.NewTextHandler(testWriter{tb}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	s, err := New(cfg, "test", reg, log)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &run{s: s, reg: reg, in: make(chan *event.Batch, 64), acked: make([]atomic.Bool, n), cancel: cancel, errc: make(chan error, 1)}
	go func() { r.errc <- s.Run(ctx, r.in) }() // owned: finish or the cleanup waits for it
	tb.Cleanup(func() { r.cancel(); r.closeIn(); <-r.errc; r.errc <- nil })
	return r
}

// send hands events [from, to) to the sink, one per batch.
func (r *run) send(evs []event.Event, from, to int) {
	for i := from; i < to; i++ {
		i := i
		b := event.NewBatch("tetragon", []event.Event{evs[i]}, func() {
			if r.acked[i].Swap(true) {
				panic(fmt.Sprintf("event %d acknowledged twice", i))
			}
			r.nacked.Add(1)
		})
		b.Expect(1)
		r.in <- b
	}
}

func (r *run) closeIn() { r.once.Do(func() { close(r.in) }) }

// finish closes the input and waits for Run to return nil.
func (r *run) finish(tb testing.TB, timeout time.Duration) {
	tb.Helper()
	r.closeIn()
	select {
	case err := <-r.errc:
		r.errc <- err
		if err != nil {
			tb.Fatalf("Run: %v", err)
		}
	case <-time.After(timeout):
		tb.Fatalf("Run did not finish within %s (%d acknowledged)", timeout, r.nacked.Load())
	}
}

// waitAcked polls until n events are acknowledged.
func (r *run) waitAcked(tb testing.TB, n int, timeout time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for r.nacked.Load() < int64(n) {
		if time.Now().After(deadline) {
			tb.Fatalf("%d of %d events acknowledged within %s", r.nacked.Load(), n, timeout)
		}
		time.Sleep(5 * time.Millisecond) // polling an atomic the sink sets
	}
}

func (r *run) metric(name string) float64 {
	mfs, _ := r.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == name {
			var sum float64
			for _, m := range mf.GetMetric() {
				if c := m.GetCounter(); c != nil {
					sum += c.GetValue()
				} else if g := m.GetGauge(); g != nil {
					sum += g.GetValue()
				}
			}
			return sum
		}
	}
	return -1
}

type testWriter struct{ tb testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

var _ io.Writer = testWriter{}

// parsed is a received message as go-syslog read it.
type parsed struct {
	host, app, msgID string
	ts               time.Time
	sd               map[string]map[string]string
	facility, sev    uint8
	body             string
}

// parseMessage parses one received message in the given format.
func parseMessage(tb testing.TB, format string, raw string, loc *time.Location) parsed {
	tb.Helper()
	var p syslog.Machine
	if format == FormatRFC5424 {
		p = rfc5424.NewParser()
	} else {
		// No WithTimezone: it converts the zone-less wall clock (read as
		// UTC, year 0) into loc; the wall clock is what is compared.
		p = rfc3164.NewParser()
	}
	m, err := p.Parse([]byte(raw))
	if err != nil {
		tb.Fatalf("go-syslog cannot parse %s message: %v: %.300q", format, err, raw)
	}
	var out parsed
	switch m := m.(type) {
	case *rfc5424.SyslogMessage:
		out.host, out.app, out.msgID = deref(m.Hostname), deref(m.Appname), deref(m.MsgID)
		out.ts, out.body, out.facility, out.sev = *m.Timestamp, deref(m.Message), *m.Facility, *m.Severity
		if m.StructuredData != nil {
			out.sd = *m.StructuredData
		}
	case *rfc3164.SyslogMessage:
		out.host, out.app = deref(m.Hostname), deref(m.Appname)
		wall := *m.Timestamp
		out.ts = time.Date(wall.Year(), wall.Month(), wall.Day(), wall.Hour(), wall.Minute(), wall.Second(), 0, loc)
		_, out.body, out.facility, out.sev = *m.Timestamp, deref(m.Message), *m.Facility, *m.Severity
	}
	return out
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// flattenRef is the kv body's reference flattening (syslogd.FlattenJSON).
func flattenRef(tb testing.TB, raw []byte) [][2]string {
	tb.Helper()
	out, err := syslogd.FlattenJSON(raw)
	if err != nil {
		tb.Fatalf("reference flatten: %v", err)
	}
	return out
}

// parseKV reads a kv body back into its pairs (syslogd.ParseKV).
func parseKV(tb testing.TB, body string) [][2]string {
	tb.Helper()
	out, err := syslogd.ParseKV(body)
	if err != nil {
		tb.Fatalf("kv body: %v", err)
	}
	return out
}
