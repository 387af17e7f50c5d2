package delivery

import (
	"context"
	"sync"
	"time"

	"github.com/siemship/siemship/internal/event"
)

// Run ships the events of the batches from in until in is closed; then it
// sends the last partial request, waits for every request in flight
// (retries included) and returns nil.
//
// When ctx ends, Run aborts requests and retries at once and returns
// ctx's error; events not delivered by then stay unacknowledged. A graceful
// stop is: close in, and cancel ctx after a grace period.
//
// Run must be called once. It owns every goroutine it starts and has
// waited for them when it returns.
func (s *Sender) Run(ctx context.Context, in <-chan *event.Batch) error {
	defer s.client.CloseIdleConnections()
	defer func() {
		if err := s.dl.close(); err != nil {
			s.log.Warn("closing the dead-letter file", "err", err)
		}
	}()
	bt := &batcher{
		s:     s,
		cur:   s.builders.Get().(Body),
		slots: make(chan struct{}, s.cfg.Concurrency),
		timer: time.NewTimer(time.Hour),
	}
	bt.timer.Stop()
	defer bt.wg.Wait()
	defer func() { s.releaseBody(bt.cur) }()

	for ctx.Err() == nil {
		select {
		case b, ok := <-in:
			if !ok {
				bt.flush(ctx)
				bt.wg.Wait()
				return ctx.Err()
			}
			bt.addBatch(ctx, b)
		case <-bt.lingerC:
			bt.flush(ctx)
		case <-ctx.Done():
		}
	}
	return ctx.Err()
}

// batcher packs events into requests and starts a sender per request,
// at most Concurrency at a time. It runs on Run's goroutine only.
type batcher struct {
	s       *Sender
	cur     Body
	slots   chan struct{} // one token per request in flight
	wg      sync.WaitGroup
	timer   *time.Timer
	lingerC <-chan time.Time // nil while cur is empty
}

// addBatch adds b's events, sending requests as they fill.
func (bt *batcher) addBatch(ctx context.Context, b *event.Batch) {
	cfg := &bt.s.cfg
	maxBytes := int(cfg.MaxBytes)
	for i := range b.Events {
		ev := &b.Events[i]
		if !bt.cur.Add(b.Source, ev, maxBytes) {
			if !bt.flush(ctx) {
				return
			}
			bt.cur.Add(b.Source, ev, maxBytes) // alone it always fits
		}
		if bt.cur.Len() == 1 {
			bt.timer.Reset(cfg.Linger)
			bt.lingerC = bt.timer.C
		}
		if bt.cur.Len() >= cfg.MaxEvents || bt.cur.Size() >= maxBytes {
			if !bt.flush(ctx) {
				return
			}
		}
	}
}

// flush hands the current request to a sender once a slot is free; until
// then it blocks, and so Run stops taking batches: that is the
// back-pressure that pauses the source. It returns false if ctx ended first.
func (bt *batcher) flush(ctx context.Context) bool {
	bt.timer.Stop()
	bt.lingerC = nil
	if bt.cur.Len() == 0 {
		return true
	}
	select {
	case bt.slots <- struct{}{}:
	case <-ctx.Done():
		return false
	}
	b := bt.cur
	bt.cur = bt.s.builders.Get().(Body)
	bt.s.m.inflight.Inc()
	bt.wg.Go(func() {
		defer func() {
			bt.s.m.inflight.Dec()
			<-bt.slots
		}()
		// Compress here rather than in Run, so that requests compress in
		// parallel while Run fills the next one.
		bt.s.deliver(ctx, bt.s.seal(b, false))
	})
	return true
}
