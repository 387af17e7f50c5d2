package spool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/prometheus/prometheus/tsdb/wlog"

	"github.com/siemship/siemship/internal/event"
)

// intake takes batches from in until it closes (then it returns nil after
// acknowledging what it spooled) or ctx ends. Overflow mode hands a batch
// straight to the sink when nothing is spooled (nothing to overtake) and
// the sink's input has room this instant; otherwise, and always in always
// mode, the batch is written to the spool. Only intake writes the log.
func (s *Sink) intake(ctx context.Context, in <-chan *event.Batch, innerIn chan<- *event.Batch, innerDone <-chan struct{}) error {
	var tick <-chan time.Time
	if s.syncEvery > 0 {
		t := time.NewTicker(s.syncEvery)
		defer t.Stop()
		tick = t.C
	}
	var stuck <-chan time.Time
	if s.cfg.Mode == ModeOverflow {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		stuck = t.C
	}
	var pending []*event.Event // written, waiting for the interval's fsync
	var evs []*event.Event
	var buf []byte
	for {
		select {
		case b, ok := <-in:
			if !ok {
				return s.flush(ctx, &pending)
			}
			if len(b.Events) == 0 {
				continue
			}
			if s.cfg.Mode == ModeOverflow && s.tryDirect(b, innerIn) {
				continue
			}
			evs = evs[:0]
			for i := range b.Events {
				evs = append(evs, &b.Events[i])
			}
			var err error
			if buf, err = s.spool(ctx, b.Source, evs, buf, &pending); err != nil {
				return err
			}
			if s.syncEvery > 0 {
				pending = append(pending, evs...)
				continue
			}
			if err := s.sync(ctx); err != nil {
				return err
			}
			event.Deliver(evs)
		case <-tick:
			if err := s.flush(ctx, &pending); err != nil {
				return err
			}
		case <-stuck:
			var err error
			if buf, err = s.spillStuck(ctx, buf, &pending); err != nil {
				return err
			}
		case <-innerDone:
			return errors.New("the sink behind the spool stopped")
		case <-ctx.Done():
			return nil // aborting: what is not acknowledged is read again after restart
		}
	}
}

// empty says whether every spooled record was handed to the sink (tests).
func (s *Sink) empty() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unread == 0
}

// flush makes pending durable and acknowledges it upstream.
func (s *Sink) flush(ctx context.Context, pending *[]*event.Event) error {
	if len(*pending) == 0 {
		return nil
	}
	if err := s.sync(ctx); err != nil {
		return err
	}
	event.Deliver(*pending)
	clear(*pending)
	*pending = (*pending)[:0]
	return nil
}

