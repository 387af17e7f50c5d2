package spool

import (
	"context"
	"errors"
	"io"
	"os"
	"time"

	"github.com/siemship/siemship/internal/event"
)

// replay reads the spool in order from the first record not delivered and
// hands each record to the sink as a batch whose done callback trims the
// spool. It waits at the end of the newest segment for more; it moves on
// from a segment once wlog has started the next one and everything in it
// was read. Damage is skipped and reported; a segment that cannot be
// opened is retried; nothing stops it but stop and ctx.
func (s *Sink) replay(ctx context.Context, stop <-chan struct{}, out chan<- *event.Batch) {
	s.mu.Lock()
	seg, skipTo := s.start.Seg, s.start.End
	s.mu.Unlock()
	types := map[string]string{}
	var r *segReader
	defer func() {
		if r != nil {
			r.close()
		}
	}()
	sealedSeen := false
	wait := func(d time.Duration) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-s.wake:
		case <-t.C:
		case <-stop:
			return false
		case <-ctx.Done():
			return false
		}
		return true
	}
	for {
		if l := s.takeLoss(); l != nil {
			b := event.NewBatch(lossSource, []event.Event{l.event()}, nil)
			b.Expect(1)
			if !send(ctx, stop, out, b) {
				return
			}
		}
		if r == nil {
			s.mu.Lock()
			if seg < s.dropBelow {
				seg, skipTo = s.dropBelow, 0
			}
			ws := s.writeSeg
			s.mu.Unlock()
			var err error
			r, err = openSegment(s.cfg.Dir, seg)
			switch {
			case errors.Is(err, os.ErrNotExist) && seg < ws:
				seg, skipTo = seg+1, 0 // dropped meanwhile
				continue
			case err != nil:
				s.log.Error("spool: cannot open segment, retrying", "segment", seg, "error", err.Error())
				r = nil
				if !wait(retryWait) {
					return
				}
				continue
			}
			sealedSeen = false
		}
		rec, end, err := r.next()
		var g *gap
		switch {
		case err == nil:
			if end <= skipTo {
				continue // delivered before the restart
			}
			if !s.hand(ctx, stop, out, r.seg, rec, end, types) {
				return
			}
		case errors.As(err, &g):
			if !send(ctx, stop, out, s.damaged(r.seg, g)) {
				return
			}
		case errors.Is(err, io.EOF):
			s.mu.Lock()
			sealed, dropped := seg < s.writeSeg, seg < s.dropBelow
			s.mu.Unlock()
			if dropped {
				r.close()
				r = nil
				continue
			}
			if !sealed {
				if !wait(time.Second) {
					return
				}
				continue
			}
			if !sealedSeen { // wlog wrote all of it before starting the next: read to the end once more
				sealedSeen = true
				continue
			}
			switch g, err := r.skipLeftover(); {
			case err != nil:
				s.log.Error("spool: checking the end of a segment failed", "segment", seg, "error", err.Error())
			case g != nil && !g.tail:
				// Damage, with intact records after it: report, read on.
				sealedSeen = false
				if !send(ctx, stop, out, s.damaged(r.seg, g)) {
					return
				}
				continue
			case g != nil:
				s.log.Warn("spool: a record cut short at the end of a segment (a failed write, never acknowledged upstream) is skipped",
					"segment", seg, "bytes", g.to-g.from)
			}
			s.tracker.Track(pos{Seg: seg, End: r.end, SegDone: true})()
			signal(s.trimWake)
			r.close()
			r = nil
			seg, skipTo = seg+1, 0
		default:
			s.log.Error("spool: read failed, retrying the segment", "segment", seg, "error", err.Error())
			skipTo = max(skipTo, r.end)
			r.close()
			r = nil
			if !wait(retryWait) {
				return
			}
		}
	}
}

// hand rebuilds a record's batch and sends it to the sink, after waiting
// for in-flight room. It returns false when stopped.
func (s *Sink) hand(ctx context.Context, stop <-chan struct{}, out chan<- *event.Batch, seg int, rec []byte, end int64, types map[string]string) bool {
	h, err := decodeHeader(rec)
	var evs []event.Event
	if err == nil {
		// The record is only valid until the next read: the batch owns a copy.
		own := append([]byte(nil), rec...)
		if h, err = decodeHeader(own); err == nil {
			evs, err = decodeEvents(h, types)
		}
	}
	if err != nil {
		s.mu.Lock()
		s.unread--
		s.records--
		s.mu.Unlock()
		return send(ctx, stop, out, s.damaged(seg, &gap{from: end - int64(len(rec)), to: end, cause: err}))
	}
	for {
		s.mu.Lock()
		ok := s.inflight == 0 || s.inflight+int64(len(rec)) <= maxInflight
		s.mu.Unlock()
		if ok {
			break
		}
		select {
		case <-s.acked:
		case <-stop:
			return false
		case <-ctx.Done():
			return false
		}
	}
	s.mu.Lock()
	if seg < s.dropBelow { // dropped while read: counted as dropped
		s.mu.Unlock()
		return true
	}
	info := s.segs[seg]
	if info != nil {
		info.handed++
		info.handedEv += int64(len(evs))
	}
	s.unread--
	s.inflight += int64(len(rec))
	done := s.tracker.Track(pos{Seg: seg, End: end, at: h.spooledAt})
	s.mu.Unlock()
	size, n := int64(len(rec)), int64(len(evs))
	b := event.NewBatch(h.source, evs, func() {
		done()
		s.mu.Lock()
		s.inflight -= size
		s.records--
		s.events -= n
		s.mu.Unlock()
		s.m.replayed.Add(float64(n))
		signal(s.acked)
		signal(s.trimWake)
	})
	b.Expect(1)
	return send(ctx, stop, out, b)
}

func send(ctx context.Context, stop <-chan struct{}, out chan<- *event.Batch, b *event.Batch) bool {
	select {
	case out <- b:
		return true
	case <-stop:
	case <-ctx.Done():
	}
	return false
}

// damaged counts and logs a skipped span and returns the loss report for
// the sink (not spooled: after a crash the damage is found again).
func (s *Sink) damaged(seg int, g *gap) *event.Batch {
	s.m.corruptions.Inc()
	s.m.corruptBytes.Add(float64(g.to - g.from))
	l := Loss{Reason: "spool data damaged on disk (checksum mismatch): the damaged span was skipped",
		Sink: s.name, Segment: seg, Offset: g.from, Bytes: g.to - g.from}
	s.log.Error("spool: damaged data skipped, its events are lost", "segment", seg, "from", g.from, "to", g.to,
		"error", g.cause.Error(), "hint", "the disk under the spool returned bad data; check it")
	e := l.event()
	b := event.NewBatch(lossSource, []event.Event{e}, nil)
	b.Expect(1)
	return b
}

func (s *Sink) takeLoss() *Loss {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.pendingLoss
	s.pendingLoss = nil
	return l
}
