package falcon

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

type resAnswer struct {
	Meta struct {
		Pagination struct {
			Offset int    `json:"offset"`
			Total  int    `json:"total"`
			After  string `json:"after"`
		} `json:"pagination"`
	} `json:"meta"`
	Resources []json.RawMessage `json:"resources"`
	Errors    []struct {
		Message string `json:"message"`
	} `json:"errors"`
}

func resServer(t *testing.T) (*Server, *httptest.Server, string) {
	t.Helper()
	s := New(Config{ClientID: "id", ClientSecret: "secret"})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	_, tok := token(t, srv, "secret")
	return s, srv, tok
}

func call(t *testing.T, srv *httptest.Server, tok, method, path string, q url.Values, body any) (int, resAnswer) {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, srv.URL+path+"?"+q.Encode(), rd)
	req.Header.Set("Authorization", "Bearer "+tok)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a resAnswer
	json.NewDecoder(resp.Body).Decode(&a)
	return resp.StatusCode, a
}

func ids(a resAnswer) []string {
	var out []string
	for _, r := range a.Resources {
		var s string
		json.Unmarshal(r, &s)
		out = append(out, s)
	}
	return out
}

// Queries filter with >, >= and + on quoted times, sort ascending by the
// timestamp field with ties by id, page by offset within the real limits,
// and the details endpoints answer the records' current versions.
func TestResourceQueryFilterSortOffset(t *testing.T) {
	s, srv, tok := resServer(t)
	base := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	old := s.AddRecords("hosts", 3, base)
	mid := s.AddRecords("hosts", 4, base.Add(time.Hour))
	q := url.Values{"filter": {"modified_timestamp:>='" + base.Add(time.Hour).Format(time.RFC3339) + "'"}, "sort": {"modified_timestamp.asc"}, "limit": {"3"}}
	code, a := call(t, srv, tok, "GET", "/devices/queries/devices/v1", q, nil)
	if code != 200 || strings.Join(ids(a), ",") != strings.Join(mid[:3], ",") || a.Meta.Pagination.Total != 4 {
		t.Fatalf("page 1: %d %v total %d, want %v", code, ids(a), a.Meta.Pagination.Total, mid[:3])
	}
	q.Set("offset", "3")
	_, a = call(t, srv, tok, "GET", "/devices/queries/devices/v1", q, nil)
	if got := ids(a); len(got) != 1 || got[0] != mid[3] {
		t.Fatalf("page 2: %v", got)
	}
	q = url.Values{"filter": {"modified_timestamp:>'" + base.Format(time.RFC3339) + "'+modified_timestamp:<'" + base.Add(2*time.Hour).Format(time.RFC3339) + "'"}}
	if _, a = call(t, srv, tok, "GET", "/devices/queries/devices/v1", q, nil); len(ids(a)) != 4 {
		t.Fatalf("> and + : %v", ids(a))
	}
	// Strictness: limits, sort form, an unencoded +, ids per details call.
	for _, bad := range []url.Values{
		{"limit": {"5001"}},
		{"sort": {"modified_timestamp|asc"}},
		{"sort": {"hostname.asc"}},
		{"filter": {"modified_timestamp:>'x' status:'normal'"}},
		{"filter": {"modified_timestamp:>2025-01-01"}},
		{"offset": {"9999"}, "limit": {"2"}},
	} {
		if code, _ := call(t, srv, tok, "GET", "/devices/queries/devices/v1", bad, nil); code != 400 {
			t.Errorf("%v: %d, want 400", bad, code)
		}
	}
	code, a = call(t, srv, tok, "POST", "/devices/entities/devices/v2", nil, map[string][]string{"ids": append(old[:1], mid[0])})
	if code != 200 || len(a.Resources) != 2 || !strings.Contains(string(a.Resources[0]), `"modified_timestamp":"2025-06-01T00:00:00.000Z"`) {
		t.Fatalf("details: %d %s", code, a.Resources)
	}
	if code, _ := call(t, srv, tok, "POST", "/alerts/entities/alerts/v2", nil, map[string][]string{"ids": {"x"}}); code != 400 {
		t.Errorf("alerts details with ids instead of composite_ids: %d", code)
	}
	many := make([]string, 401)
	if code, _ := call(t, srv, tok, "GET", "/spotlight/entities/vulnerabilities/v2", url.Values{"ids": many}, nil); code != 400 {
		t.Errorf("401 vulnerability ids: %d", code)
	}
	// An extra FQL term on another field, ANDed.
	s.AddRecords("alerts", 2, base)
	q = url.Values{"filter": {"updated_timestamp:>='2025-01-01T00:00:00Z'+status:'new'"}, "sort": {"updated_timestamp|asc"}}
	if _, a = call(t, srv, tok, "GET", "/alerts/queries/alerts/v2", q, nil); len(ids(a)) != 2 {
		t.Errorf("status:'new': %v", ids(a))
	}
	q.Set("filter", "updated_timestamp:>='2025-01-01T00:00:00Z'+status:'closed'")
	if _, a = call(t, srv, tok, "GET", "/alerts/queries/alerts/v2", q, nil); len(ids(a)) != 0 {
		t.Errorf("status:'closed': %v", ids(a))
	}
}

