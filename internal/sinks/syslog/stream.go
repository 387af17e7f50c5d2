package syslog

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/siemship/siemship/internal/event"
)

// peerPoll is how often the send queue is read while messages wait for the
// peer's acknowledgement and nothing else happens.
const peerPoll = 2 * time.Millisecond

// runStream is Run for tcp and tls: one goroutine that builds, writes and
// acknowledges; the connection's reader only notices the receiver leaving.
func (s *Sink) runStream(ctx context.Context, in <-chan *event.Batch) error {
	var c *conn
	defer func() {
		if c != nil {
			c.close()
			s.m.connections.Set(0)
		}
	}()
	q := &s.q
	inOpen, everConnected := true, false
	var poll *time.Timer
	stalledSince, lastQueue := time.Time{}, -1
	for {
		if !inOpen && q.len() == 0 {
			return ctx.Err()
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if c == nil {
			var err error
			if c, err = s.connect(ctx, everConnected); err != nil {
				return err
			}
			everConnected = true
			c.watch(discardReads)
			stalledSince, lastQueue = time.Time{}, -1
		}
		if q.unsent() > 0 {
			if err := s.writeStream(c); err != nil {
				s.drop(c, "write", err)
				c = nil
				continue
			}
		}
		if c.isDead() {
			s.drop(c, "closed", c.deadEr)
			c = nil
			continue
		}
		outq, err := s.peerAcks(c)
		if err != nil {
			s.drop(c, "ack", err)
			c = nil
			continue
		}
		// A peer that stops acknowledging (a host gone without a reset)
		// would hold the window for ever: past ack_timeout without
		// progress the connection counts as dead and the data is resent.
		if s.peer && q.len() > 0 {
			if outq != lastQueue || stalledSince.IsZero() {
				stalledSince, lastQueue = time.Now(), outq
			} else if time.Since(stalledSince) > s.cfg.AckTimeout {
				s.drop(c, "ack", fmt.Errorf("the peer acknowledged nothing for %s (%d bytes waiting)", s.cfg.AckTimeout, outq))
				c = nil
				continue
			}
		}

		if !inOpen && q.len() == 0 {
			return ctx.Err() // everything written (and acknowledged) after the input closed
		}
		var inC <-chan *event.Batch
		if inOpen && (!s.peer || q.bytes() < int(s.cfg.PeerWindowBytes)) {
			inC = in
		}
		var pollC <-chan time.Time
		if s.peer && q.len() > 0 {
			if poll == nil {
				poll = time.NewTimer(peerPoll)
				defer poll.Stop()
			} else {
				poll.Reset(peerPoll)
			}
			pollC = poll.C
		}
		select {
		case b, ok := <-inC:
			if !ok {
				inOpen = false
				continue
			}
			s.enqueue(b)
			// Take what else is ready, to write it with fewer calls.
			for more := true; more && q.bytes() < writeChunk; {
				select {
				case b, ok := <-in:
					if !ok {
						inOpen, more = false, false
						break
					}
					s.enqueue(b)
				default:
					more = false
				}
			}
		case <-pollC:
		case <-c.dead:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// discardReads is the reader of a plain syslog connection: receivers send
// nothing, so any read ending means the connection is gone.
func discardReads(c *conn) error {
	_, err := io.Copy(io.Discard, c.c)
	if err == nil {
		return errClosed
	}
	return fmt.Errorf("read: %w", err)
}

// writeStream writes every unsent message, in chunks. With ack: written a
// chunk's messages are delivered once the write call succeeded; with ack:
// peer they wait for peerAcks.
func (s *Sink) writeStream(c *conn) error {
	q := &s.q
	for q.unsent() > 0 {
		first, last := q.sent, q.sent
		start := q.ents[first].off
		for last < len(q.ents) && q.ents[last].off+q.ents[last].n-start <= writeChunk {
			last++
		}
		if last == first {
			last++ // one message larger than a chunk
		}
		end := q.ents[last-1].off + q.ents[last-1].n
		wireStart := c.wire
		n, err := c.write(q.arena[start:end], s.cfg.WriteTimeout)
		s.m.bytesSent.Add(float64(n))
		if err != nil {
			// The connection broke during the call: the bytes the kernel
			// took are as good as lost with it, so none of the chunk counts
			// as written; all of it goes again on the next connection
			// (duplicates rather than loss).
			return fmt.Errorf("write to %s: %w", s.cfg.Address, err)
		}
		now := time.Now()
		for i := first; i < last; i++ {
			e := &q.ents[i]
			if c.isTLS {
				e.end = c.wire // TLS records: the whole chunk's bytes
			} else {
				e.end = wireStart + int64(e.off+e.n-start)
			}
			e.sentAt = now
		}
		s.m.messagesSent.Add(float64(last - first))
		q.sent = last
		if !s.peer {
			s.delivered(last - first)
		}
		s.m.unacked.Set(float64(q.inflight()))
	}
	return nil
}

// peerAcks reads the send queue; with ack: peer it delivers the messages
// whose bytes the peer acknowledged. It returns the send queue's length.
func (s *Sink) peerAcks(c *conn) (int, error) {
	if !peerAckSupported {
		return 0, nil
	}
	outq, err := sendQueue(c.rc)
	if err != nil {
		if s.peer {
			return 0, err
		}
		return 0, nil // only a metric without ack: peer
	}
	s.m.unackedBytes.Set(float64(outq))
	if !s.peer {
		return outq, nil
	}
	q := &s.q
	acked := c.wire - int64(outq)
	n := 0
	for i := q.head; i < q.sent && q.ents[i].end <= acked; i++ {
		n++
	}
	s.delivered(n)
	s.m.unacked.Set(float64(q.inflight()))
	return outq, nil
}
