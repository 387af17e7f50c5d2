package leader

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/siemship/siemship/internal/event"
)

// blockingSource reads until its context ends and counts Close calls.
type blockingSource struct {
	started chan struct{}
	closes  atomic.Int32
}

func (s *blockingSource) Run(ctx context.Context, _ chan<- *event.Batch) error {
	close(s.started)
	<-ctx.Done()
	return nil
}
func (s *blockingSource) Close() error                 { s.closes.Add(1); return nil }
func (s *blockingSource) Ready() (bool, string)        { return true, "" }
func (s *blockingSource) Verify(context.Context) error { return nil }
func (s *blockingSource) Status() []any                { return nil }

// TestGateStopsOnLoss: the gated source starts only once the elector
// leads, stops reading when leadership is lost, and Run returns an error
// wrapping ErrLost (which stops the pipeline and the process non-zero);
// Close then reaches the source for its final checkpoint. A gate that never
// led closes nothing.
func TestGateStopsOnLoss(t *testing.T) {
	env := startKube(t)
	ns := namespace(t, env, "gate")
	e := newElector(t, fast(ns), env.Admin, "g")
	src := &blockingSource{started: make(chan struct{})}
	g := e.Gate("falcon", src)
	done := make(chan error, 1)
	go func() { done <- g.Run(context.Background(), nil) }()
	select {
	case <-src.started:
		t.Fatal("source started before leading")
	case <-time.After(300 * time.Millisecond):
	}
	campaign(t, e)
	waitFor(t, 10*time.Second, "source started once leading", src.started)
	e.Abdicate(errors.New("test"))
	select {
	case err := <-done:
		if !errors.Is(err, ErrLost) {
			t.Fatalf("Run = %v, want ErrLost", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("gate did not stop after leadership was lost")
	}
	if err := g.Close(); err != nil || src.closes.Load() != 1 {
		t.Fatalf("Close = %v, closes %d", err, src.closes.Load())
	}
	idle := newElector(t, fast(ns), env.Admin, "h").Gate("falcon", &blockingSource{started: make(chan struct{})})
	if err := idle.Close(); err != nil || idle.Inner().(*blockingSource).closes.Load() != 0 {
		t.Fatal("a gate that never led closed its source")
	}
}
