package logscale

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// validBodies is a minimal valid body per route name.
var validBodies = map[string]string{
	"humio-structured":   `[{"events":[{"timestamp":1713061094376,"attributes":{"a":1}}]}]`,
	"humio-unstructured": `[{"messages":["line one"]}]`,
	"hec":                `{"event":{"a":1}}`,
	"hec-raw":            "line one\n",
	"raw":                "line one",
	"json":               `{"a":1}`,
}

func TestStatusNeedsNoAuth(t *testing.T) {
	_, ts := startServer(t, testConfig())
	r := do(t, ts, request{method: http.MethodGet, path: "/api/v1/status"})
	var v struct{ Status, Version string }
	if err := json.Unmarshal([]byte(r.body), &v); err != nil || r.status != 200 || v.Status != "OK" || !strings.HasPrefix(v.Version, "1.") {
		t.Fatalf("status: %d %q", r.status, r.body)
	}
	if r := do(t, ts, request{method: http.MethodPost, path: "/api/v1/status"}); r.status != http.StatusMethodNotAllowed {
		t.Fatalf("POST status: %d", r.status)
	}
}

func TestIngestAuthAndMethods(t *testing.T) {
	_, ts := startServer(t, testConfig())
	for path, rt := range ingestRoutes {
		body := validBodies[rt.name]
		cases := []struct {
			name   string
			method string
			auth   string
			want   int
		}{
			{"bearer", "POST", "Bearer " + tokMain, 200},
			{"bearer lower-case scheme", "POST", "bearer " + tokMain, 200},
			{"missing", "POST", "", 401},
			{"unknown", "POST", "Bearer nope", 401},
			{"no scheme", "POST", tokMain, 401},
			{"basic scheme", "POST", "Basic " + tokMain, 401},
			{"blocked", "POST", "Bearer " + tokBlocked, 403},
			{"deleted repo", "POST", "Bearer " + tokGone, 422},
			{"GET", "GET", "Bearer " + tokMain, 405},
			{"PUT", "PUT", "Bearer " + tokMain, 405},
			{"splunk", "POST", "Splunk " + tokMain, map[bool]int{true: 200, false: 401}[rt.hec]},
		}
		for _, c := range cases {
			r := do(t, ts, request{method: c.method, path: path, auth: c.auth, body: []byte(body)})
			if r.status != c.want {
				t.Errorf("%s %s: got %d (%s), want %d", path, c.name, r.status, strings.TrimSpace(r.body), c.want)
			}
		}
	}
}

func TestUnknownPathIs404(t *testing.T) {
	_, ts := startServer(t, testConfig())
	if r := ingest(t, ts, "/api/v1/ingest/nope", tokMain, "{}"); r.status != 404 {
		t.Fatalf("got %d", r.status)
	}
}

func TestRuntimeTokenChanges(t *testing.T) {
	s, ts := startServer(t, testConfig())
	body := validBodies["humio-structured"]
	path := "/api/v1/ingest/humio-structured"
	if r := ingest(t, ts, path, "late", body); r.status != 401 {
		t.Fatalf("before AddToken: %d", r.status)
	}
	s.AddToken("late", Token{Repo: "main"})
	if r := ingest(t, ts, path, "late", body); r.status != 200 {
		t.Fatalf("after AddToken: %d", r.status)
	}
	s.BlockToken("late", true)
	if r := ingest(t, ts, path, "late", body); r.status != 403 {
		t.Fatalf("after BlockToken: %d", r.status)
	}
	s.BlockToken("late", false)
	s.DeleteRepo("main")
	if r := ingest(t, ts, path, "late", body); r.status != 422 {
		t.Fatalf("after DeleteRepo: %d", r.status)
	}
}

func TestRejectedAuthStoresNothing(t *testing.T) {
	s, ts := startServer(t, testConfig())
	for _, tok := range []string{"nope", tokBlocked, tokGone} {
		ingest(t, ts, "/api/v1/ingest/humio-structured", tok, validBodies["humio-structured"])
	}
	if st := s.Stats(); st.Events != 0 || len(s.Events("")) != 0 || st.RequestsByStatus[401] != 1 ||
		st.RequestsByStatus[403] != 1 || st.RequestsByStatus[422] != 1 {
		t.Fatalf("stats %+v", st)
	}
}
