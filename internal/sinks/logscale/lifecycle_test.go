package logscale

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/siemship/siemship/internal/event"
)

// running is a sink whose Run works in the background.
type running struct {
	in     chan *event.Batch
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, s *Sink) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{in: make(chan *event.Batch), cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- s.Run(ctx, r.in) }()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

// finish closes in and waits for Run, failing after a while.
func (r *running) finish(t *testing.T) error {
	t.Helper()
	close(r.in)
	return r.wait(t)
}

func (r *running) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
		return nil
	}
}

// TestAckExactlyOnce: many single-event batches through retries, splits and
// concurrency are each acknowledged exactly once (a second ack panics in
// event.Batch.Delivered).
func TestAckExactlyOnce(t *testing.T) {
	var n atomic.Int64
	fake := newFake(t, func(_ int, req recvRequest) (int, http.Header) {
		switch n.Add(1) % 5 {
		case 1:
			return http.StatusServiceUnavailable, nil
		case 3:
			if len(req.Events) > 1 {
				return http.StatusRequestEntityTooLarge, nil
			}
		}
		return 200, nil
	})
	cfg := testConfig(fake.srv.URL)
	cfg.MaxEvents = 7
	cfg.Concurrency = 3
	s := newTestSink(t, cfg, nil)
	acks := newAckRecorder()
	r := start(t, s)
	const batches = 300
	for i := range batches {
		r.in <- acks.batch(i, "tetragon", idEvent(i, ""))
	}
	if err := r.finish(t); err != nil {
		t.Fatal(err)
	}
	for i := range batches {
		if acks.count(i) != 1 {
			t.Errorf("batch %d acknowledged %d times", i, acks.count(i))
		}
	}
	if got := metric(t, s, "events_acked_total"); got != batches {
		t.Errorf("acked metric %v, want %d", got, batches)
	}
}

// TestBackPressure: with every request slot busy on a stalled server, Run
// stops taking batches from in.
func TestBackPressure(t *testing.T) {
	release := make(chan struct{})
	fake := newFake(t, func(int, recvRequest) (int, http.Header) {
		<-release
		return 200, nil
	})
	cfg := testConfig(fake.srv.URL)
	cfg.MaxEvents = 1
	cfg.Concurrency = 1
	s := newTestSink(t, cfg, nil)
	acks := newAckRecorder()
	r := start(t, s)
	r.in <- acks.batch(1, "tetragon", idEvent(1, "")) // in flight
	r.in <- acks.batch(2, "tetragon", idEvent(2, "")) // waits for the slot
	select {
	case r.in <- acks.batch(3, "tetragon", idEvent(3, "")):
		t.Fatal("Run took a batch while every slot was busy")
	case <-time.After(200 * time.Millisecond):
	}
	if got := metric(t, s, "inflight_requests"); got != 1 {
		t.Errorf("inflight gauge %v, want 1", got)
	}
	close(release)
	select {
	case r.in <- acks.batch(3, "tetragon", idEvent(3, "")):
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not resume taking batches")
	}
	if err := r.finish(t); err != nil {
		t.Fatal(err)
	}
	if acks.total.Load() != 3 {
		t.Errorf("%d batches acknowledged, want 3", acks.total.Load())
	}
}

// TestConcurrencyBound: never more than Concurrency requests at once, and
// that many are used.
func TestConcurrencyBound(t *testing.T) {
	var cur, peak atomic.Int64
	fake := newFake(t, func(int, recvRequest) (int, http.Header) {
		c := cur.Add(1)
		for p := peak.Load(); c > p && !peak.CompareAndSwap(p, c); p = peak.Load() {
		}
		time.Sleep(15 * time.Millisecond)
		cur.Add(-1)
		return 200, nil
	})
	cfg := testConfig(fake.srv.URL)
	cfg.MaxEvents = 2
	cfg.Concurrency = 3
	s := newTestSink(t, cfg, nil)
	acks := newAckRecorder()
	r := start(t, s)
	for i := range 40 {
		r.in <- acks.batch(i, "tetragon", idEvent(i, ""))
	}
	if err := r.finish(t); err != nil {
		t.Fatal(err)
	}
	if peak.Load() != 3 {
		t.Errorf("peak concurrency %d, want 3", peak.Load())
	}
	if acks.total.Load() != 40 {
		t.Errorf("%d acked", acks.total.Load())
	}
}

