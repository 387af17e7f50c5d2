package pipeline

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/siemship/siemship/internal/event"
)

// fakeSource sends the given batches, then waits for ctx; it counts the
// batches done (what a real source would commit).
type fakeSource struct {
	batches []*event.Batch
	done    atomic.Int64
	closed  atomic.Bool
}

func (s *fakeSource) newBatch(raws ...string) {
	evs := make([]event.Event, len(raws))
	for i, r := range raws {
		evs[i] = *ev(r, typeOf(r))
	}
	s.batches = append(s.batches, event.NewBatch("fake", evs, func() { s.done.Add(1) }))
}

func typeOf(raw string) string {
	for _, t := range []string{"process_exec", "process_kprobe", "process_exit"} {
		if len(raw) > len(t)+2 && raw[2:2+len(t)] == t {
			return t
		}
	}
	return ""
}

func (s *fakeSource) Run(ctx context.Context, out chan<- *event.Batch) error {
	for _, b := range s.batches {
		select {
		case out <- b:
		case <-ctx.Done():
			return nil
		}
	}
	<-ctx.Done()
	return nil
}
func (s *fakeSource) Close() error                 { s.closed.Store(true); return nil }
func (s *fakeSource) Ready() (bool, string)        { return true, "" }
func (s *fakeSource) Verify(context.Context) error { return nil }
func (s *fakeSource) Status() []any                { return nil }

// recordingSink acknowledges every event it gets, after hold is closed.
type recordingSink struct {
	hold chan struct{}
	mu   sync.Mutex
	got  []string
}

func newRecordingSink(held bool) *recordingSink {
	s := &recordingSink{hold: make(chan struct{})}
	if !held {
		close(s.hold)
	}
	return s
}

func (s *recordingSink) Run(ctx context.Context, in <-chan *event.Batch) error {
	for b := range in {
		select {
		case <-s.hold:
		case <-ctx.Done():
			return ctx.Err()
		}
		evs := make([]*event.Event, len(b.Events))
		s.mu.Lock()
		for i := range b.Events {
			evs[i] = &b.Events[i]
			s.got = append(s.got, string(b.Events[i].Raw))
		}
		s.mu.Unlock()
		event.Deliver(evs)
	}
	return nil
}
func (s *recordingSink) Ready() (bool, string)        { return true, "" }
func (s *recordingSink) Verify(context.Context) error { return nil }
func (s *recordingSink) Status() []any                { return nil }

func (s *recordingSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got)
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// A filtered route and an unfiltered one share a source: the unfiltered
// sink gets everything, the filtered one only what its filter keeps, every
// batch is done (so the source's checkpoint advances, also past a batch
// the filter dropped entirely), and the outcome is counted per route.
func TestFilteredAndUnfilteredRoutesShareASource(t *testing.T) {
	src := &fakeSource{}
	src.newBatch(execKube, execShop, kprobe)
	src.newBatch(execKube, execKube) // filtered out entirely for taegis
	src.newBatch(hostExec, kprobe)
	all, some := newRecordingSink(false), newRecordingSink(false)
	reg := prometheus.NewRegistry()
	p, err := New([]Input{{Name: "tetragon", Source: src}},
		[]Output{{Name: "logscale", Sink: all}, {Name: "taegis", Sink: some}},
		[]Route{{From: "tetragon", To: []string{"logscale"}},
			{Name: "quiet", From: "tetragon", To: []string{"taegis"}, Exclude: &Selector{Namespaces: []string{"kube-*"}}}},
		reg, NewLoops(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, 5*time.Second) }()
	eventually(t, "every batch done", func() bool { return src.done.Load() == 3 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if all.count() != 7 || some.count() != 4 {
		t.Fatalf("logscale got %d (want 7), taegis %d (want 4): %v", all.count(), some.count(), some.got)
	}
	for _, raw := range some.got {
		if raw == execKube {
			t.Error("taegis got a kube-system event")
		}
	}
	if !src.closed.Load() {
		t.Error("the source was not closed (final checkpoint)")
	}
	if got := testutil.ToFloat64(mustCounter(t, reg, "quiet", "filtered")); got != 3 {
		t.Errorf("quiet filtered = %v, want 3", got)
	}
	if got := testutil.ToFloat64(mustCounter(t, reg, "tetragon->logscale", "sent")); got != 7 {
		t.Errorf("tetragon->logscale sent = %v, want 7", got)
	}
}

// A batch is done only when every sink delivered it: while one sink holds
// its events, no batch completes; the other sink's deliveries alone do not
// move the checkpoint.
func TestSlowestSinkHoldsTheCheckpoint(t *testing.T) {
	src := &fakeSource{}
	src.newBatch(execShop)
	src.newBatch(kprobe)
	fast, slow := newRecordingSink(false), newRecordingSink(true)
	p, err := New([]Input{{Name: "tetragon", Source: src}},
		[]Output{{Name: "fast", Sink: fast}, {Name: "slow", Sink: slow}}, nil,
		prometheus.NewRegistry(), NewLoops(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, 5*time.Second) }()
	eventually(t, "the fast sink delivered both", func() bool { return fast.count() == 2 })
	if n := src.done.Load(); n != 0 {
		t.Fatalf("%d batches done while the slow sink held them", n)
	}
	close(slow.hold)
	eventually(t, "both batches done", func() bool { return src.done.Load() == 2 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A source in no route is refused: its events would be lost silently.
func TestSourceWithoutRouteIsRefused(t *testing.T) {
	_, err := New([]Input{{Name: "a", Source: &fakeSource{}}, {Name: "b", Source: &fakeSource{}}},
		[]Output{{Name: "s", Sink: newRecordingSink(false)}}, []Route{{From: "a", To: []string{"s"}}},
		prometheus.NewRegistry(), NewLoops(), slog.New(slog.DiscardHandler))
	if err == nil {
		t.Fatal("accepted")
	}
}

func mustCounter(t *testing.T, reg *prometheus.Registry, route, outcome string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if mf.GetName() == "siemship_route_events_total" && labels["route"] == route && labels["outcome"] == outcome {
				c := prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})
				c.Add(m.GetCounter().GetValue())
				return c
			}
		}
	}
	t.Fatalf("no series for route %s outcome %s", route, outcome)
	return nil
}
