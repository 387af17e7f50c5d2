package tetragon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/siemship/siemship/internal/event"
)

// step does one unit of work: open a file, read some bytes, or handle EOF.
func (s *Source) step(ctx context.Context, out chan<- *event.Batch) error {
	if s.cur == nil {
		return s.start(ctx, out)
	}
	if s.cur.broken {
		return s.next(ctx, out)
	}
	progress, err := s.fill(ctx, out)
	if progress {
		return nil
	}
	if errors.Is(err, errCorrupt) {
		return s.brokenEnd(ctx, out, err)
	}
	if err != nil && !errors.Is(err, io.EOF) {
		s.m.readErrors.Inc()
		s.reportErr("read failed, retrying", err)
		return s.wait(ctx)
	}
	return s.atEOF(ctx, out)
}

// brokenEnd ends a compressed backup that cannot be decoded further: the
// whole lines before the damage are shipped, the rest (a partial line, and
// whatever the stream held after it) is reported lost with the next file's
// first batch, and reading moves on. Retrying would stall the reader until
// Tetragon deleted everything after it.
func (s *Source) brokenEnd(ctx context.Context, out chan<- *event.Batch, cause error) error {
	if s.long == nil {
		if err := s.emit(ctx, out, false); err != nil {
			return err
		}
	}
	partial := int64(0)
	if s.buf != nil {
		partial = int64(len(s.buf) - s.lineEnd)
		s.buf = s.buf[:0]
	}
	if s.long != nil {
		partial = int64(s.long.size)
		s.releaseBuffer(s.long.head)
		s.long = nil
	}
	s.lineEnd, s.scanned = 0, 0
	s.m.readErrors.Inc()
	s.cur.broken = true
	s.pendingLoss = mergeLoss(s.pendingLoss, &Loss{From: s.position(), BytesAtLeast: partial, corrupt: true,
		Reason: fmt.Sprintf("the compressed backup cannot be read past this offset (truncated or corrupt: %v)", cause)})
	return s.next(ctx, out)
}

// fill reads more bytes into the working buffer. It emits a batch when the
// buffer is full, and switches to long-line mode when one line fills it.
func (s *Source) fill(ctx context.Context, out chan<- *event.Batch) (bool, error) {
	if s.long != nil {
		return s.skipLong(ctx, out)
	}
	if s.buf == nil {
		if err := s.takeBuffer(ctx, s.cfg.ReadBufferBytes); err != nil {
			return false, err
		}
	}
	if len(s.buf) == cap(s.buf) {
		if s.lineEnd > 0 {
			return true, s.emit(ctx, out, false)
		}
		return true, s.growOrTruncate(ctx)
	}
	n, err := s.cur.Read(s.buf[len(s.buf):cap(s.buf)])
	if n > 0 {
		s.buf = s.buf[:len(s.buf)+n]
		s.m.bytesRead.Add(float64(n))
		if i := bytes.LastIndexByte(s.buf[s.scanned:], '\n'); i >= 0 {
			s.lineEnd = s.scanned + i + 1
		}
		s.scanned = len(s.buf)
		return true, nil
	}
	return false, err
}

// takeBuffer makes a fresh working buffer holding the carried-over partial
// line. Acquiring its size from the shared budget is where back-pressure
// stops the reader.
func (s *Source) takeBuffer(ctx context.Context, size int) error {
	if err := s.acquire(ctx, int64(size)); err != nil {
		return err
	}
	var b []byte
	if size == s.cfg.ReadBufferBytes {
		b = (*s.pool.Get().(*[]byte))[:0]
	} else {
		b = make([]byte, 0, size)
	}
	s.buf = b
	return nil
}

// acquire takes n bytes of the shared budget, counting the times it has to
// wait for them.
func (s *Source) acquire(ctx context.Context, n int64) error {
	if s.budget.TryAcquire(n) {
		return nil
	}
	s.m.budgetWaits.Inc()
	if err := s.budget.Acquire(ctx, n); err != nil {
		return fmt.Errorf("wait for buffer budget: %w", err)
	}
	return nil
}

