package logpush

import (
	"context"
	"math/rand/v2"
	"net/url"
	"sync"
	"testing"
	"time"

	pusher "github.com/siemship/siemship/internal/emulators/logpush"
)

func newPusher(t *testing.T, h *harness, dataset string, attempts int) *pusher.Pusher {
	t.Helper()
	p, err := pusher.New(pusher.Config{
		Destination: h.url + "/logpush?header_Authorization=" + url.QueryEscape("Bearer "+testSecret) + "&tags=dataset:" + dataset,
		Client:      h.client,
		Attempts:    attempts,
		RetryDelay:  30 * time.Second,
		TimeScale:   0.01, // 300 ms, 600 ms, 1.2 s, …
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// checkAcked asserts the at-least-once promise: every record the pusher
// was answered 200 for is at the sink; it returns the duplicates.
func checkAcked(t *testing.T, p *pusher.Pusher, sinks ...*recSink) (acked, dups int) {
	t.Helper()
	for _, r := range p.Acked() {
		n := 0
		for _, s := range sinks {
			n += s.count(r)
		}
		if n == 0 {
			t.Fatalf("record answered 200 is not at the sink: %s", r)
		}
		dups += n - 1
	}
	return len(p.Acked()), dups
}

// Pusher → source → a sink that delivers late, out of order, and loses one
// batch in eight (no delivery: the request times out with 503 and Logpush
// pushes again). Every record answered 200 arrives, typed and dated.
func TestEndToEndWithFaults(t *testing.T) {
	h := newHarness(t)
	h.cfg.ResponseTimeout = 400 * time.Millisecond
	h.cfg.BatchBytes = 64 << 10
	h.cfg.MaxRecordBytes = 16 << 10
	var mu sync.Mutex
	rnd := rand.New(rand.NewPCG(1, 2))
	h.sink.delay = func() time.Duration {
		mu.Lock()
		defer mu.Unlock()
		return time.Duration(rnd.IntN(40)) * time.Millisecond
	}
	h.sink.drop = func() bool {
		mu.Lock()
		defer mu.Unlock()
		return rnd.IntN(8) == 0
	}
	h.start()
	for _, c := range []struct{ dataset, format string }{
		{pusher.HTTPRequests, pusher.UnixNano}, {pusher.FirewallEvents, pusher.RFC3339}, {pusher.GatewayDNS, pusher.Unix},
	} {
		p := newPusher(t, h, c.dataset, 8)
		start := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
		gen, err := pusher.NewGenerator(c.dataset, c.format, start, 42)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Run(context.Background(), gen, 8, 300, 3); err != nil {
			t.Fatal(err)
		}
		st := p.Stats()
		acked, dups := checkAcked(t, p, h.sink)
		t.Logf("%s: %d records answered 200, %d duplicates at the sink, attempts %d, answers %v, gave up %d",
			c.dataset, acked, dups, st.Attempts, st.ByStatus, st.GaveUp)
		if st.GaveUp != 0 || acked != 8*300 {
			t.Errorf("%s: %d uploads given up, %d records acked", c.dataset, st.GaveUp, acked)
		}
		if st.ByStatus[503] == 0 {
			t.Errorf("%s: no 503: the lost batches were not noticed", c.dataset)
		}
		for _, e := range h.sink.events() {
			if e.typ != c.dataset {
				continue
			}
			if e.flags != 0 || e.time < start.UnixMilli() || e.time > start.Add(time.Hour).UnixMilli() {
				t.Fatalf("%s: event flags %b time %d: %s", c.dataset, e.flags, e.time, e.raw)
			}
		}
	}
}

// SIGKILL-style: the source dies mid-request while the sink holds the
// request's batches unacknowledged (they die with it); a new source on the
// same address takes the pusher's retries. No record answered 200 is
// missing; what the first source had emitted may arrive twice.
func TestRestartMidRequestLosesNothing(t *testing.T) {
	h1 := newHarness(t)
	h1.cfg.ShutdownGrace = 100 * time.Millisecond
	h1.sink.drop = func() bool { return true } // held until the "crash", never delivered
	h1.start()
	p := newPusher(t, h1, pusher.HTTPRequests, 10)
	gen, _ := pusher.NewGenerator(pusher.HTTPRequests, pusher.UnixNano, time.Now(), 7)
	// A first upload delivered before the crash.
	h1.sink.mu.Lock()
	h1.sink.drop = nil
	h1.sink.mu.Unlock()
	if err := p.Run(context.Background(), gen, 1, 100, 1); err != nil {
		t.Fatal(err)
	}
	h1.sink.mu.Lock()
	h1.sink.drop = func() bool { return true }
	h1.sink.mu.Unlock()

	done := make(chan error, 1)
	go func() {
		batch := make([][]byte, 500)
		for i := range batch {
			batch[i] = gen.Next()
		}
		done <- p.Upload(context.Background(), batch)
	}()
	waitFor(t, "the first source emitted the request", func() bool {
		h1.sink.mu.Lock()
		defer h1.sink.mu.Unlock()
		return h1.sink.batches >= 2
	})
	h1.stop() // the crash: its batches were never acknowledged

	h2 := newHarness(t)
	h2.cfg.Listen = h1.src.Addr().String()
	h2.cfg.TLSCertFile, h2.cfg.TLSKeyFile, h2.cfg.SecretFile = h1.cfg.TLSCertFile, h1.cfg.TLSKeyFile, h1.cfg.SecretFile
	h2.client = h1.client
	h2.start()
	if err := <-done; err != nil {
		t.Fatalf("upload after the restart: %v", err)
	}
	acked, dups := checkAcked(t, p, h1.sink, h2.sink)
	st := p.Stats()
	t.Logf("%d records answered 200, %d duplicates, answers %v, transport errors %d", acked, dups, st.ByStatus, st.TransportErrors)
	if acked != 600 {
		t.Errorf("%d records acked, want 600", acked)
	}
	if st.ByStatus[503]+st.TransportErrors == 0 {
		t.Error("the interrupted request was answered 200")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
