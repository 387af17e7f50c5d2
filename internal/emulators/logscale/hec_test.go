package logscale

import (
	"strings"
	"testing"
)

func TestHECDecoding(t *testing.T) {
	cases := []struct {
		name   string
		body   string
		status int
		events int
	}{
		{"empty body", ``, 200, 0},
		{"whitespace only", " \n\t\r\n", 200, 0},
		{"one object", `{"event":{"a":1}}`, 200, 1},
		{"newline separated", "{\"event\":\"x\"}\n{\"event\":\"y\"}\n", 200, 2},
		{"concatenated", `{"event":"x"}{"event":"y"}`, 200, 2},
		{"CRLF and spaces", "{\"event\":\"x\"} \r\n {\"event\":\"y\"}", 200, 2},
		{"braces in strings", `{"event":"a } { \" ]"}{"event":{"b":"}"}}`, 200, 2},
		{"index equals repo", `{"event":"x","index":"main"}`, 200, 1},
		{"all keys", `{"time":1713061094.376,"event":{"a":1},"fields":{"#t":"v","f":"w"},"index":"main","sourcetype":"json","source":"s","host":"h"}`, 200, 1},
		{"time as string", `{"time":"1713061094.5","event":"x"}`, 200, 1},

		{"array is not a stream", `[{"event":"x"}]`, 400, 0},
		{"index of another repo", `{"event":"x","index":"other"}`, 400, 0},
		{"index not string", `{"event":"x","index":1}`, 400, 0},
		{"event missing", `{"time":1}`, 400, 0},
		{"event null", `{"event":null}`, 400, 0},
		{"event number", `{"event":1}`, 400, 0},
		{"event empty string", `{"event":""}`, 400, 0},
		{"event array", `{"event":[1]}`, 400, 0},
		{"bad time", `{"event":"x","time":"yesterday"}`, 400, 0},
		{"negative time", `{"event":"x","time":-1}`, 400, 0},
		{"fields not object", `{"event":"x","fields":[]}`, 400, 0},
		{"field value not string", `{"event":"x","fields":{"a":1}}`, 400, 0},
		{"host not string", `{"event":"x","host":1}`, 400, 0},
		{"unknown key", `{"event":"x","evnt":"y"}`, 400, 0},
		{"truncated", `{"event":"x"`, 400, 0},
		{"invalid inside", `{"event":{"a":}}`, 400, 0},
		{"garbage between", `{"event":"x"} , {"event":"y"}`, 400, 0},
		{"second bad rejects first", `{"event":"x"}{"event":"y","index":"nope"}`, 400, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, ts := startServer(t, testConfig())
			r := ingest(t, ts, "/services/collector/event", tokMain, c.body)
			if r.status != c.status {
				t.Fatalf("status %d (%s), want %d", r.status, strings.TrimSpace(r.body), c.status)
			}
			if got := len(s.Events("main")); got != c.events {
				t.Errorf("stored %d events, want %d", got, c.events)
			}
		})
	}
}

func TestHECNormalisation(t *testing.T) {
	s, ts := startServer(t, testConfig())
	body := `{"time":1713061094.376,"event":{"a":{"b":1}},"fields":{"#source":"tetragon","k":"v"},"sourcetype":"json","source":"file","host":"node1"}
{"event":"plain text"}`
	r := do(t, ts, request{path: "/api/v1/ingest/hec", auth: "Splunk " + tokMain, body: []byte(body)})
	if r.status != 200 || r.body != hecOK {
		t.Fatalf("status %d body %q", r.status, r.body)
	}
	evs := s.Events("main")
	if len(evs) != 2 {
		t.Fatalf("%d events", len(evs))
	}
	e := evs[0]
	f := e.Fields()
	if e.Timestamp != 1713061094376 || e.RawString != `{"a":{"b":1}}` || e.Tags["source"] != "tetragon" ||
		e.Tags["type"] != "json" || f["a.b"] != "1" || f["k"] != "v" || f["@host"] != "node1" || f["@source"] != "file" {
		t.Errorf("event %+v fields %v", e, f)
	}
	if _, ok := f["#source"]; ok {
		t.Error("#-fields must become tags, not fields")
	}
	e = evs[1]
	if e.RawString != "plain text" || e.Attributes != "" || e.Timestamp <= 1713061094376 {
		t.Errorf("text event %+v", e)
	}
}

