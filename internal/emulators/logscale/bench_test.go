package logscale

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
)

var (
	rePID    = regexp.MustCompile(`"(pid|tid)":\d+`)
	reExecID = regexp.MustCompile(`"(exec_id|parent_exec_id)":"[^"]+"`)
	rePod    = regexp.MustCompile(`"name":"xwing"|"name":"[a-z0-9-]+-[a-z0-9]{5}"`)
	reTime   = regexp.MustCompile(`"time":"[^"]+"`)
)

// variedEvents makes n realistic events from the samples: pids, exec ids,
// pod names and times vary, so compression ratios look like production.
func variedEvents(tb testing.TB, n int) []string {
	lines := tetragonLines(tb)
	rng := rand.New(rand.NewPCG(1, 2))
	out := make([]string, n)
	for i := range out {
		l := lines[i%len(lines)]
		l = rePID.ReplaceAllStringFunc(l, func(m string) string {
			return m[:strings.Index(m, ":")+1] + fmt.Sprint(rng.IntN(4_000_000))
		})
		l = reExecID.ReplaceAllStringFunc(l, func(m string) string {
			return m[:strings.Index(m, ":")+1] + fmt.Sprintf(`"%016x%016x"`, rng.Uint64(), rng.Uint64())
		})
		l = rePod.ReplaceAllStringFunc(l, func(string) string {
			return fmt.Sprintf(`"name":"app-%d-%05x"`, rng.IntN(150), rng.IntN(1<<20))
		})
		l = reTime.ReplaceAllString(l, fmt.Sprintf(`"time":"2024-04-14T02:%02d:%02d.%09dZ"`, i/60%60, i%60, rng.IntN(1e9)))
		out[i] = l
	}
	return out
}

func gzipFast(tb testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		tb.Fatal(err)
	}
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// BenchmarkStructured measures the receiver's CPU cost per request of 1000
// events (~2 MB), served in-process: auth, gunzip, full validation, commit.
// MB/s is of decoded body.
func BenchmarkStructured(b *testing.B) {
	events := variedEvents(b, 1000)
	plain := []byte(structuredBody(map[string]string{"source": "tetragon", "event_type": "process_exec"}, 1713061094000, events...))
	zipped := gzipFast(b, plain)
	var seen int
	for _, c := range []struct {
		name   string
		body   []byte
		enc    string
		onItem func(StoredEvent)
	}{
		{"discard/gzip", zipped, "gzip", nil},
		{"discard/plain", plain, "", nil},
		{"discard+OnEvent/gzip", zipped, "gzip", func(StoredEvent) { seen++ }},
	} {
		b.Run(c.name, func(b *testing.B) {
			cfg := testConfig()
			cfg.Discard = true
			cfg.OnEvent = c.onItem
			s := New(cfg)
			b.SetBytes(int64(len(plain)))
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, structuredPath, bytes.NewReader(c.body))
				req.Header.Set("Authorization", "Bearer "+tokMain)
				if c.enc != "" {
					req.Header.Set("Content-Encoding", c.enc)
				}
				w := httptest.NewRecorder()
				s.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
			b.ReportMetric(float64(s.Stats().Events)/b.Elapsed().Seconds(), "events/s")
		})
	}
	_ = seen
}

func BenchmarkHEC(b *testing.B) {
	plain := []byte(hecBody(variedEvents(b, 1000)...))
	s := New(Config{Tokens: map[string]Token{tokMain: {Repo: "main"}}, Discard: true})
	b.SetBytes(int64(len(plain)))
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/services/collector", bytes.NewReader(plain))
		req.Header.Set("Authorization", "Splunk "+tokMain)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
	b.ReportMetric(float64(s.Stats().Events)/b.Elapsed().Seconds(), "events/s")
}
