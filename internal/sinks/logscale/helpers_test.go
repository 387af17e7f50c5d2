package logscale

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/siemship/siemship/internal/event"
)

const testToken = "tok-3f9a1c7e-secret-value"

// sharedTestdata returns the repository's testdata directory.
func sharedTestdata(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "testdata")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the package directory")
		}
		dir = parent
	}
}

// sampleLines returns the Tetragon sample lines, without newlines.
func sampleLines(t testing.TB) [][]byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(sharedTestdata(t), "tetragon", "docs-examples.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	var lines [][]byte
	for _, l := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
		lines = append(lines, l)
	}
	if len(lines) < 4 {
		t.Fatalf("want at least 4 sample lines, got %d", len(lines))
	}
	return lines
}

var typeRE = regexp.MustCompile(`^\{"([a-z_]+)"`)

// eventType returns the first key of a Tetragon line.
func eventType(raw []byte) string {
	m := typeRE.FindSubmatch(raw)
	if m == nil {
		return "unknown"
	}
	return string(m[1])
}

// Patterns varied by genTetragon, so that compression sees realistic data.
var (
	reExecID    = regexp.MustCompile(`"(exec_id|parent_exec_id)":"[^"]*"`)
	rePid       = regexp.MustCompile(`"(pid|tid)":\d+`)
	reContainer = regexp.MustCompile(`containerd://[0-9a-f]{64}`)
	reDocker    = regexp.MustCompile(`"docker":"[0-9a-f]+"`)
	rePodName   = regexp.MustCompile(`"name":"(xwing|file-access)"`)
	reNamespace = regexp.MustCompile(`"namespace":"default"`)
	reArgs      = regexp.MustCompile(`"arguments":"(?:[^"\\]|\\.)*"`)
	reBinary    = regexp.MustCompile(`"binary":"/usr/bin/[a-z]+"`)
	reTime      = regexp.MustCompile(`"time":"[^"]*"`)
)

// genTetragon returns n realistic, varied Tetragon lines made from the
// samples: random exec ids, pids, container ids, pods in 20 namespaces,
// binaries, arguments and increasing timestamps.
func genTetragon(t testing.TB, n int, seed uint64) [][]byte {
	samples := sampleLines(t)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	hex := func(k int) string {
		const digits = "0123456789abcdef"
		b := make([]byte, k)
		for i := range b {
			b[i] = digits[rng.IntN(16)]
		}
		return string(b)
	}
	b64 := func(k int) string {
		const digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
		b := make([]byte, k)
		for i := range b {
			b[i] = digits[rng.IntN(64)]
		}
		return string(b)
	}
	binaries := []string{"curl", "wget", "bash", "sh", "python3", "nginx", "cat", "ls", "grep", "awk", "ssh", "git", "java", "node"}
	words := []string{"--version", "-c", "/etc/passwd", "https://example.com/api/v1/items", "-la", "/var/log", "--config=/etc/app.yaml", "-x", "start", "--port=8080", "run", "/tmp/job-output.json"}
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	out := make([][]byte, n)
	for i := range out {
		s := string(samples[rng.IntN(len(samples))])
		cid := hex(64)
		pod := fmt.Sprintf("app-%d-%s", rng.IntN(150), hex(5))
		s = reExecID.ReplaceAllStringFunc(s, func(m string) string {
			return m[:strings.Index(m, ":")+1] + `"` + b64(56) + `"`
		})
		s = rePid.ReplaceAllStringFunc(s, func(m string) string {
			return fmt.Sprintf("%s%d", m[:strings.Index(m, ":")+1], 1000+rng.IntN(4000000))
		})
		s = reContainer.ReplaceAllString(s, "containerd://"+cid)
		s = reDocker.ReplaceAllString(s, `"docker":"`+cid[:31]+`"`)
		s = rePodName.ReplaceAllString(s, `"name":"`+pod+`"`)
		s = reNamespace.ReplaceAllString(s, fmt.Sprintf(`"namespace":"team-%d"`, rng.IntN(20)))
		s = reBinary.ReplaceAllString(s, `"binary":"/usr/bin/`+binaries[rng.IntN(len(binaries))]+`"`)
		s = reArgs.ReplaceAllStringFunc(s, func(string) string {
			args := make([]string, 1+rng.IntN(4))
			for j := range args {
				args[j] = words[rng.IntN(len(words))]
			}
			return `"arguments":"` + strings.Join(args, " ") + `"`
		})
		ts := start.Add(time.Duration(i)*time.Millisecond + time.Duration(rng.IntN(1000000)))
		s = reTime.ReplaceAllString(s, `"time":"`+ts.Format(time.RFC3339Nano)+`"`)
		out[i] = []byte(s)
	}
	return out
}

// ackRecorder counts, per batch, how often its done function ran.
type ackRecorder struct {
	mu    sync.Mutex
	done  map[int]int
	total atomic.Int64
}

func newAckRecorder() *ackRecorder { return &ackRecorder{done: map[int]int{}} }

// batch wraps raws (JSON lines) as a batch with id expecting one sink.
func (a *ackRecorder) batch(id int, source string, raws ...[]byte) *event.Batch {
	evs := make([]event.Event, len(raws))
	for i, r := range raws {
		evs[i] = event.Event{Raw: r, Time: 1700000000000 + int64(id*1000+i), Type: eventType(r), Size: len(r)}
	}
	return a.wrap(id, source, evs)
}

