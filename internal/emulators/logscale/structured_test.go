package logscale

import (
	"strings"
	"testing"
)

const structuredPath = "/api/v1/ingest/humio-structured"

func TestStructuredSchema(t *testing.T) {
	cases := []struct {
		name   string
		body   string
		status int
		events int
	}{
		{"empty array verifies a token", `[]`, 200, 0},
		{"empty array with spaces", " [ ] \n", 200, 0},
		{"epoch ms", `[{"events":[{"timestamp":1713061094376,"attributes":{"a":1}}]}]`, 200, 1},
		{"RFC 3339 Z", `[{"events":[{"timestamp":"2024-04-14T02:18:14.376Z"}]}]`, 200, 1},
		{"RFC 3339 nanos offset", `[{"events":[{"timestamp":"2024-04-14T04:18:14.376123456+02:00"}]}]`, 200, 1},
		{"ISO basic offset", `[{"events":[{"timestamp":"2024-04-14T04:18:14.376+0200"}]}]`, 200, 1},
		{"no zone with timezone", `[{"events":[{"timestamp":"2024-04-14T04:18:14","timezone":"UTC"}]}]`, 200, 1},
		{"rawstring only", `[{"events":[{"timestamp":1,"rawstring":"hello"}]}]`, 200, 1},
		{"tags and two groups", `[{"tags":{"source":"t"},"events":[{"timestamp":1},{"timestamp":2}]},{"events":[]}]`, 200, 2},
		{"empty events", `[{"events":[]}]`, 200, 0},

		{"empty body", ``, 400, 0},
		{"not JSON", `[{"events":[`, 400, 0},
		{"trailing garbage", `[] x`, 400, 0},
		{"object not array", `{"events":[]}`, 400, 0},
		{"group not object", `[[]]`, 400, 0},
		{"events missing", `[{"tags":{}}]`, 400, 0},
		{"events not array", `[{"events":{}}]`, 400, 0},
		{"events null", `[{"events":null}]`, 400, 0},
		{"unknown group key", `[{"event":[]}]`, 400, 0},
		{"tags not object", `[{"tags":[],"events":[]}]`, 400, 0},
		{"tag value not string", `[{"tags":{"a":1},"events":[]}]`, 400, 0},
		{"event not object", `[{"events":[1]}]`, 400, 0},
		{"timestamp missing", `[{"events":[{"attributes":{}}]}]`, 400, 0},
		{"timestamp null", `[{"events":[{"timestamp":null}]}]`, 400, 0},
		{"timestamp float", `[{"events":[{"timestamp":1713061094.376}]}]`, 400, 0},
		{"timestamp exponent", `[{"events":[{"timestamp":1e12}]}]`, 400, 0},
		{"timestamp negative", `[{"events":[{"timestamp":-1}]}]`, 400, 0},
		{"timestamp too large", `[{"events":[{"timestamp":99999999999999999999}]}]`, 400, 0},
		{"timestamp bool", `[{"events":[{"timestamp":true}]}]`, 400, 0},
		{"timestamp numeric string", `[{"events":[{"timestamp":"1713061094376"}]}]`, 400, 0},
		{"timestamp without zone", `[{"events":[{"timestamp":"2024-04-14T04:18:14"}]}]`, 400, 0},
		{"timestamp date only", `[{"events":[{"timestamp":"2024-04-14"}]}]`, 400, 0},
		{"bad timezone", `[{"events":[{"timestamp":"2024-04-14T04:18:14","timezone":"Mars/Base"}]}]`, 400, 0},
		{"timezone not string", `[{"events":[{"timestamp":1,"timezone":1}]}]`, 400, 0},
		{"attributes not object", `[{"events":[{"timestamp":1,"attributes":"x"}]}]`, 400, 0},
		{"attributes array", `[{"events":[{"timestamp":1,"attributes":[]}]}]`, 400, 0},
		{"rawstring not string", `[{"events":[{"timestamp":1,"rawstring":{}}]}]`, 400, 0},
		{"unknown event key", `[{"events":[{"timestamp":1,"attribute":{}}]}]`, 400, 0},
		{"one bad event rejects all", `[{"events":[{"timestamp":1},{"timestamp":2},{}]}]`, 400, 0},
		{"bad second group rejects first", `[{"events":[{"timestamp":1}]},{"events":[{}]}]`, 400, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, ts := startServer(t, testConfig())
			r := ingest(t, ts, structuredPath, tokMain, c.body)
			if r.status != c.status {
				t.Fatalf("status %d (%s), want %d", r.status, strings.TrimSpace(r.body), c.status)
			}
			if c.status == 200 && r.body != "{}" {
				t.Errorf("success body %q, want {}", r.body)
			}
			if c.status == 400 && strings.TrimSpace(r.body) == "" {
				t.Error("400 without a reason")
			}
			if got := len(s.Events("main")); got != c.events {
				t.Errorf("stored %d events, want %d", got, c.events)
			}
		})
	}
}