func TestHECSampleEvents(t *testing.T) {
	s, ts := startServer(t, testConfig())
	lines := tetragonLines(t)
	if r := ingest(t, ts, "/services/collector", tokMain, hecBody(lines...)); r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	evs := s.Events("main")
	if len(evs) != len(lines) {
		t.Fatalf("%d events", len(evs))
	}
	for i, e := range evs {
		if e.Attributes != lines[i] {
			t.Fatalf("event %d changed in transit", i)
		}
	}
}

func TestParsedRoutes(t *testing.T) {
	cases := []struct {
		name, path, token, body string
		status                  int
		raws                    []string
		typ                     string
	}{
		{"hec raw LF", "/api/v1/ingest/hec/raw", tokParsed, "a\nb\n", 200, []string{"a", "b"}, "tetragon"},
		{"hec raw CRLF, CR, blank lines", "/services/collector/raw", tokMain, "a\r\nb\rc\n\n\r\nd", 200, []string{"a", "b", "c", "d"}, ""},
		{"hec raw empty", "/services/collector/raw", tokMain, "", 200, nil, ""},
		{"raw whole body", "/api/v1/ingest/raw", tokParsed, "x\ny", 200, []string{"x\ny"}, "tetragon"},
		{"raw empty", "/api/v1/ingest/raw", tokMain, "", 200, nil, ""},
		{"json object", "/api/v1/ingest/json", tokMain, `{"a":1} `, 200, []string{`{"a":1}`}, ""},
		{"json array", "/api/v1/ingest/json", tokMain, `[{"a":1},{"b":2}]`, 200, []string{`{"a":1}`, `{"b":2}`}, ""},
		{"json empty array", "/api/v1/ingest/json", tokMain, `[]`, 200, nil, ""},
		{"json scalar item", "/api/v1/ingest/json", tokMain, `[{"a":1},2]`, 400, nil, ""},
		{"json string", "/api/v1/ingest/json", tokMain, `"x"`, 400, nil, ""},
		{"json invalid", "/api/v1/ingest/json", tokMain, `{`, 400, nil, ""},
		{"unstructured", "/api/v1/ingest/humio-unstructured", tokMain,
			`[{"messages":["m1","m2"],"type":"kv","fields":{"f":"v"},"tags":{"t":"x"}}]`, 200, []string{"m1", "m2"}, "kv"},
		{"unstructured token parser wins", "/api/v1/ingest/humio-unstructured", tokParsed,
			`[{"messages":["m1"],"type":"kv"}]`, 200, []string{"m1"}, "tetragon"},
		{"unstructured messages missing", "/api/v1/ingest/humio-unstructured", tokMain, `[{"type":"kv"}]`, 400, nil, ""},
		{"unstructured message not string", "/api/v1/ingest/humio-unstructured", tokMain, `[{"messages":["a",1]}]`, 400, nil, ""},
		{"unstructured field not string", "/api/v1/ingest/humio-unstructured", tokMain, `[{"messages":["a"],"fields":{"f":1}}]`, 400, nil, ""},
		{"unstructured unknown key", "/api/v1/ingest/humio-unstructured", tokMain, `[{"messages":["a"],"tag":{}}]`, 400, nil, ""},
		{"unstructured not array", "/api/v1/ingest/humio-unstructured", tokMain, `{"messages":["a"]}`, 400, nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, ts := startServer(t, testConfig())
			r := ingest(t, ts, c.path, c.token, c.body)
			if r.status != c.status {
				t.Fatalf("status %d (%s), want %d", r.status, strings.TrimSpace(r.body), c.status)
			}
			evs := s.Events("main")
			if len(evs) != len(c.raws) {
				t.Fatalf("%d events, want %d", len(evs), len(c.raws))
			}
			for i, e := range evs {
				if e.RawString != c.raws[i] || e.Tags["type"] != c.typ {
					t.Errorf("event %d: raw %q type %q", i, e.RawString, e.Tags["type"])
				}
			}
		})
	}
}

func TestUnstructuredFieldsAndTags(t *testing.T) {
	s, ts := startServer(t, testConfig())
	ingest(t, ts, "/api/v1/ingest/humio-unstructured", tokMain, `[{"messages":["m"],"fields":{"f":"v"},"tags":{"t":"x"}}]`)
	evs := s.Events("main")
	if len(evs) != 1 || evs[0].Fields()["f"] != "v" || evs[0].Tags["t"] != "x" {
		t.Fatalf("events %+v", evs)
	}
}