func (a *ackRecorder) wrap(id int, source string, evs []event.Event) *event.Batch {
	b := event.NewBatch(source, evs, func() {
		a.mu.Lock()
		a.done[id]++
		a.mu.Unlock()
		a.total.Add(1)
	})
	b.Expect(1)
	return b
}

func (a *ackRecorder) count(id int) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.done[id]
}

// recvEvent is one event as a test server decoded it.
type recvEvent struct {
	Tags      map[string]string
	Timestamp int64
	Attrs     json.RawMessage
	Rawstring *string
}

// id returns the "id" field of the event's attributes, or -1.
func (e recvEvent) id() int {
	var v struct {
		ID *int `json:"id"`
	}
	if json.Unmarshal(e.Attrs, &v) != nil || v.ID == nil {
		return -1
	}
	return *v.ID
}

type recvRequest struct {
	Header http.Header
	Body   []byte // decompressed
	Events []recvEvent
	At     time.Time
}

// decodeStructured decodes a humio-structured body.
func decodeStructured(t testing.TB, body []byte) []recvEvent {
	t.Helper()
	var groups []struct {
		Tags   map[string]string `json:"tags"`
		Events []struct {
			Timestamp  int64           `json:"timestamp"`
			Attributes json.RawMessage `json:"attributes"`
			Rawstring  *string         `json:"rawstring"`
		} `json:"events"`
	}
	if err := json.Unmarshal(body, &groups); err != nil {
		t.Errorf("body is not valid structured JSON: %v\n%.300s", err, body)
		return nil
	}
	var out []recvEvent
	for _, g := range groups {
		for _, e := range g.Events {
			out = append(out, recvEvent{Tags: g.Tags, Timestamp: e.Timestamp, Attrs: e.Attributes, Rawstring: e.Rawstring})
		}
	}
	return out
}

// fakeLogScale is a small structured-ingest server whose answers a test
// scripts with respond; it records every request.
type fakeLogScale struct {
	t       testing.TB
	srv     *httptest.Server
	respond func(n int, req recvRequest) (int, http.Header) // n counts from 1

	mu   sync.Mutex
	reqs []recvRequest
}

func newFake(t testing.TB, respond func(n int, req recvRequest) (int, http.Header)) *fakeLogScale {
	f := &fakeLogScale{t: t, respond: respond}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeLogScale) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == pathStatus {
		_, _ = io.WriteString(w, `{"status":"OK","version":"1.0.0"}`)
		return
	}
	var rd io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, "bad gzip", http.StatusBadRequest)
			return
		}
		rd = zr
	}
	body, err := io.ReadAll(rd)
	if err != nil {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	req := recvRequest{Header: r.Header.Clone(), Body: body, At: time.Now()}
	if r.URL.Path == pathStructured {
		req.Events = decodeStructured(f.t, body)
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	n := len(f.reqs)
	f.mu.Unlock()
	code, hdr := http.StatusOK, http.Header(nil)
	if f.respond != nil {
		code, hdr = f.respond(n, req)
	}
	for k, v := range hdr {
		w.Header()[k] = v
	}
	w.WriteHeader(code)
	if code == http.StatusOK {
		_, _ = io.WriteString(w, "{}")
	} else {
		_, _ = io.WriteString(w, "no: "+http.StatusText(code))
	}
}

func (f *fakeLogScale) requests() []recvRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recvRequest(nil), f.reqs...)
}

// testConfig is a fast config for tests against url.
func testConfig(url string) Config {
	cfg := DefaultConfig()
	cfg.URL = url
	cfg.Token = testToken
	cfg.Linger = 10 * time.Millisecond
	cfg.RetryInitial = time.Millisecond
	cfg.RetryMax = 10 * time.Millisecond
	cfg.AuthRetry = 30 * time.Millisecond
	cfg.Timeout = 5 * time.Second
	return cfg
}

// logBuffer is a concurrency-safe log sink for capturing slog output.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func newTestSink(t testing.TB, cfg Config, logs io.Writer) *Sink {
	t.Helper()
	if logs == nil {
		logs = io.Discard
	}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	reg := prometheus.NewRegistry()
	s, err := New(cfg, "test", reg, log)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	registries.Store(s, reg)
	return s
}

// registries holds each test sink's metrics registry.
var registries sync.Map // *Sink → *prometheus.Registry

// metric returns the value of the sink's series name (without the
// siemship_sink_ prefix) whose labels include the given pairs.
func metric(t testing.TB, s *Sink, name string, labels ...string) float64 {
	t.Helper()
	reg, _ := registries.Load(s)
	mfs, err := reg.(*prometheus.Registry).Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "siemship_sink_"+name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					found = found || lp.GetName() == labels[i] && lp.GetValue() == labels[i+1]
				}
				if !found {
					continue series
				}
			}
			switch {
			case m.Counter != nil:
				return m.GetCounter().GetValue()
			case m.Gauge != nil:
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no series siemship_sink_%s%v", name, labels)
	return 0
}

// idEvent is a small JSON event with an id.
func idEvent(id int, extra string) []byte {
	return fmt.Appendf(nil, `{"process_exec":{"n":"%d"},"id":%d%s}`, id, id, extra)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second) // generous: CI machines are loaded
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func testutilValue(c prometheus.Collector) float64 { return testutil.ToFloat64(c) }