// sync fsyncs the segment being written (segments finished before were
// fsynced when wlog moved on, see noteWrite), retrying on failure: what
// is not durable is not acknowledged.
func (s *Sink) sync(ctx context.Context) error {
	for {
		err := s.w.Sync()
		if err == nil {
			return nil
		}
		s.m.writeErrors.Inc()
		s.log.Error("spool fsync failed, retrying; nothing is acknowledged upstream until it succeeds", "error", err.Error())
		if err := sleep(ctx, retryWait); err != nil {
			return err // stopping: the unacknowledged events are read again after restart
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// spool writes events as records of at most chunkBytes each. When the
// spool is full (max_bytes, or ENOSPC) it blocks until the sink's
// deliveries make room, or drops the oldest segment, per when_full;
// pending (interval mode) is acknowledged before blocking. It returns the
// scratch buffer for reuse, and an error only when ctx ended (the batch
// stays unacknowledged).
func (s *Sink) spool(ctx context.Context, source string, evs []*event.Event, buf []byte, pending *[]*event.Event) ([]byte, error) {
	at := time.Now().UnixMilli()
	for len(evs) > 0 {
		n, size := 0, 0
		for n < len(evs) && (n == 0 || size+len(evs[n].Raw) <= s.chunkBytes) {
			size += len(evs[n].Raw) + 16
			n++
		}
		buf = appendRecord(buf[:0], source, at, evs[:n])
		if err := s.write(ctx, buf, n, at, pending); err != nil {
			return buf, err
		}
		evs = evs[n:]
	}
	return buf, nil
}

// write appends one record of n events, waiting or dropping for room.
func (s *Sink) write(ctx context.Context, rec []byte, n int, at int64, pending *[]*event.Event) error {
	// A record costs its bytes, a 7-byte header per page, and at worst
	// the padding of a page.
	cost := int64(len(rec)) + int64(len(rec)/pageSize+1)*7
	var failed *failedWrite // this record's failed attempt, if any
	for {
		if failed != nil && failed.landed {
			break // the failed attempt reached the disk whole after all: written once
		}
		if s.failed != nil {
			// After a failed write wlog's page still holds what it could not
			// write (the record, whole or in part): the roll writes it out and
			// starts a new segment, so nothing ever follows a partial record.
			if err := s.roll(); err != nil {
				s.m.writeErrors.Inc()
				if err := s.full(ctx, err, pending); err != nil {
					return err
				}
			}
			continue
		}
		s.mu.Lock()
		over := s.bytes+cost > int64(s.cfg.MaxBytes)
		s.mu.Unlock()
		if over {
			if err := s.full(ctx, nil, pending); err != nil {
				return err
			}
			continue
		}
		s.mu.Lock()
		from := pos{Seg: s.writeSeg}
		if info := s.segs[s.writeSeg]; info != nil {
			from.End = info.size
		}
		s.mu.Unlock()
		if err := s.w.Log(rec); err != nil {
			failed = &failedWrite{from: from, rec: rec, events: int64(n), at: at}
			s.failed = failed
			s.m.writeErrors.Inc()
			if !isNoSpace(err) {
				// An I/O error that may pass (a remount, a flaky disk): retry
				// rather than stop the sink and crash-loop the agent.
				s.log.Error("spool write failed, retrying; the batch is not acknowledged upstream", "error", err.Error())
				if err := sleep(ctx, retryWait); err != nil {
					return err
				}
				continue
			}
			if err := s.full(ctx, err, pending); err != nil {
				return err
			}
			continue
		}
		s.noteWrite(1, int64(n), at)
		break
	}
	s.mu.Lock()
	s.diskFull = ""
	s.mu.Unlock()
	s.m.writes.Add(float64(n))
	s.m.writeBytes.Add(float64(len(rec)))
	signal(s.wake)
	return nil
}

// failedWrite is a record whose wlog.Log failed. wlog keeps the record's
// fragments in its page buffer and writes them with the next flush, so
// the record may still reach the disk whole (the failed flush was retried
// by the roll) or only in part (its first pages were written, the rest
// dropped by wlog).
type failedWrite struct {
	from   pos // the segment written and its size before the attempt
	rec    []byte
	events int64
	at     int64
	landed bool // found whole on disk after the roll and accounted
}

// roll starts a new segment (intake only). After a failed write it then
// looks for the failed record in the segment the roll finished: whole, it
// is accounted as written, so the caller does not write it again (a
// duplicate, and counts that drift); in part, it stays a record cut
// short at the end of a finished segment, which the replay skips (it was
// never acknowledged upstream).
func (s *Sink) roll() error {
	if _, err := s.w.NextSegmentSync(); err != nil {
		return fmt.Errorf("start a new spool segment: %w", err)
	}
	s.noteWrite(0, 0, 0)
	f := s.failed
	if f == nil {
		return nil
	}
	s.failed = nil
	s.mu.Lock()
	seg := s.writeSeg - 1
	s.mu.Unlock()
	from := int64(0)
	if seg == f.from.Seg {
		from = f.from.End
	}
	whole, err := holdsOnly(s.cfg.Dir, seg, from, f.rec)
	if err != nil {
		// Written again in the new segment: at worst a duplicate.
		s.log.Warn("spool: cannot check whether a failed write reached the disk, writing it again", "segment", seg, "error", err.Error())
		return nil
	}
	if whole {
		s.mu.Lock()
		if info := s.segs[seg]; info != nil {
			s.count(info, 1, f.events, f.at)
		}
		s.mu.Unlock()
		f.landed = true
		s.log.Debug("spool: a failed write reached the disk whole when the segment was finished; not written again", "segment", seg)
	} else {
		s.log.Debug("spool: a failed write left at most part of a record at the end of a finished segment; written again", "segment", seg)
	}
	return nil
}

// holdsOnly says whether the records of segment seg after offset from are
// exactly rec, once.
func holdsOnly(dir string, seg int, from int64, rec []byte) (bool, error) {
	r, err := openSegment(dir, seg)
	if err != nil {
		return false, fmt.Errorf("open segment %d: %w", seg, err)
	}
	defer r.close()
	found := 0
	for {
		got, end, err := r.next()
		var g *gap
		switch {
		case err == nil:
			if end > from {
				if found++; !bytes.Equal(got, rec) {
					return false, nil
				}
			}
		case errors.As(err, &g):
			// A part of the record: not written whole.
		case errors.Is(err, io.EOF):
			return found == 1, nil
		default:
			return false, fmt.Errorf("read segment %d: %w", seg, err)
		}
	}
}

// noteWrite accounts a record just written to the newest segment, after
// following wlog to any segment it started meanwhile: those it left are
// fsynced here (wlog does it asynchronously, after the write returned)
// and new ones get mode 0600.
func (s *Sink) noteWrite(records, events, at int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		next := wlog.SegmentName(s.cfg.Dir, s.writeSeg+1)
		if _, err := os.Stat(next); err != nil {
			break
		}
		if err := fsyncFile(wlog.SegmentName(s.cfg.Dir, s.writeSeg)); err != nil {
			s.log.Error("spool: fsync of a finished segment failed", "error", err.Error())
		}
		if fi, err := os.Stat(wlog.SegmentName(s.cfg.Dir, s.writeSeg)); err == nil {
			s.setSize(s.writeSeg, fi.Size())
		}
		if err := os.Chmod(next, 0o600); err != nil {
			s.log.Error("spool: chmod of a new segment failed", "error", err.Error())
		}
		if err := syncDir(s.cfg.Dir); err != nil {
			s.log.Error("spool: fsync of the directory failed", "error", err.Error())
		}
		s.writeSeg++
		s.segs[s.writeSeg] = &segInfo{}
	}
	info := s.segs[s.writeSeg]
	if fi, err := os.Stat(wlog.SegmentName(s.cfg.Dir, s.writeSeg)); err == nil {
		s.setSize(s.writeSeg, fi.Size())
	}
	if records > 0 {
		s.count(info, records, events, at)
	}
}

// count accounts records written to the segment of info; s.mu held.
func (s *Sink) count(info *segInfo, records, events, at int64) {
	if info.records == 0 {
		info.first = at
	}
	info.records += records
	info.events += events
	info.last = at
	s.records += records
	s.events += events
	s.unread += records
}

// setSize records a segment's size; s.mu held.
func (s *Sink) setSize(seg int, size int64) {
	if info, ok := s.segs[seg]; ok {
		s.bytes += size - info.size
		info.size = size
	}
}

func fsyncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// full handles a full spool (cause is the write error, or nil at
// max_bytes): drop_oldest deletes the oldest segment if there is one
// besides the one being written; otherwise, and with block, it waits for
// the sink to deliver (or a second, for a disk that others fill too).
func (s *Sink) full(ctx context.Context, cause error, pending *[]*event.Event) error {
	if s.cfg.WhenFull == FullDropOldest && s.dropOldest() {
		return nil
	}
	if err := s.flush(ctx, pending); err != nil {
		return err
	}
	s.m.fullWaits.Inc()
	if cause != nil && isNoSpace(cause) {
		s.m.diskFull.Inc()
		s.mu.Lock()
		s.diskFull = cause.Error()
		s.mu.Unlock()
	}
	st := s.Stats()
	msg := "spool full, not acknowledging upstream until the sink delivers (back-pressure)"
	if cause != nil {
		msg = "disk full (" + cause.Error() + "), not acknowledging upstream until there is room (back-pressure)"
	}
	s.log.Debug(msg, "bytes", st.Bytes, "max_bytes", int64(s.cfg.MaxBytes), "events", st.Events)
	t := time.NewTimer(retryWait)
	defer t.Stop()
	select {
	case <-s.room:
	case <-t.C:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// dropOldest deletes the oldest segment (rolling the log first when that
// is the one being written) and reports exactly the events it held that
// were not handed to the sink yet. It returns false when there is nothing
// to drop.
func (s *Sink) dropOldest() bool {
	s.mu.Lock()
	oldest := -1
	for k := range s.segs {
		if oldest < 0 || k < oldest {
			oldest = k
		}
	}
	info := s.segs[oldest]
	if oldest == s.writeSeg {
		s.mu.Unlock()
		if info == nil || info.records == info.handed {
			return false
		}
		if err := s.roll(); err != nil {
			return false
		}
		return s.dropOldest()
	}
	lostRec, lostEv := info.records-info.handed, info.events-info.handedEv
	delete(s.segs, oldest)
	s.dropBelow = max(s.dropBelow, oldest+1)
	s.bytes -= info.size
	s.records -= lostRec
	s.events -= lostEv
	s.unread -= lostRec
	s.mu.Unlock()
	if err := os.Remove(wlog.SegmentName(s.cfg.Dir, oldest)); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.log.Error("spool: delete of a dropped segment failed", "error", err.Error())
	}
	if lostEv == 0 {
		return true
	}
	s.m.dropped.Add(float64(lostEv))
	s.m.droppedSegs.Inc()
	l := Loss{Reason: "spool full (when_full: drop_oldest): the oldest spooled events were deleted unsent",
		Sink: s.name, Segment: oldest, Events: lostEv, Records: lostRec, Bytes: info.size, Exact: true,
		SpooledFrom: fmtMs(info.first), SpooledTo: fmtMs(info.last)}
	s.log.Error("spool full: dropped the oldest events unsent (when_full: drop_oldest)",
		"events", lostEv, "records", lostRec, "segment", oldest, "spooled_from", l.SpooledFrom, "spooled_to", l.SpooledTo,
		"hint", "the SIEM has been unreachable or slow for longer than max_bytes holds: raise max_bytes or fix the sink")
	s.reportLoss(l)
	return true
}

// reportLoss queues a drop report for the replay to hand to the sink
// before its next record. It is not spooled: a report in the spool could be
// dropped in turn. Reports waiting are merged, so exactly what was dropped
// is reported, in one bounded struct (a crash loses the report, not the
// counter and the log line).
func (s *Sink) reportLoss(l Loss) {
	s.mu.Lock()
	if p := s.pendingLoss; p != nil {
		p.Events += l.Events
		p.Records += l.Records
		p.Bytes += l.Bytes
		p.Segment = l.Segment
		p.SpooledTo = l.SpooledTo
		if p.SpooledFrom == "" {
			p.SpooledFrom = l.SpooledFrom
		}
	} else {
		s.pendingLoss = &l
	}
	s.mu.Unlock()
	signal(s.wake)
}

func fmtMs(ms int64) string {
	if ms == 0 {
		return ""
	}
	return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano)
}