func TestStructuredNormalisation(t *testing.T) {
	s, ts := startServer(t, testConfig())
	body := `[{"tags":{"source":"tetragon","event_type":"process_exec"},"events":[
		{"timestamp":"2024-04-14T02:18:14.376Z","attributes":{"process_exec":{"process":{"binary":"/usr/bin/curl","pid":52699,"flags":["a","b"],"ok":true,"none":null},"list":[{"x":"y"}]}}},
		{"timestamp":1713061094377,"timezone":"Europe/Copenhagen","rawstring":"raw text","attributes":{"k":"v \"q\""}}]}]`
	if r := ingest(t, ts, structuredPath, tokMain, body); r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	evs := s.Events("main")
	if len(evs) != 2 {
		t.Fatalf("%d events", len(evs))
	}
	e := evs[0]
	if e.Timestamp != 1713061094376 || e.Repo != "main" || e.Route != "humio-structured" || e.RequestID == 0 {
		t.Errorf("event meta %+v", e)
	}
	if e.Tags["source"] != "tetragon" || e.Tags["event_type"] != "process_exec" || len(e.Tags) != 2 {
		t.Errorf("tags %v", e.Tags)
	}
	if !strings.HasPrefix(e.RawString, `{"process_exec"`) || e.RawString != e.Attributes {
		t.Errorf("@rawstring of an event without rawstring must be its attributes: %q", e.RawString)
	}
	want := map[string]string{
		"process_exec.process.binary":   "/usr/bin/curl",
		"process_exec.process.pid":      "52699",
		"process_exec.process.flags[0]": "a",
		"process_exec.process.flags[1]": "b",
		"process_exec.process.ok":       "true",
		"process_exec.process.none":     "null",
		"process_exec.list[0].x":        "y",
	}
	f := e.Fields()
	for k, v := range want {
		if f[k] != v {
			t.Errorf("field %s = %q, want %q", k, f[k], v)
		}
	}
	if len(f) != len(want) {
		t.Errorf("fields %v", f)
	}
	e = evs[1]
	if e.RawString != "raw text" || e.Timezone != "Europe/Copenhagen" || e.Fields()["k"] != `v "q"` || e.Attributes != `{"k":"v \"q\""}` {
		t.Errorf("second event %+v", e)
	}
	st := s.Stats()
	if st.Events != 2 || st.EventsByRepo["main"] != 2 || st.EventsByTag["main"]["event_type=process_exec"] != 2 {
		t.Errorf("stats %+v", st)
	}
}

// The sample Tetragon events must arrive byte for byte as attributes.
func TestStructuredKeepsAttributeBytes(t *testing.T) {
	s, ts := startServer(t, testConfig())
	lines := tetragonLines(t)
	body := structuredBody(map[string]string{"source": "tetragon"}, 1713061094000, lines...)
	if r := do(t, ts, request{path: structuredPath, auth: "Bearer " + tokMain, body: gz(t, []byte(body)),
		header: map[string]string{"Content-Encoding": "gzip"}}); r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	evs := s.Events("main")
	if len(evs) != len(lines) {
		t.Fatalf("%d events, want %d", len(evs), len(lines))
	}
	for i, e := range evs {
		if e.Attributes != lines[i] || e.Timestamp != 1713061094000+int64(i) {
			t.Fatalf("event %d changed in transit", i)
		}
	}
}

func TestDiscardKeepsCountersOnly(t *testing.T) {
	cfg := testConfig()
	cfg.Discard = true
	s, ts := startServer(t, cfg)
	body := structuredBody(map[string]string{"event_type": "x"}, 1, `{"a":1}`, `{"b":2}`)
	if r := ingest(t, ts, structuredPath, tokMain, body); r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	if r := ingest(t, ts, structuredPath, tokMain, `[{"events":[{}]}]`); r.status != 400 {
		t.Fatalf("discard mode must still validate: %d", r.status)
	}
	if st := s.Stats(); st.Events != 2 || st.EventsByTag["main"]["event_type=x"] != 2 || len(s.Events("")) != 0 {
		t.Fatalf("stats %+v, %d events kept", st, len(s.Events("")))
	}
}

func TestOnEventWithDiscard(t *testing.T) {
	cfg := testConfig()
	cfg.Discard = true
	var got []int64
	cfg.OnEvent = func(e StoredEvent) { got = append(got, e.Timestamp) }
	s, ts := startServer(t, cfg)
	ingest(t, ts, structuredPath, tokMain, structuredBody(nil, 10, `{}`, `{}`, `{}`))
	ingest(t, ts, structuredPath, tokMain, `[{"events":[{"timestamp":1},{}]}]`) // rejected: no callback
	if len(got) != 3 || got[0] != 10 || got[2] != 12 || len(s.Events("")) != 0 {
		t.Fatalf("OnEvent saw %v", got)
	}
}