// takeBufferWith makes a fresh working buffer starting with rest, large
// enough to hold it: an append that outgrew the buffer would hold memory the
// budget never granted.
func (s *Source) takeBufferWith(ctx context.Context, rest []byte) error {
	if err := s.takeBuffer(ctx, max(s.cfg.ReadBufferBytes, len(rest))); err != nil {
		return err
	}
	s.buf = append(s.buf, rest...)
	return nil
}

// releaseBuffer returns a buffer that no batch references.
func (s *Source) releaseBuffer(b []byte) {
	s.budget.Release(int64(cap(b)))
	if cap(b) == s.cfg.ReadBufferBytes {
		b = b[:0]
		s.pool.Put(&b)
	}
}

// emit sends the complete lines of the working buffer as one batch; with
// final (a finished file) a last line without newline goes too. A mostly full
// buffer is handed to the batch; a mostly empty one (the reader is caught
// up) is copied so that a trickle of events does not pin large buffers.
func (s *Source) emit(ctx context.Context, out chan<- *event.Batch, final bool) error {
	end := s.lineEnd
	if final {
		end = len(s.buf)
	}
	if end == 0 {
		return nil
	}
	old := s.buf
	var data []byte
	var cost int64
	if end*2 >= cap(old) {
		data, cost = old[:end], int64(cap(old))
		if err := s.takeBufferWith(ctx, old[end:]); err != nil {
			s.buf = old
			return err
		}
	} else {
		if err := s.acquire(ctx, int64(end)); err != nil {
			return err
		}
		data, cost = append(make([]byte, 0, end), old[:end]...), int64(end)
		s.buf = old[:copy(old, old[end:])]
	}
	pooled := cost == int64(s.cfg.ReadBufferBytes)
	release := func() {
		s.budget.Release(cost)
		if pooled {
			b := data[:0]
			s.pool.Put(&b)
		}
	}
	s.bufStart += int64(end)
	s.lineEnd, s.scanned = 0, len(s.buf)
	return s.send(ctx, out, s.splitLines(data), data, release)
}

// splitLines slices data into one event per line; empty lines are skipped.
// A line over the cap that fit in a buffer anyway (a large read buffer, or
// the rest of a read after a long line) is cut here, like one that did not.
func (s *Source) splitLines(data []byte) []event.Event {
	events := make([]event.Event, 0, bytes.Count(data, []byte{'\n'})+1)
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		line := data
		if i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		switch {
		case len(line) > s.cfg.MaxLineBytes:
			s.m.longLines.Inc()
			events = append(events, event.Event{Raw: line[:s.cfg.MaxLineBytes], Size: len(line), Flags: event.Truncated})
		case len(line) > 0:
			events = append(events, event.Event{Raw: line, Size: len(line)})
		}
	}
	s.m.linesRead.Add(float64(len(events)))
	return events
}

// send tracks the position after consumed and hands the batch out. A loss
// waiting for this file's first data goes first.
func (s *Source) send(ctx context.Context, out chan<- *event.Batch, events []event.Event, consumed []byte, release func()) error {
	s.noteTail(consumed)
	pos := s.position()
	if s.pendingLoss != nil && pos.File.Len > 0 {
		l := s.pendingLoss
		s.pendingLoss = nil
		l.ResumedAt = &pos.File
		events = append([]event.Event{s.lossEvent(l)}, events...)
	}
	ack := s.tracker.Track(tracked{pos: pos, read: time.Now().UnixNano()})
	var b *event.Batch
	b = event.NewBatch(s.name, events, func() {
		s.m.eventsAcked.Add(float64(len(b.Events)))
		ack()
		s.commitMoved()
		if release != nil {
			release()
		}
	})
	select {
	case out <- b:
		return nil
	case <-ctx.Done():
		// Never acknowledged, so never committed: re-read after restart.
		return ctx.Err()
	}
}

// noteTail remembers the last tailSize bytes consumed, for the checkpoint's
// check that a resumed file is still the same.
func (s *Source) noteTail(consumed []byte) {
	if len(consumed) >= tailSize {
		s.tail = append(s.tail[:0], consumed[len(consumed)-tailSize:]...)
		return
	}
	s.tail = append(s.tail, consumed...)
	if len(s.tail) > tailSize {
		s.tail = append(s.tail[:0], s.tail[len(s.tail)-tailSize:]...)
	}
}

