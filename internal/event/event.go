// Package event defines what flows from sources through processing to sinks,
// and how delivery is acknowledged back to the source that produced it.
//
// A source hands out Batches. Processing fills in the parsed fields of each
// Event. Every sink that receives a Batch calls Delivered once for each of its
// events, after the SIEM accepted the event or after it was written to the
// dead-letter file. When every sink has delivered every event, the batch's
// done function runs, and only then may the source commit the batch's position.
package event

import (
	"sync/atomic"
)

// Flags describe how an event differs from a well-formed source line.
type Flags uint8

const (
	// Truncated: the line was longer than the reader's cap; Raw holds its
	// first bytes only and is not valid JSON.
	Truncated Flags = 1 << iota
	// Malformed: the line is not a JSON object; Raw holds it as read.
	Malformed
	// TimeGuessed: the event carried no usable time; Time was taken from the
	// previous event of the same source.
	TimeGuessed
)

// Event is one record, as read and as shipped.
type Event struct {
	// Raw is the record's bytes (one JSON object for a well-formed Tetragon
	// line, without the trailing newline). It may point into a buffer owned
	// by the Batch: nobody may keep it after the batch is done.
	Raw []byte
	// Time is the event time in Unix milliseconds, taken from the event.
	Time int64
	// Type is the event kind, e.g. "process_exec"; low cardinality, used as a tag.
	Type string
	// Size is the length of the record as read (larger than len(Raw) when Truncated).
	Size  int
	Flags Flags

	batch *Batch
}

// Batch is a group of events from one source position range. It is not safe
// for concurrent modification of Events; Delivered may be called concurrently.
type Batch struct {
	// Source names the producer, e.g. "tetragon"; low cardinality, used as a tag.
	Source string
	Events []Event

	pending atomic.Int64
	done    func()
}

// NewBatch wraps events. done runs once, when every sink has delivered every
// event (see Expect); it must be cheap and must not block.
func NewBatch(source string, events []Event, done func()) *Batch {
	b := &Batch{Source: source, Events: events, done: done}
	for i := range b.Events {
		b.Events[i].batch = b
	}
	return b
}

// Expect sets how many sinks will deliver every event of the batch. It must
// be called once, before the batch is handed to any sink. A batch without
// events is done at once.
func (b *Batch) Expect(sinks int) { b.ExpectDeliveries(len(b.Events) * sinks) }

// ExpectDeliveries sets how many event deliveries, summed over all sinks,
// complete the batch: with route filters a sink may get only some events
// (see View). It must be called once, before the batch is handed to any
// sink. Zero means done at once.
func (b *Batch) ExpectDeliveries(n int) {
	if n == 0 {
		b.finish()
		return
	}
	b.pending.Store(int64(n))
}

// View returns a batch with copies of the events at idx (in b's order)
// that acknowledge to b: delivering them counts toward b's completion. The
// view has no completion of its own; it shares the events' bytes with b.
func (b *Batch) View(idx []int) *Batch {
	v := &Batch{Source: b.Source, Events: make([]Event, len(idx))}
	for i, j := range idx {
		v.Events[i] = b.Events[j]
	}
	return v
}

// Delivered records that one sink delivered n of the batch's events.
func (b *Batch) Delivered(n int) {
	left := b.pending.Add(-int64(n))
	switch {
	case left == 0:
		b.finish()
	case left < 0:
		panic("event: batch delivered more often than expected")
	}
}

func (b *Batch) finish() {
	if b.done != nil {
		b.done()
	}
}

// Batch returns the batch the event belongs to (nil for an event built
// outside NewBatch, as in tests).
func (e *Event) Batch() *Batch { return e.batch }

// Deliver acknowledges a run of events for one sink, grouping consecutive
// events of the same batch so that each batch is touched once per run.
func Deliver(events []*Event) {
	var cur *Batch
	n := 0
	for _, e := range events {
		if e.batch != cur {
			if cur != nil {
				cur.Delivered(n)
			}
			cur, n = e.batch, 0
		}
		n++
	}
	if cur != nil {
		cur.Delivered(n)
	}
}

// Defect names why Raw is not JSON, "truncated" or "malformed", or "" when
// it is a well-formed record.
func (e *Event) Defect() string {
	switch {
	case e.Flags&Truncated != 0:
		return "truncated"
	case e.Flags&Malformed != 0:
		return "malformed"
	}
	return ""
}