// Vulnerabilities page with after tokens (no offset, filter required); a
// cursor is a position in the sort order, so a record updated while the
// client pages moves behind it and is still found; expired tokens are 400.
func TestResourceAfterPagingWithUpdates(t *testing.T) {
	s, srv, tok := resServer(t)
	s.AddRecords("vulnerabilities", 1000, time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC))
	path := "/spotlight/queries/vulnerabilities/v1"
	if code, _ := call(t, srv, tok, "GET", path, url.Values{}, nil); code != 400 {
		t.Errorf("no filter: %d, want 400", code)
	}
	q := url.Values{"filter": {"updated_timestamp:>='2025-01-01T00:00:00Z'"}, "limit": {"400"}, "sort": {"updated_timestamp|asc"}}
	if code, _ := call(t, srv, tok, "GET", path, url.Values{"filter": q["filter"], "offset": {"0"}}, nil); code != 400 {
		t.Errorf("offset on an after endpoint: %d, want 400", code)
	}
	pages := 0
	s.DuringPage(func(string) {
		pages++
		if pages == 1 {
			s.UpdateRecords("vulnerabilities", 5) // the oldest five, already paged past
		}
	})
	seen := map[string]int{}
	for {
		code, a := call(t, srv, tok, "GET", path, q, nil)
		if code != 200 {
			t.Fatalf("page: %d %v", code, a.Errors)
		}
		for _, id := range ids(a) {
			seen[id]++
		}
		if a.Meta.Pagination.After == "" {
			break
		}
		q.Set("after", a.Meta.Pagination.After)
	}
	if len(seen) != 1000 {
		t.Errorf("%d distinct ids paged, want 1000", len(seen))
	}
	twice := 0
	for _, n := range seen {
		if n == 2 {
			twice++
		}
	}
	if twice != 5 {
		t.Errorf("%d ids paged twice, want the 5 updated", twice)
	}
	q.Del("after")
	_, a := call(t, srv, tok, "GET", path, q, nil)
	s.ExpireAfterTokens(0)
	q.Set("after", a.Meta.Pagination.After)
	if code, a := call(t, srv, tok, "GET", path, q, nil); code != 400 || !strings.Contains(a.Errors[0].Message, "expired") {
		t.Errorf("expired token: %d %v", code, a.Errors)
	}
}

// 403 per missing scope, 404/410 for removed resources, 429 with
// X-Ratelimit-Retryafter, 401 without a token.
func TestResourceRefusals(t *testing.T) {
	s, srv, tok := resServer(t)
	s.DenyScope("Alerts: read", true)
	if code, _ := call(t, srv, tok, "GET", "/alerts/queries/alerts/v2", nil, nil); code != 403 {
		t.Errorf("denied scope: %d", code)
	}
	if code, _ := call(t, srv, tok, "GET", "/devices/queries/devices/v1", nil, nil); code != 200 {
		t.Errorf("other scope: %d", code)
	}
	s.Remove("incidents", 410)
	s.Remove("behaviors", 404)
	if code, _ := call(t, srv, tok, "GET", "/incidents/queries/incidents/v1", nil, nil); code != 410 {
		t.Errorf("removed incidents: %d", code)
	}
	if code, _ := call(t, srv, tok, "POST", "/incidents/entities/behaviors/GET/v1", nil, map[string][]string{"ids": {"a"}}); code != 404 {
		t.Errorf("removed behaviors: %d", code)
	}
	if code, _ := call(t, srv, "nope", "GET", "/devices/queries/devices/v1", nil, nil); code != 401 {
		t.Errorf("bad token: %d", code)
	}
	s.SetFaults(Faults{RateLimit: 1})
	req, _ := http.NewRequest("GET", srv.URL+"/devices/queries/devices/v1", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("X-Ratelimit-Retryafter") == "" {
		t.Errorf("rate limited: %d %q", resp.StatusCode, resp.Header.Get("X-Ratelimit-Retryafter"))
	}
}

// Stats.Requests counts every request, whatever its answer: the token
// call, a query and a details call answered 200, a 401, a 400, a 429 and
// an unknown path; the resource counters count only the calls answered.
func TestRequestsCountsEveryCall(t *testing.T) {
	s, srv, tok := resServer(t) // one token call
	ids := s.AddRecords("hosts", 3, time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC))
	call(t, srv, tok, "GET", "/devices/queries/devices/v1", nil, nil)
	call(t, srv, tok, "POST", "/devices/entities/devices/v2", nil, map[string][]string{"ids": ids})
	call(t, srv, "nope", "GET", "/devices/queries/devices/v1", nil, nil)
	call(t, srv, tok, "GET", "/devices/queries/devices/v1", url.Values{"limit": {"0"}}, nil)
	call(t, srv, tok, "GET", "/no/such/endpoint", nil, nil)
	s.SetFaults(Faults{RateLimit: 1})
	if code, _ := call(t, srv, tok, "GET", "/devices/queries/devices/v1", nil, nil); code != 429 {
		t.Fatalf("rate limited: %d", code)
	}
	st, rs := s.Stats(), s.ResourceStats()
	if st.Requests != 7 || rs.Queries["hosts"] != 1 || rs.Entities["hosts"] != 1 || rs.Records["hosts"] != 3 {
		t.Errorf("requests %d (want 7), queries %d, details %d, records %d (want 1, 1, 3)",
			st.Requests, rs.Queries["hosts"], rs.Entities["hosts"], rs.Records["hosts"])
	}
}