// position is the current file at s.bufStart (everything before it emitted).
func (s *Source) position() Position {
	s.cur.refreshFingerprint()
	size, err := s.cur.size()
	if err != nil {
		size = s.bufStart
	}
	return Position{
		File:     s.cur.ref,
		Offset:   s.bufStart,
		TailLen:  len(s.tail),
		TailSum:  checksum(s.tail),
		SizeSeen: size,
		Rotated:  s.cur.rotated,
	}
}

// longLine is a line longer than the cap: its first MaxLineBytes are kept,
// the rest is counted and skipped.
type longLine struct {
	head    []byte
	size    int
	scratch []byte
}

// growOrTruncate handles one line filling the whole working buffer.
func (s *Source) growOrTruncate(ctx context.Context) error {
	limit := s.cfg.MaxLineBytes + 1 // room for the newline
	if cap(s.buf) < limit {
		old := s.buf
		if err := s.takeBuffer(ctx, min(2*cap(old), limit)); err != nil {
			s.buf = old
			return err
		}
		s.buf = append(s.buf, old...)
		s.releaseBuffer(old)
		return nil
	}
	s.m.longLines.Inc()
	s.log.Warn("line longer than max_line_bytes, shipping it truncated", "offset", s.bufStart, "max_line_bytes", s.cfg.MaxLineBytes)
	s.long = &longLine{head: s.buf, size: len(s.buf), scratch: make([]byte, 64<<10)}
	s.noteTail(s.buf)
	s.buf = nil
	return nil
}

// skipLong consumes the rest of an over-long line and emits it truncated.
func (s *Source) skipLong(ctx context.Context, out chan<- *event.Batch) (bool, error) {
	l := s.long
	n, err := s.cur.Read(l.scratch)
	if n == 0 {
		return false, err
	}
	s.m.bytesRead.Add(float64(n))
	chunk := l.scratch[:n]
	i := bytes.IndexByte(chunk, '\n')
	if i < 0 {
		l.size += n
		s.noteTail(chunk)
		return true, nil
	}
	l.size += i
	s.noteTail(chunk[:i+1])
	if err := s.emitLong(ctx, out, 1); err != nil {
		return true, err
	}
	if err := s.takeBufferWith(ctx, chunk[i+1:]); err != nil {
		return true, err
	}
	if j := bytes.LastIndexByte(s.buf, '\n'); j >= 0 {
		s.lineEnd = j + 1
	}
	s.scanned = len(s.buf)
	return true, nil
}

// emitLong sends the truncated long line; newline is 1 when it ended with
// one (0 for a finished file's unterminated last line).
func (s *Source) emitLong(ctx context.Context, out chan<- *event.Batch, newline int64) error {
	l := s.long
	s.long = nil
	head := l.head[:s.cfg.MaxLineBytes]
	ev := []event.Event{{Raw: head, Size: l.size, Flags: event.Truncated}}
	s.m.linesRead.Inc()
	s.bufStart += int64(l.size) + newline
	s.lineEnd, s.scanned = 0, 0
	// The tail was noted while skipping, so nothing is passed as consumed.
	return s.send(ctx, out, ev, nil, func() { s.releaseBuffer(l.head) })
}

// wait blocks until the directory changes, a poll interval passes, or ctx is done.
func (s *Source) wait(ctx context.Context) error {
	s.waits.Add(1)
	s.lagSeconds(time.Now()) // notes since when unread data waits, between scrapes
	t := time.NewTimer(s.cfg.PollInterval)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return nil
	case <-s.watch.wake:
	case <-t.C:
	}
	return nil
}

// reportErr logs an error once until a different one occurs, so a missing
// file or a permission problem is loud but does not flood the log.
func (s *Source) reportErr(msg string, err error) {
	text := fmt.Sprintf("%s: %v", msg, err)
	s.setStatus(text)
	if text == s.lastErr {
		return
	}
	s.lastErr = text
	switch {
	case errors.Is(err, os.ErrNotExist):
		s.log.Warn(msg, "error", err)
	default:
		s.log.Error(msg, "error", err)
	}
}
