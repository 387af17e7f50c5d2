package httpingest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/siemship/siemship/internal/emulators/faults"
	emulator "github.com/siemship/siemship/internal/emulators/httpingest"
	"github.com/siemship/siemship/internal/event"
	"github.com/siemship/siemship/internal/sinks/delivery"
)

const key = "integration-key-1"

func testConfig(url string) Config {
	c := DefaultConfig()
	c.URL, c.Token = url, key
	c.Linger, c.RetryInitial, c.RetryMax, c.AuthRetry = 5*time.Millisecond, time.Millisecond, 10*time.Millisecond, 20*time.Millisecond
	c.MaxEvents = 40
	return c
}

// acks counts deliveries per batch id.
type acks struct {
	mu   sync.Mutex
	done map[int]bool
}

func (a *acks) batch(id int, evs []event.Event) *event.Batch {
	b := event.NewBatch("tetragon", evs, func() { a.mu.Lock(); a.done[id] = true; a.mu.Unlock() })
	b.Expect(1)
	return b
}

func (a *acks) all(n int) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.done) == n
}

func events(from, n int) []event.Event {
	evs := make([]event.Event, n)
	for i := range evs {
		raw := fmt.Sprintf(`{"process_exec":{"id":%d},"time":"2026-12-01T00:00:00Z"}`, from+i)
		evs[i] = event.Event{Raw: []byte(raw), Size: len(raw), Type: "process_exec"}
	}
	return evs
}

func run(t *testing.T, s *Sink, batches []*event.Batch) {
	t.Helper()
	in := make(chan *event.Batch)
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background(), in) }()
	for _, b := range batches {
		in <- b
	}
	close(in)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Run did not finish")
	}
}

func newSink(t *testing.T, cfg Config) *Sink {
	t.Helper()
	s, err := New(cfg, "taegis", prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Every event arrives, byte for byte, as one line, through injected faults
// (503, 429, 500, resets, slow answers) and 413 splits; a truncated event
// arrives wrapped as a JSON object.
func TestDeliversEveryEventThroughFaults(t *testing.T) {
	recv := emulator.New(emulator.Config{Keys: []string{key}, Path: "/v1/abc", MaxBodyBytes: 2 << 10})
	recv.Faults().Set(faults.Config{Rate: 0.3, Seed: 3, SlowDelay: 20 * time.Millisecond})
	srv := httptest.NewServer(recv)
	defer srv.Close()
	s := newSink(t, testConfig(srv.URL+"/v1/abc"))
	a := &acks{done: map[int]bool{}}
	var batches []*event.Batch
	for i := range 20 {
		evs := events(i*25, 25)
		if i == 7 {
			evs[3].Flags |= event.Truncated
			evs[3].Raw = evs[3].Raw[:10]
		}
		batches = append(batches, a.batch(i, evs))
	}
	run(t, s, batches)
	if !a.all(20) {
		t.Fatal("not every batch was acknowledged")
	}
	seen := map[string]int{}
	for _, l := range recv.Events() {
		seen[string(l)]++
	}
	for i := range 500 {
		raw := fmt.Sprintf(`{"process_exec":{"id":%d},"time":"2026-12-01T00:00:00Z"}`, i)
		if i == 7*25+3 {
			continue
		}
		if seen[raw] == 0 {
			t.Fatalf("event %d never arrived", i)
		}
	}
	var wrapped struct {
		Siemship struct {
			Error  string `json:"error"`
			Source string `json:"source"`
		} `json:"siemship"`
		Raw string `json:"raw"`
	}
	found := false
	for l := range seen {
		if strings.HasPrefix(l, `{"siemship"`) && json.Unmarshal([]byte(l), &wrapped) == nil {
			found = wrapped.Siemship.Error == "truncated" && wrapped.Raw == `{"process_` && wrapped.Siemship.Source == "tetragon"
		}
	}
	if !found {
		t.Error("the truncated event did not arrive wrapped")
	}
	st := recv.Stats()
	if st.Requests[413] == 0 || len(st.Faults) == 0 {
		t.Errorf("the test did not exercise 413 splits and faults: %+v", st)
	}
}

// A wrong key is a configuration error: the sink is not ready, says why,
// keeps the events, and Verify names the problem without the key.
func TestWrongKey(t *testing.T) {
	recv := emulator.New(emulator.Config{Keys: []string{"other"}})
	srv := httptest.NewServer(recv)
	defer srv.Close()
	s := newSink(t, testConfig(srv.URL))
	err := s.Verify(context.Background())
	if err == nil || !strings.Contains(err.Error(), "rejected the token (401)") || strings.Contains(err.Error(), key) {
		t.Fatalf("Verify = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	in := make(chan *event.Batch, 1)
	a := &acks{done: map[int]bool{}}
	in <- a.batch(0, events(0, 3))
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, in) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, reason := s.Ready()
		if !ok && strings.Contains(reason, "rejected the token (401)") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readiness %v %q", ok, reason)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	if a.all(1) {
		t.Error("events rejected with 401 were acknowledged")
	}
}

// Headers: the configured scheme, static headers, gzip, NDJSON.
func TestHeaders(t *testing.T) {
	var got struct {
		sync.Mutex
		auth, extra, enc, ctype string
	}
	recv := emulator.New(emulator.Config{Keys: []string{key}})
	srv := httptest.NewServer(httpFunc(func(r *httpRequest) {
		got.Lock()
		got.auth, got.extra, got.enc, got.ctype = r.Header.Get("X-Auth"), r.Header.Get("X-Tenant"), r.Header.Get("Content-Encoding"), r.Header.Get("Content-Type")
		got.Unlock()
	}, recv))
	defer srv.Close()
	cfg := testConfig(srv.URL)
	cfg.AuthHeader, cfg.AuthScheme, cfg.Headers = "X-Auth", "Key", map[string]string{"X-Tenant": "t1"}
	s := newSink(t, cfg)
	a := &acks{done: map[int]bool{}}
	run(t, s, []*event.Batch{a.batch(0, events(0, 2))})
	got.Lock()
	defer got.Unlock()
	if got.auth != "Key "+key || got.extra != "t1" || got.enc != "gzip" || got.ctype != "application/x-ndjson" {
		t.Errorf("headers %q %q %q %q", got.auth, got.extra, got.enc, got.ctype)
	}
	if cfg.Compression != delivery.CompressionGzip {
		t.Fatal("gzip is not the default")
	}
}