// Versions keeps every version ever held, superseded ones included;
// UpdateWhere updates only records its predicate accepts, oldest or newest
// first; RecordJSON is byte for byte what the details endpoints serve.
func TestVersionsHeldAndUpdateWhere(t *testing.T) {
	s, srv, tok := resServer(t)
	base := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	old := s.AddRecords("behaviors", 3, base)
	young := s.AddRecords("behaviors", 2, base.Add(time.Hour))
	if got := s.UpdateWhere("behaviors", 5, false, func(r Record) bool { return r.ID != old[0] }); strings.Join(got, ",") != strings.Join(append(old[1:], young...), ",") {
		t.Fatalf("oldest first without %s: updated %v", old[0], got)
	}
	// Now old[0] is the oldest and young[1] the newest; the newest first.
	if got := s.UpdateWhere("behaviors", 1, true, nil); len(got) != 1 || got[0] != young[1] {
		t.Fatalf("newest first: updated %v, want %s", got, young[1])
	}
	vs := s.Versions("behaviors")
	if len(vs) != 5+4+1 || s.ResourceStats().Versions["behaviors"] != len(vs) {
		t.Fatalf("%d versions held, want 10 (and the counter %d)", len(vs), s.ResourceStats().Versions["behaviors"])
	}
	v1, ok := s.Version("behaviors", young[1], 1)
	if !ok || !v1.Time.Equal(base.Add(time.Hour)) {
		t.Fatalf("version 1 of %s: %+v %v", young[1], v1, ok)
	}
	if v3, ok := s.Version("behaviors", young[1], 3); !ok || !v3.Time.After(base) {
		t.Fatalf("version 3 of %s: %+v %v", young[1], v3, ok)
	}
	if _, ok := s.Version("behaviors", young[1], 4); ok {
		t.Fatal("a version never held was found")
	}
	all := append(append([]string{}, old...), young...)
	_, a := call(t, srv, tok, "POST", "/incidents/entities/behaviors/GET/v1", nil, map[string][]string{"ids": all})
	cur := map[string]Record{}
	for _, r := range s.Records("behaviors") {
		cur[r.ID] = r
	}
	if len(a.Resources) != len(all) {
		t.Fatalf("details of %d ids: %d answered", len(all), len(a.Resources))
	}
	for i, raw := range a.Resources {
		if want := RecordJSON("behaviors", cur[all[i]]); !bytes.Equal(raw, want) {
			t.Errorf("served %s, RecordJSON %s", raw, want)
		}
	}
	// Every resource's rendering survives the endpoint's JSON encoding.
	for _, spec := range Resources {
		r := Record{ID: s.AddRecords(spec.Name, 1, base)[0], Time: base, Version: 1}
		b, err := json.Marshal(json.RawMessage(RecordJSON(spec.Name, r)))
		if err != nil || !bytes.Equal(b, RecordJSON(spec.Name, r)) {
			t.Errorf("%s: re-encoded %s (%v)", spec.Name, b, err)
		}
	}
}
