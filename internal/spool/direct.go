package spool

import (
	"context"
	"sync"
	"time"

	"github.com/siemship/siemship/internal/event"
)

// Overflow mode hands a batch straight to the sink while nothing is
// spooled, so that a sink that keeps up costs no disk. The sink gets a
// copy (events and bytes owned by the spool), and the source's batch is
// acknowledged when the copy is delivered, or, if the copy is still
// undelivered after directStuck or the sink reports itself not ready (it
// fell behind or cannot reach the SIEM), once the spool has written it
// durably. While the sink is not ready nothing goes straight to it. The sink may then deliver its copy later as well: a
// duplicate, bounded by maxDirect batches. Without this a sink that stops
// would hold the source's checkpoint back while the outage outlasts
// Tetragon's files.
const (
	maxDirect   = 4
	directStuck = 2 * time.Second
)

type direct struct {
	orig  []*event.Event // the source's events, acknowledged once
	copy  []event.Event  // what the sink got
	src   string
	since time.Time
	once  sync.Once
}

func (d *direct) ack() { d.once.Do(func() { event.Deliver(d.orig) }) }

// tryDirect hands b to the sink when overflow mode allows it now.
func (s *Sink) tryDirect(b *event.Batch, innerIn chan<- *event.Batch) bool {
	s.mu.Lock()
	ok := s.unread == 0 && len(s.directs) < maxDirect && (len(s.directs) == 0 || time.Since(s.directs[0].since) < directStuck)
	s.mu.Unlock()
	if !ok {
		return false
	}
	if ready, _ := s.inner.Ready(); !ready {
		return false
	}
	d := &direct{src: b.Source, since: time.Now(), orig: make([]*event.Event, len(b.Events)), copy: make([]event.Event, len(b.Events))}
	size := 0
	for i := range b.Events {
		size += len(b.Events[i].Raw)
	}
	buf := make([]byte, 0, size)
	for i := range b.Events {
		e := b.Events[i]
		d.orig[i] = &b.Events[i]
		buf = append(buf, e.Raw...)
		e.Raw = buf[len(buf)-len(e.Raw) : len(buf) : len(buf)]
		d.copy[i] = e
	}
	wrapped := event.NewBatch(b.Source, d.copy, func() {
		d.ack()
		s.mu.Lock()
		for i, x := range s.directs {
			if x == d {
				s.directs = append(s.directs[:i], s.directs[i+1:]...)
				break
			}
		}
		s.mu.Unlock()
	})
	wrapped.Expect(1)
	s.mu.Lock()
	s.directs = append(s.directs, d)
	s.mu.Unlock()
	select {
	case innerIn <- wrapped:
		s.m.direct.Add(float64(len(b.Events)))
		return true
	default: // the sink is behind: spill
		s.mu.Lock()
		s.directs = s.directs[:len(s.directs)-1]
		s.mu.Unlock()
		return false
	}
}

// spillStuck writes direct batches the sink has held for directStuck to
// the spool and acknowledges them upstream once durable.
func (s *Sink) spillStuck(ctx context.Context, buf []byte, pending *[]*event.Event) ([]byte, error) {
	ready, _ := s.inner.Ready()
	s.mu.Lock()
	var stuck []*direct
	for _, d := range s.directs {
		if !ready || time.Since(d.since) >= directStuck {
			stuck = append(stuck, d)
		}
	}
	s.mu.Unlock()
	for _, d := range stuck {
		evs := make([]*event.Event, len(d.copy))
		for i := range d.copy {
			evs[i] = &d.copy[i]
		}
		var err error
		if buf, err = s.spool(ctx, d.src, evs, buf, pending); err != nil {
			return buf, err
		}
		if err := s.sync(ctx); err != nil {
			return buf, err
		}
		d.ack()
		s.mu.Lock()
		for i, x := range s.directs {
			if x == d {
				s.directs = append(s.directs[:i], s.directs[i+1:]...)
				break
			}
		}
		s.mu.Unlock()
	}
	if len(stuck) > 0 {
		s.log.Info("spool: the sink fell behind, batches it held were spooled and acknowledged (it may deliver them twice)", "batches", len(stuck))
	}
	return buf, nil
}
