package logscale

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestInspectionAPI(t *testing.T) {
	s, ts := startServer(t, testConfig())
	body := structuredBody(map[string]string{"event_type": "process_exec"}, 100, `{"a":{"b":"c"}}`, `{"d":1}`, `{"e":2}`)
	r := do(t, ts, request{path: structuredPath, auth: "Bearer " + tokMain, body: gz(t, []byte(body)),
		header: map[string]string{"Content-Encoding": "gzip", "X-Test": "yes"}})
	if r.status != 200 {
		t.Fatalf("ingest %d", r.status)
	}
	ingest(t, ts, structuredPath, tokOther, structuredBody(nil, 1, `{}`))
	ingest(t, ts, structuredPath, tokMain, `[`)

	var events struct {
		Total  int
		Events []map[string]any
	}
	getJSON(t, ts, "/_emulator/events?repo=main&offset=1&limit=1", &events)
	if events.Total != 3 || len(events.Events) != 1 || events.Events[0]["@timestamp"] != 101.0 ||
		events.Events[0]["@rawstring"] != `{"d":1}` || events.Events[0]["fields"].(map[string]any)["d"] != "1" ||
		events.Events[0]["tags"].(map[string]any)["event_type"] != "process_exec" {
		t.Fatalf("events %+v", events)
	}
	getJSON(t, ts, "/_emulator/events", &events)
	if events.Total != 4 || len(events.Events) != 4 {
		t.Fatalf("all events: total %d", events.Total)
	}

	var st Stats
	getJSON(t, ts, "/_emulator/stats", &st)
	if st.Events != 4 || st.EventsByRepo["main"] != 3 || st.EventsByRepo["other"] != 1 ||
		st.RequestsByStatus[200] != 2 || st.RequestsByStatus[400] != 1 || st.EventsByTag["main"]["event_type=process_exec"] != 3 {
		t.Fatalf("stats %+v", st)
	}

	var reqs []RequestRecord
	getJSON(t, ts, "/_emulator/requests", &reqs)
	if len(reqs) != 3 {
		t.Fatalf("%d requests", len(reqs))
	}
	first := reqs[0]
	if first.Route != "humio-structured" || first.ContentEncoding != "gzip" || first.Status != 200 || first.Events != 3 ||
		first.DecodedBytes != int64(len(body)) || first.CompressedBytes == 0 || first.CompressedBytes == first.DecodedBytes ||
		first.Headers.Get("X-Test") != "yes" {
		t.Errorf("request record %+v", first)
	}
	if a := first.Headers.Get("Authorization"); a != "Bearer <redacted>" || strings.Contains(r.body+a, tokMain) {
		t.Errorf("Authorization recorded as %q", a)
	}
	if reqs[2].Status != 400 || reqs[2].Reason == "" || reqs[2].Events != 0 {
		t.Errorf("rejected request record %+v", reqs[2])
	}
	getJSON(t, ts, "/_emulator/requests?limit=1", &reqs)
	if len(reqs) != 1 || reqs[0].Status != 400 {
		t.Errorf("limit=1: %+v", reqs)
	}

	if r := do(t, ts, request{path: "/_emulator/reset"}); r.status != 200 {
		t.Fatalf("reset %d", r.status)
	}
	if st := s.Stats(); st.Events != 0 || st.Requests != 0 || len(s.Events("")) != 0 || len(s.Requests()) != 0 {
		t.Fatalf("after reset: %+v", st)
	}
}

func TestInspectionFaults(t *testing.T) {
	s, ts := startServer(t, testConfig())
	if r := do(t, ts, request{path: "/_emulator/faults", body: []byte(`{"failNext":{"n":1,"status":429,"retryAfter":"2"}}`)}); r.status != 200 {
		t.Fatalf("faults %d %s", r.status, r.body)
	}
	if r := ingest(t, ts, structuredPath, tokMain, "[]"); r.status != 429 || r.header.Get("Retry-After") != "2" {
		t.Fatalf("fail-next over HTTP: %d", r.status)
	}
	r := do(t, ts, request{path: "/_emulator/faults", body: []byte(`{"mix":{"rate":1,"seed":1,"kinds":["500"]}}`)})
	if r.status != 200 {
		t.Fatalf("mix %d %s", r.status, r.body)
	}
	if r := ingest(t, ts, structuredPath, tokMain, "[]"); r.status != 500 {
		t.Fatalf("mix over HTTP: %d", r.status)
	}
	for _, bad := range []string{`{"mix":{"kinds":["teapot"]}}`, `{"failNext":{"n":1,"status":200}}`, `{"mix":{"slowDelay":"soon"}}`, `{"unknown":1}`, `{`} {
		if r := do(t, ts, request{path: "/_emulator/faults", body: []byte(bad)}); r.status != 400 {
			t.Errorf("%s: %d", bad, r.status)
		}
	}
	s.Reset()
	if r := ingest(t, ts, structuredPath, tokMain, "[]"); r.status != 200 {
		t.Fatalf("reset must clear faults: %d", r.status)
	}
}

func TestInspectionCanBeDisabled(t *testing.T) {
	cfg := testConfig()
	cfg.DisableInspection = true
	_, ts := startServer(t, cfg)
	for _, p := range []string{"/_emulator/stats", "/_emulator/events", "/_emulator/requests"} {
		if r := do(t, ts, request{method: http.MethodGet, path: p}); r.status != 404 {
			t.Errorf("%s: %d", p, r.status)
		}
	}
}

func TestRequestLogIsBounded(t *testing.T) {
	cfg := testConfig()
	cfg.MaxRequestLog = 3
	s, ts := startServer(t, cfg)
	for i := range 5 {
		ingest(t, ts, structuredPath, tokMain, structuredBody(nil, int64(i), `{}`))
	}
	reqs := s.Requests()
	if len(reqs) != 3 || reqs[0].ID != 3 || reqs[2].ID != 5 {
		t.Fatalf("request log %+v", reqs)
	}
}

func getJSON(t *testing.T, ts *httptest.Server, path string, v any) {
	t.Helper()
	r := do(t, ts, request{method: http.MethodGet, path: path})
	if r.status != 200 {
		t.Fatalf("GET %s: %d %s", path, r.status, r.body)
	}
	if err := json.Unmarshal([]byte(r.body), v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}
