package logscale

import (
	"github.com/siemship/siemship/internal/emulators/faults"

	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestFailNext(t *testing.T) {
	s, ts := startServer(t, testConfig())
	body := validBodies["humio-structured"]
	s.FailNext(2, 503, "7")
	for i := range 2 {
		r := ingest(t, ts, structuredPath, tokMain, body)
		if r.status != 503 || r.header.Get("Retry-After") != "7" {
			t.Fatalf("request %d: %d retry-after %q", i, r.status, r.header.Get("Retry-After"))
		}
	}
	if r := ingest(t, ts, structuredPath, tokMain, body); r.status != 200 {
		t.Fatalf("after FailNext: %d", r.status)
	}
	st := s.Stats()
	if st.Events != 1 || st.Faults[FaultFailNext] != 2 || st.RequestsByStatus[503] != 2 {
		t.Fatalf("stats %+v", st)
	}
	// Auth is checked before faults: a bad token does not use up FailNext.
	// Calls queue up in order.
	s.FailNext(1, 500, "")
	s.FailNext(2, 429, "1")
	if r := ingest(t, ts, structuredPath, "nope", body); r.status != 401 {
		t.Fatalf("bad token: %d", r.status)
	}
	for i, want := range []int{500, 429, 429, 200} {
		if r := ingest(t, ts, structuredPath, tokMain, body); r.status != want {
			t.Fatalf("queued request %d: %d, want %d", i, r.status, want)
		}
	}
}

func TestFailNextResetStoresNothing(t *testing.T) {
	s, ts := startServer(t, testConfig())
	s.FailNext(1, 0, "")
	req, _ := http.NewRequest(http.MethodPost, ts.URL+structuredPath, strings.NewReader(validBodies["humio-structured"]))
	req.Header.Set("Authorization", "Bearer "+tokMain)
	resp, err := ts.Client().Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("got %d, want a connection error", resp.StatusCode)
	}
	// The handler records the request after it reset the connection, so the
	// client can see the reset first: wait for the record.
	deadline := time.Now().Add(10 * time.Second)
	st := s.Stats()
	for st.RequestsByStatus[0] == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
		st = s.Stats()
	}
	if st.Events != 0 || st.Faults[FaultFailNext] != 1 || st.RequestsByStatus[0] != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// The random mix is reproducible by seed; every faulted request stores
// nothing and every answered 200 stores its event exactly once.
func TestRandomFaultMix(t *testing.T) {
	run := func() ([]int, Stats) {
		s, ts := startServer(t, testConfig())
		s.SetFaults(Faults{Rate: 0.5, Seed: 42, SlowDelay: 10 * time.Millisecond, RetryAfterSeconds: 3})
		var statuses []int
		ok := 0
		for i := range 200 {
			body := structuredBody(nil, int64(i), `{}`)
			req, _ := http.NewRequest(http.MethodPost, ts.URL+structuredPath, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+tokMain)
			resp, err := ts.Client().Do(req)
			if err != nil {
				statuses = append(statuses, 0)
				continue
			}
			resp.Body.Close()
			statuses = append(statuses, resp.StatusCode)
			if resp.StatusCode == 200 {
				ok++
			}
			if resp.StatusCode == 429 && resp.Header.Get("Retry-After") != "" && resp.Header.Get("Retry-After") != "3" {
				t.Errorf("Retry-After %q", resp.Header.Get("Retry-After"))
			}
		}
		st := s.Stats()
		if st.Events != int64(ok) || len(s.Events("main")) != ok {
			t.Errorf("%d answered 200 but %d stored", ok, st.Events)
		}
		return statuses, st
	}
	a, st := run()
	b, _ := run()
	if !equalInts(a, b) {
		t.Fatal("same seed, different faults")
	}
	for _, k := range faults.AllKinds {
		if st.Faults[k] == 0 {
			t.Errorf("no %s fault in 200 requests at rate 0.5", k)
		}
	}
	var faulted int64
	for _, n := range st.Faults {
		faulted += n
	}
	if faulted < 70 || faulted > 130 {
		t.Errorf("%d faults in 200 requests at rate 0.5", faulted)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// A slow answer stores its events only if the client is still waiting.
func TestSlowAnswer(t *testing.T) {
	s, ts := startServer(t, testConfig())
	s.SetFaults(Faults{Rate: 1, Kinds: []FaultKind{FaultSlow}, SlowDelay: 300 * time.Millisecond})

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ts.URL+structuredPath,
		bytes.NewReader([]byte(validBodies["humio-structured"])))
	req.Header.Set("Authorization", "Bearer "+tokMain)
	if resp, err := ts.Client().Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("client with a 50 ms timeout got an answer from a 300 ms slow answer")
	}
	waitFor(t, func() bool { return s.Stats().Requests == 1 })
	if st := s.Stats(); st.Events != 0 || st.RequestsByStatus[StatusClientGone] != 1 {
		t.Fatalf("gave-up client's events were stored: %+v", st)
	}

	start := time.Now()
	if r := ingest(t, ts, structuredPath, tokMain, validBodies["humio-structured"]); r.status != 200 {
		t.Fatalf("patient client: %d", r.status)
	}
	if time.Since(start) < 300*time.Millisecond {
		t.Error("slow answer was not slow")
	}
	if st := s.Stats(); st.Events != 1 || st.Faults[FaultSlow] != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second) // generous: CI machines are loaded
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 30 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSetFaultsRejectsUnknownKind(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for an unknown kind")
		}
	}()
	New(Config{}).SetFaults(Faults{Rate: 1, Kinds: []FaultKind{"teapot"}})
}