// TestGracefulFlushOnClose: closing in sends the partial request at once,
// without waiting for Linger, and Run returns nil after it was acked.
func TestGracefulFlushOnClose(t *testing.T) {
	fake := newFake(t, nil)
	cfg := testConfig(fake.srv.URL)
	cfg.Linger = time.Hour
	s := newTestSink(t, cfg, nil)
	acks := newAckRecorder()
	r := start(t, s)
	r.in <- acks.batch(1, "tetragon", idEvent(1, ""), idEvent(2, ""))
	r.in <- acks.batch(2, "tetragon", idEvent(3, ""))
	time.Sleep(20 * time.Millisecond)
	if len(fake.requests()) != 0 {
		t.Fatal("sent before the request was full or lingered")
	}
	begin := time.Now()
	if err := r.finish(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if d := time.Since(begin); d > 10*time.Second { // Linger is an hour
		t.Errorf("flush took %v", d)
	}
	reqs := fake.requests()
	if len(reqs) != 1 || len(reqs[0].Events) != 3 {
		t.Fatalf("requests %v, want one with 3 events", reqs)
	}
	if acks.count(1) != 1 || acks.count(2) != 1 {
		t.Error("not every batch acknowledged")
	}
}

// TestLinger: a partial request goes out after Linger.
func TestLinger(t *testing.T) {
	fake := newFake(t, nil)
	cfg := testConfig(fake.srv.URL)
	cfg.Linger = 50 * time.Millisecond
	s := newTestSink(t, cfg, nil)
	acks := newAckRecorder()
	r := start(t, s)
	begin := time.Now()
	r.in <- acks.batch(1, "tetragon", idEvent(1, ""))
	waitFor(t, "the lingered request", func() bool { return acks.count(1) == 1 })
	if d := time.Since(begin); d < cfg.Linger {
		t.Errorf("sent after %v, before Linger %v", d, cfg.Linger)
	}
	if err := r.finish(t); err != nil {
		t.Fatal(err)
	}
}

// TestHardStopDoesNotAck: cancelling ctx aborts a stalled request and a
// retry wait at once, and nothing undelivered is acknowledged.
func TestHardStopDoesNotAck(t *testing.T) {
	for _, mode := range []string{"stalled", "retry-wait"} {
		t.Run(mode, func(t *testing.T) {
			stall := make(chan struct{})
			fake := newFake(t, func(int, recvRequest) (int, http.Header) {
				if mode == "stalled" {
					<-stall
					return 200, nil
				}
				return http.StatusServiceUnavailable, http.Header{"Retry-After": {"3600"}}
			})
			t.Cleanup(func() { close(stall) }) // before the server's Close, which waits for handlers
			cfg := testConfig(fake.srv.URL)
			cfg.MaxEvents = 1
			s := newTestSink(t, cfg, nil)
			acks := newAckRecorder()
			r := start(t, s)
			r.in <- acks.batch(1, "tetragon", idEvent(1, ""))
			r.in <- acks.batch(2, "tetragon", idEvent(2, ""))
			waitFor(t, "both requests", func() bool { return len(fake.requests()) == 2 })
			close(r.in) // graceful stop first: it must wait...
			time.Sleep(50 * time.Millisecond)
			select {
			case err := <-r.done:
				t.Fatalf("Run returned %v with requests undelivered", err)
			default:
			}
			begin := time.Now()
			r.cancel() // ...then the grace period is over
			err := r.wait(t)
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Run = %v, want context.Canceled", err)
			}
			if d := time.Since(begin); d > 10*time.Second { // far below the stall and Retry-After
				t.Errorf("hard stop took %v", d)
			}
			if acks.total.Load() != 0 {
				t.Errorf("%d batches acknowledged without delivery", acks.total.Load())
			}
		})
	}
}
