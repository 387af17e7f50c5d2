package logpush

import (
	"bytes"
	"context"
	"errors"
	"io"

	"golang.org/x/sync/semaphore"

	"github.com/siemship/siemship/internal/event"
)

// splitter is the second pass over a checked body: it decodes it into
// buffers granted from the memory budget and cuts each into records, one
// event per non-blank line. A buffer ends at its last complete line; the
// partial line after it starts the next buffer. Not safe for concurrent use.
type splitter struct {
	src       io.Reader // decompressed records
	left      int64     // decompressed bytes not yet read from src (counted by the first pass)
	batch     int       // buffer size; larger than maxRecord
	maxRecord int
	budget    *semaphore.Weighted
	reserved  int64 // a grant taken before the body was read, used by the first buffer

	carry []byte // the partial line after the last complete one
}

// chunk is one buffer of records, holding cost bytes of the budget until
// its batch is done.
type chunk struct {
	buf    []byte
	events []event.Event
	cost   int64
}

// errSplitDone ends the records of a body.
var errSplitDone = errors.New("no more records")

// next returns the next chunk, or errSplitDone after the last. The first
// buffer uses the reserved grant; later ones wait for the budget, which the
// chunks already emitted free as they are delivered, until ctx ends.
func (s *splitter) next(ctx context.Context) (*chunk, error) {
	for {
		if s.left <= 0 && len(s.carry) == 0 {
			s.releaseReserved()
			return nil, errSplitDone
		}
		size := int(min(int64(s.batch), s.left+int64(len(s.carry))))
		if err := s.grant(ctx, int64(size)); err != nil {
			return nil, err
		}
		c := &chunk{buf: make([]byte, size), cost: int64(size)}
		n := copy(c.buf, s.carry)
		s.carry = nil
		m, err := s.read(c.buf[n:])
		if err != nil {
			s.budget.Release(c.cost)
			return nil, err
		}
		buf := c.buf[:n+m]
		end := len(buf)
		if s.left > 0 {
			end = bytes.LastIndexByte(buf, '\n') + 1
		}
		if end == 0 {
			// A full buffer without a newline: the record is longer than a
			// buffer, so longer than max_record_bytes.
			if err := s.cut(c, buf); err != nil {
				s.budget.Release(c.cost)
				return nil, err
			}
			return c, nil
		}
		c.events = splitLines(c.events, buf[:end], s.maxRecord)
		if end < len(buf) {
			s.carry = append([]byte(nil), buf[end:]...)
		}
		if len(c.events) == 0 {
			s.budget.Release(c.cost) // blank lines only
			continue
		}
		return c, nil
	}
}

// read fills p from src, as far as the first pass counted.
func (s *splitter) read(p []byte) (int, error) {
	p = p[:min(int64(len(p)), max(s.left, 0))]
	n, err := io.ReadFull(s.src, p)
	s.left -= int64(n)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		// Fewer bytes than the first pass counted: the stored body cannot
		// change in between, so this is unreachable; end cleanly anyway.
		s.left = 0
		err = nil
	}
	return n, err
}

// cut keeps the head of an over-long record (buf holds its first bytes)
// and reads past its end, using the rest of the buffer as scratch space,
// so that a record of any length costs one buffer.
func (s *splitter) cut(c *chunk, buf []byte) error {
	size := len(buf)
	last := buf[len(buf)-1] // the byte before the terminator, to drop a CR of CRLF
	scratch := c.buf[s.maxRecord:]
	for s.left > 0 {
		m, err := s.read(scratch)
		if err != nil {
			return err
		}
		if i := bytes.IndexByte(scratch[:m], '\n'); i >= 0 {
			size += i
			if i > 0 {
				last = scratch[i-1]
			}
			s.carry = append([]byte(nil), scratch[i+1:m]...)
			break
		}
		if m > 0 {
			last = scratch[m-1]
		}
		size += m
	}
	if last == '\r' {
		size--
	}
	c.events = append(c.events, event.Event{Raw: c.buf[:s.maxRecord], Size: size, Flags: event.Truncated})
	return nil
}

func (s *splitter) grant(ctx context.Context, n int64) error {
	if r := s.reserved; r > 0 {
		s.reserved = 0
		if r >= n {
			s.budget.Release(r - n)
			return nil
		}
		s.budget.Release(r)
	}
	return s.budget.Acquire(ctx, n)
}

// releaseReserved returns a reservation that was never used. Idempotent.
func (s *splitter) releaseReserved() {
	if s.reserved > 0 {
		s.budget.Release(s.reserved)
		s.reserved = 0
	}
}

// splitLines appends one event per non-blank line of data (which ends with
// a newline, or is the body's last line); lines over maxRecord are cut.
func splitLines(events []event.Event, data []byte, maxRecord int) []event.Event {
	if events == nil {
		events = make([]event.Event, 0, bytes.Count(data, []byte{'\n'})+1)
	}
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		switch {
		case isBlank(line):
		case len(line) > maxRecord:
			events = append(events, event.Event{Raw: line[:maxRecord], Size: len(line), Flags: event.Truncated})
		default:
			events = append(events, event.Event{Raw: line, Size: len(line)})
		}
	}
	return events
}

func isBlank(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' {
			return false
		}
	}
	return true
}
