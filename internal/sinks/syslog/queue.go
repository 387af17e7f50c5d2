package syslog

import (
	"time"

	"github.com/siemship/siemship/internal/event"
)

// entry is one message waiting for its acknowledgement.
type entry struct {
	ev     *event.Event
	off, n int       // the message's bytes in queue.arena
	end    int64     // ack peer: wire offset the peer must acknowledge
	txnr   int       // RELP: transaction number on the current connection
	sentAt time.Time // when written on the current connection (zero: not yet)
	acked  bool      // RELP: answered 200, waiting for the entries before it
}

// queue holds the messages of the batches taken from the input, in order,
// until they are acknowledged: ents[head:sent] are written on the current
// connection, ents[sent:] not yet. The bytes live in one arena, so a run of
// messages is written with one call. Used by the Run goroutine only.
type queue struct {
	arena []byte
	ents  []entry
	head  int
	sent  int
	done  []*event.Event // scratch for event.Deliver
}

func (q *queue) len() int    { return len(q.ents) - q.head }
func (q *queue) unsent() int { return len(q.ents) - q.sent }
func (q *queue) inflight() int {
	return q.sent - q.head
}

// bytes returns the bytes held.
func (q *queue) bytes() int {
	if q.len() == 0 {
		return 0
	}
	return len(q.arena) - q.ents[q.head].off
}

// msg returns the bytes of entry i.
func (q *queue) msg(i int) []byte { e := &q.ents[i]; return q.arena[e.off : e.off+e.n] }

// rewind marks every held message unsent, for a new connection, and
// returns how many had been written on the old one.
func (q *queue) rewind() int {
	n := q.sent - q.head
	for i := q.head; i < len(q.ents); i++ {
		q.ents[i].sentAt, q.ents[i].acked = time.Time{}, false
	}
	q.sent = q.head
	return n
}

// pop acknowledges the first n entries: event.Deliver, then forget them
// (a sink keeps nothing of an event after acknowledging it).
func (q *queue) pop(n int) {
	if n == 0 {
		return
	}
	q.done = q.done[:0]
	for i := q.head; i < q.head+n; i++ {
		q.done = append(q.done, q.ents[i].ev)
		q.ents[i] = entry{}
	}
	q.head += n
	event.Deliver(q.done)
	clear(q.done)
	q.compact()
}

// compact drops acknowledged entries and bytes once they dominate, so the
// queue's memory stays bounded by what it holds.
func (q *queue) compact() {
	switch {
	case q.head == len(q.ents):
		q.arena, q.ents, q.head, q.sent = q.arena[:0], q.ents[:0], 0, 0
	case q.head >= 1024 && q.head*2 >= len(q.ents):
		base := q.ents[q.head].off
		n := copy(q.ents, q.ents[q.head:])
		clear(q.ents[n:])
		q.ents = q.ents[:n]
		for i := range q.ents {
			q.ents[i].off -= base
		}
		q.arena = q.arena[:copy(q.arena, q.arena[base:])]
		q.sent -= q.head
		q.head = 0
	}
}
