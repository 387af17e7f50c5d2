package tetragonparse

import (
	"bytes"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/tidwall/gjson"

	"github.com/siemship/siemship/internal/event"
	"github.com/siemship/siemship/internal/jsonstr"
	"github.com/siemship/siemship/internal/testkit"
)

func newParser() *Parser {
	return New(prometheus.NewRegistry(), slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func parseOne(p *Parser, raw string, flags event.Flags) event.Event {
	b := event.NewBatch("tetragon", []event.Event{{Raw: []byte(raw), Size: len(raw), Flags: flags}}, nil)
	p.Parse(b)
	return b.Events[0]
}

func TestParse(t *testing.T) {
	ms := func(s string) int64 {
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm.UnixMilli()
	}
	cases := []struct {
		name      string
		raw       string
		flags     event.Flags
		wantType  string
		wantTime  int64
		wantFlags event.Flags
	}{
		{"exec", `{"process_exec":{"process":{"pid":1}},"node_name":"n","time":"2023-10-06T22:03:57.700326678Z"}`,
			0, "process_exec", ms("2023-10-06T22:03:57.700Z"), 0},
		{"spaces after commas", `{"process_exit": {"process": {}}, "node_name": "n", "time": "2024-04-14T02:18:02.24Z"}`,
			0, "process_exit", ms("2024-04-14T02:18:02.240Z"), 0},
		{"common key first", `{"node_name":"n","process_kprobe":{},"time":"2024-04-14T02:18:02Z"}`,
			0, "process_kprobe", ms("2024-04-14T02:18:02Z"), 0},
		{"numeric zone", `{"test":{},"time":"2024-04-14T04:18:02.5+02:00"}`,
			0, "test", ms("2024-04-14T02:18:02.5Z"), 0},
		{"nested time is not the event time", `{"process_exec":{"time":"2020-01-01T00:00:00Z"},"time":"2024-04-14T02:18:02Z"}`,
			0, "process_exec", ms("2024-04-14T02:18:02Z"), 0},
		{"rate limit", `{"rate_limit_info":{"number_of_dropped_process_events":"42"},"node_name":"n","time":"2024-04-14T02:18:03Z"}`,
			0, "rate_limit_info", ms("2024-04-14T02:18:03Z"), 0},
		{"malformed", `{"process_exec":{"process":`, 0, "process_exec", ms("2024-04-14T02:18:03Z"), event.Malformed | event.TimeGuessed},
		{"not an object", `["process_exec"]`, 0, "unknown", ms("2024-04-14T02:18:03Z"), event.Malformed | event.TimeGuessed},
		{"truncated", `{"process_lsm":{"process":{"arguments":"xxxx`, event.Truncated, "process_lsm",
			ms("2024-04-14T02:18:03Z"), event.Truncated | event.TimeGuessed},
		{"time not last", `{"process_exec":{},"time":"2024-04-14T02:18:04Z","node_name":"n"}`,
			0, "process_exec", ms("2024-04-14T02:18:04Z"), 0},
		{"escaped quote before a last key", `{"process_exec":{"a":"x\"time\":\"1999-01-01T00:00:00Z\""},"node_name":"n","time" : "2024-04-14T02:18:05Z" }`,
			0, "process_exec", ms("2024-04-14T02:18:05Z"), 0},
		{"nested last time", `{"process_exec":{"time":"1999-01-01T00:00:00Z"}}`,
			0, "process_exec", ms("2024-04-14T02:18:05Z"), event.TimeGuessed},
		{"bad time", `{"process_exec":{},"time":"yesterday"}`, 0, "process_exec", ms("2024-04-14T02:18:05Z"), event.TimeGuessed},
	}
	p := newParser() // one parser: later cases borrow the time of earlier ones
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := parseOne(p, c.raw, c.flags)
			if e.Type != c.wantType || e.Time != c.wantTime || e.Flags != c.wantFlags {
				t.Fatalf("got type=%q time=%d flags=%b, want %q %d %b", e.Type, e.Time, e.Flags, c.wantType, c.wantTime, c.wantFlags)
			}
		})
	}
	if n := testutil.ToFloat64(p.dropped); n != 42 {
		t.Errorf("dropped events counted %v, want 42", n)
	}
	if n := testutil.ToFloat64(p.malformed); n != 2 {
		t.Errorf("malformed counted %v, want 2", n)
	}
}

func TestSamplesParseWithoutFlags(t *testing.T) {
	p := newParser()
	for _, raw := range testkit.TetragonSamples(t) {
		e := parseOne(p, string(raw), 0)
		if e.Flags != 0 || e.Type == "" || e.Time < time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli() {
			t.Errorf("sample %.40q: type=%q time=%d flags=%b", raw, e.Type, e.Time, e.Flags)
		}
		if !bytes.Equal(e.Raw, raw) {
			t.Error("parsing changed the event bytes")
		}
	}
}

func TestFastTimeMatchesTimeParse(t *testing.T) {
	for _, s := range []string{"2026-11-22T10:00:00Z", "2026-11-22T10:00:00.1Z", "2026-02-28T23:59:59.999999999Z",
		"2024-02-29T00:00:00.000Z", "2023-02-29T00:00:00Z", "2026-13-01T00:00:00Z"} {
		got, ok := parseRFC3339Millis([]byte(s))
		tm, err := time.Parse(time.RFC3339Nano, s)
		if ok != (err == nil) || (ok && got != tm.UnixMilli()) {
			t.Errorf("%s: got %d ok=%v; time.Parse %v err=%v", s, got, ok, tm.UnixMilli(), err)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, raw := range testkit.TetragonSamples(f) {
		f.Add(raw)
	}
	f.Add([]byte(`{"a":`))
	f.Add([]byte(`{"time":"2026-11-22T10:00:00.123456789Z"}`))
	f.Add([]byte(`{"\u0070rocess_exec":{},"time":"2026-11-22T10:00:00+01:00"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		p := newParser()
		orig := bytes.Clone(raw)
		for _, flags := range []event.Flags{0, event.Truncated} {
			e := parseOne(p, string(raw), flags)
			if !bytes.Equal(raw, orig) {
				t.Fatal("parse modified its input")
			}
			if e.Flags&event.Malformed == 0 && flags == 0 && !jsonstr.StartsObject(raw) {
				t.Fatal("a non-object was not flagged malformed")
			}
			if e.Time == 0 {
				t.Fatal("event left without a time")
			}
			// The backward fast path must agree with a full lookup.
			if s, ok := lastMemberTime(raw); ok && e.Flags&event.Malformed == 0 && flags == 0 {
				if r := gjson.GetBytes(raw, "time"); r.Type == gjson.String && r.Str != string(s) {
					t.Fatalf("fast path found %q, gjson %q", s, r.Str)
				}
			}
			if !isIdentifier([]byte(e.Type)) {
				t.Fatalf("event type %q is not a safe tag", e.Type)
			}
		}
	})
}

func BenchmarkParse(b *testing.B) {
	samples := testkit.TetragonSamples(b)
	p := newParser()
	events := make([]event.Event, 1000)
	var size int
	for i := range events {
		events[i].Raw = samples[i%len(samples)]
		size += len(events[i].Raw)
	}
	batch := event.NewBatch("tetragon", events, nil)
	b.SetBytes(int64(size / len(events)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += len(events) {
		p.Parse(batch)
	}
}
