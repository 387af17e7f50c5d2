package logscale

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Tokens of the default test server.
const (
	tokMain    = "tok-main"    // repo "main", no parser
	tokParsed  = "tok-parsed"  // repo "main", parser "tetragon"
	tokBlocked = "tok-blocked" // blocked
	tokGone    = "tok-gone"    // repo "gone", deleted
	tokOther   = "tok-other"   // repo "other"
	apiToken   = "api-secret"
)

func testConfig() Config {
	return Config{
		Tokens: map[string]Token{
			tokMain:    {Name: "main-token", Repo: "main"},
			tokParsed:  {Name: "parsed-token", Repo: "main", Parser: "tetragon"},
			tokBlocked: {Repo: "main", Blocked: true},
			tokGone:    {Repo: "gone"},
			tokOther:   {Repo: "other"},
		},
		APITokens:    []string{apiToken},
		DeletedRepos: []string{"gone"},
	}
}

// startServer runs s behind a real loopback listener for the test.
func startServer(t testing.TB, cfg Config) (*Server, *httptest.Server) {
	t.Helper()
	s := New(cfg)
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return s, ts
}

// request is one HTTP request for do.
type request struct {
	method, path, auth string
	body               []byte
	header             map[string]string
}

// response is what do returns.
type response struct {
	status int
	header http.Header
	body   string
}

func do(t testing.TB, ts *httptest.Server, r request) response {
	t.Helper()
	if r.method == "" {
		r.method = http.MethodPost
	}
	req, err := http.NewRequest(r.method, ts.URL+r.path, bytes.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	if r.auth != "" {
		req.Header.Set("Authorization", r.auth)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, string(b)}
}

// ingest POSTs body to path with "Bearer token".
func ingest(t testing.TB, ts *httptest.Server, path, token, body string) response {
	t.Helper()
	return do(t, ts, request{path: path, auth: "Bearer " + token, body: []byte(body)})
}

func gz(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// testdataPath finds the repository's testdata: testdata/ from the repository
// root (the directory holding go.mod).
func testdataPath(t testing.TB, rel string) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "testdata", rel)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the package directory")
		}
		dir = parent
	}
}

// tetragonLines returns the sample Tetragon events, one JSON object each.
func tetragonLines(t testing.TB) []string {
	t.Helper()
	f, err := os.Open(testdataPath(t, "tetragon/docs-examples.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			lines = append(lines, l)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(lines) == 0 {
		t.Fatal("no sample events")
	}
	return lines
}

// structuredBody wraps events (JSON objects) as one humio-structured group
// with the given tags; event i gets timestamp base+i.
func structuredBody(tags map[string]string, base int64, events ...string) string {
	var b strings.Builder
	b.WriteString(`[{`)
	if tags != nil {
		tj, _ := json.Marshal(tags)
		fmt.Fprintf(&b, `"tags":%s,`, tj)
	}
	b.WriteString(`"events":[`)
	for i, e := range events {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"timestamp":%d,"attributes":%s}`, base+int64(i), e)
	}
	b.WriteString("]}]")
	return b.String()
}

// hecBody wraps events as a HEC stream, one object per line.
func hecBody(events ...string) string {
	var b strings.Builder
	for i, e := range events {
		fmt.Fprintf(&b, `{"time":%d.5,"event":%s,"fields":{"#source":"tetragon"}}`+"\n", 1713061094+i, e)
	}
	return b.String()
}
