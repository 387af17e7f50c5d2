package logscale

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// serveForTest runs s.Serve on a loopback listener; stop cancels it and
// returns Serve's result.
func serveForTest(t *testing.T, s *Server) (base string, stop func() error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	var once sync.Once
	var result error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case result = <-done:
			case <-time.After(10 * time.Second):
				t.Error("Serve did not return")
			}
		})
		return result
	}
	t.Cleanup(func() { _ = stop() })
	return "http://" + ln.Addr().String(), stop
}

// slowRequest starts a structured ingest and returns a channel with its
// status (0 for a transport error).
func slowRequest(base string) <-chan int {
	res := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, base+structuredPath, strings.NewReader(validBodies["humio-structured"]))
		req.Header.Set("Authorization", "Bearer "+tokMain)
		resp, err := (&http.Client{}).Do(req)
		if err != nil {
			res <- 0
			return
		}
		resp.Body.Close()
		res <- resp.StatusCode
	}()
	return res
}

// A request in flight at shutdown finishes and is stored.
func TestServeDrainsInFlightRequests(t *testing.T) {
	s := New(testConfig())
	s.SetFaults(Faults{Rate: 1, Kinds: []FaultKind{FaultSlow}, SlowDelay: 300 * time.Millisecond})
	base, stop := serveForTest(t, s)
	waitFor(t, func() bool { _, err := http.Get(base + "/api/v1/status"); return err == nil })
	res := slowRequest(base)
	time.Sleep(100 * time.Millisecond) // the request is waiting in its slow answer
	if err := stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if st := <-res; st != 200 || s.Stats().Events != 1 {
		t.Fatalf("in-flight request got %d, %d events stored", st, s.Stats().Events)
	}
}

// A request still running when the grace period ends is aborted: no answer
// (certainly no 200) and nothing stored.
func TestServeAbortsAfterGrace(t *testing.T) {
	s := New(testConfig())
	s.grace = 200 * time.Millisecond
	s.SetFaults(Faults{Rate: 1, Kinds: []FaultKind{FaultSlow}, SlowDelay: time.Minute})
	base, stop := serveForTest(t, s)
	waitFor(t, func() bool { _, err := http.Get(base + "/api/v1/status"); return err == nil })
	res := slowRequest(base)
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	if err := stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if d := time.Since(start); d > 20*time.Second { // far below the minute-long request
		t.Errorf("stop took %v", d)
	}
	if st := <-res; st != 0 {
		t.Fatalf("aborted request answered %d", st)
	}
	if st := s.Stats(); st.Events != 0 || st.RequestsByStatus[StatusClientGone] != 1 {
		t.Fatalf("stats %+v", st)
	}
}
