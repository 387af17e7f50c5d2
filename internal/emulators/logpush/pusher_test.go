package logpush

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
)

// Every dataset in every format is valid JSON, carries its time field in
// the format asked for, and no two records are alike.
func TestGeneratorRecords(t *testing.T) {
	start := time.Date(2024, 5, 25, 13, 25, 26, 0, time.UTC)
	for _, ds := range []struct{ name, field string }{{HTTPRequests, "EdgeStartTimestamp"}, {FirewallEvents, "Datetime"}, {GatewayDNS, "Datetime"}} {
		for _, format := range []string{UnixNano, Unix, RFC3339} {
			g, err := NewGenerator(ds.name, format, start, 7)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			for range 2000 {
				rec := g.Next()
				var m map[string]any
				if err := json.Unmarshal(rec, &m); err != nil {
					t.Fatalf("%s/%s: invalid JSON %s: %v", ds.name, format, rec, err)
				}
				if seen[string(rec)] {
					t.Fatalf("%s/%s: repeated record %s", ds.name, format, rec)
				}
				seen[string(rec)] = true
				v := m[ds.field]
				switch format {
				case RFC3339:
					s, _ := v.(string)
					ts, err := time.Parse(time.RFC3339, s)
					if err != nil || ts.Unix() != g.Time().Unix() {
						t.Fatalf("%s/%s: %s = %v, want %v", ds.name, format, ds.field, v, g.Time())
					}
				default:
					if _, ok := v.(float64); !ok {
						t.Fatalf("%s/%s: %s = %v (%T), want a number", ds.name, format, ds.field, v, v)
					}
				}
			}
		}
	}
}

type seen struct {
	mu       sync.Mutex
	bodies   []string
	headers  []http.Header
	urls     []string
	answers  []int
	arrivals []time.Time
}

func (s *seen) handler(t *testing.T) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			t.Errorf("body not gzip: %v", err)
			return
		}
		b, _ := io.ReadAll(zr)
		s.mu.Lock()
		defer s.mu.Unlock()
		s.bodies = append(s.bodies, string(b))
		s.headers = append(s.headers, r.Header.Clone())
		s.urls = append(s.urls, r.URL.String())
		s.arrivals = append(s.arrivals, time.Now())
		code := 200
		if n := len(s.bodies) - 1; n < len(s.answers) {
			code = s.answers[n]
		}
		w.WriteHeader(code)
	}
}

// The validation request goes first; header_* parameters become headers
// (URL-decoded); a failed upload is retried with doubling waits; records
// count as acknowledged only with the 200.
func TestPusherValidatesRetriesAndRecords(t *testing.T) {
	s := &seen{answers: []int{200, 503, 400, 200}}
	srv := httptest.NewServer(s.handler(t))
	defer srv.Close()
	p, err := New(Config{
		Destination: srv.URL + "/logpush?header_Authorization=Bearer%20k1&header_X-Job=7&tags=dataset:gateway_dns",
		RetryDelay:  time.Second, TimeScale: 0.02,
	})
	if err != nil {
		t.Fatal(err)
	}
	g, _ := NewGenerator(GatewayDNS, Unix, time.Now(), 1)
	if err := p.Run(context.Background(), g, 1, 10, 1); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.bodies) != 4 || s.bodies[0] != `{"content":"tests"}` {
		t.Fatalf("requests %q, want the validation request then 3 attempts", s.bodies)
	}
	for i, h := range s.headers {
		if h.Get("Authorization") != "Bearer k1" || h.Get("X-Job") != "7" || h.Get("Content-Encoding") != "gzip" {
			t.Errorf("request %d headers %v", i, h)
		}
	}
	if s.urls[1] != "/logpush?header_Authorization=Bearer%20k1&header_X-Job=7&tags=dataset:gateway_dns" {
		t.Errorf("URL %s: parameters should be kept", s.urls[1])
	}
	// Waits of ~20 ms then ~40 ms (±25 %).
	if d1, d2 := s.arrivals[2].Sub(s.arrivals[1]), s.arrivals[3].Sub(s.arrivals[2]); d1 < 15*time.Millisecond || d2 < 30*time.Millisecond {
		t.Errorf("retry waits %v, %v: want ≥ 15ms then ≥ 30ms", d1, d2)
	}
	st := p.Stats()
	if st.Attempts != 3 || st.RecordsAcked != 10 || len(p.Acked()) != 10 || st.ByStatus[503] != 1 || st.ByStatus[400] != 1 {
		t.Errorf("stats %+v", st)
	}
}

// After the last attempt the batch is dropped and not counted as acknowledged.
func TestPusherGivesUp(t *testing.T) {
	s := &seen{answers: []int{200, 500, 500, 500}}
	srv := httptest.NewServer(s.handler(t))
	defer srv.Close()
	p, _ := New(Config{Destination: srv.URL, Attempts: 3, RetryDelay: time.Millisecond, OmitContentEncoding: true})
	if err := p.Validate(context.Background()); err != nil {
		t.Fatal(err)
	}
	g, _ := NewGenerator(HTTPRequests, UnixNano, time.Now(), 1)
	if err := p.Upload(context.Background(), [][]byte{g.Next()}); err != ErrGaveUp {
		t.Fatalf("err %v, want ErrGaveUp", err)
	}
	if st := p.Stats(); st.GaveUp != 1 || st.RecordsAcked != 0 || len(p.Acked()) != 0 {
		t.Errorf("stats %+v", st)
	}
}

// A receiver refusing the validation request fails the job.
func TestPusherValidationRefused(t *testing.T) {
	s := &seen{answers: []int{403}}
	srv := httptest.NewServer(s.handler(t))
	defer srv.Close()
	p, _ := New(Config{Destination: srv.URL})
	if err := p.Validate(context.Background()); err == nil {
		t.Fatal("validation answered 403 should fail")
	}
}
