package logscale

import (
	"io"

	"github.com/siemship/siemship/internal/event"
	"github.com/siemship/siemship/internal/sinks/delivery"
)

var _ delivery.Body = (*builder)(nil)

// chunkSize is how much body the builder hands to the compressor per Write.
const chunkSize = 64 << 10

// builder collects the events of one request and writes its body. It keeps
// pointers to the events, not a copy of their bytes: the body is produced
// only while compressing, a chunk at a time, so the uncompressed request
// never sits in memory. Not safe for concurrent use.
type builder struct {
	enc    *encoder
	events []*event.Event
	gidx   []int32 // group of each event
	groups []group
	size   int // exact length of the uncompressed body
	last   int // group of the previous event: runs of one type are common
	spare  group
	// scratch holds a chunk of body while writing, or a flagged entry while
	// measuring it.
	scratch []byte
}

func newBuilder(enc *encoder) *builder {
	b := &builder{enc: enc}
	b.Reset()
	return b
}

// Reset empties the builder, keeping its buffers.
func (b *builder) Reset() {
	clear(b.events) // let acknowledged batches go
	b.events = b.events[:0]
	b.gidx = b.gidx[:0]
	b.groups = b.groups[:0]
	b.last = 0
	b.size = 0
	if !b.enc.hec {
		b.size = len("[]")
	}
}

// Len returns the number of events.
func (b *builder) Len() int { return len(b.events) }

// Size returns the exact length of the uncompressed body.
func (b *builder) Size() int { return b.size }

// Event returns the i-th event and its source.
func (b *builder) Event(i int) (*event.Event, string) {
	return b.events[i], b.groups[b.gidx[i]].source
}

// Add appends ev from source unless that would take a non-empty request
// over maxBytes of body; it reports whether it did.
func (b *builder) Add(source string, ev *event.Event, maxBytes int) bool {
	gi := b.lookup(source, ev.Type)
	var g *group
	delta := 0
	if gi < 0 {
		g = &b.spare
		b.enc.buildGroup(g, source, ev.Type)
		delta = b.enc.groupOverhead(g, len(b.groups) == 0)
	} else {
		g = &b.groups[gi]
		if !b.enc.hec {
			delta = len(",")
		}
	}
	delta += b.enc.entryLen(g, ev, &b.scratch)
	if len(b.events) > 0 && b.size+delta > maxBytes {
		return false
	}
	if gi < 0 {
		gi = b.commitSpare()
	}
	b.events = append(b.events, ev)
	b.gidx = append(b.gidx, int32(gi))
	b.size += delta
	b.last = gi
	return true
}

// lookup returns the index of the (source, typ) group, or -1.
func (b *builder) lookup(source, typ string) int {
	if b.last < len(b.groups) {
		if g := &b.groups[b.last]; g.typ == typ && g.source == source {
			return b.last
		}
	}
	for i := range b.groups {
		if g := &b.groups[i]; g.typ == typ && g.source == source {
			return i
		}
	}
	return -1
}

// commitSpare appends the spare group, reusing the buffer of a group slot
// from an earlier request when there is one.
func (b *builder) commitSpare() int {
	n := len(b.groups)
	if n < cap(b.groups) {
		b.groups = b.groups[:n+1]
		b.groups[n], b.spare = b.spare, group{head: b.groups[n].head[:0]}
	} else {
		b.groups = append(b.groups, b.spare)
		b.spare = group{}
	}
	return n
}

// WriteBody writes the body to w in chunks of about chunkSize. Structured
// events are grouped by (source, type); HEC lines keep arrival order.
func (b *builder) WriteBody(w io.Writer) error {
	buf := b.scratch[:0]
	var err error
	flush := func(force bool) {
		if err == nil && len(buf) > 0 && (force || len(buf) >= chunkSize) {
			_, err = w.Write(buf)
			buf = buf[:0]
		}
	}
	if b.enc.hec {
		for i, ev := range b.events {
			buf = b.enc.appendEntry(buf, &b.groups[b.gidx[i]], ev)
			flush(false)
		}
	} else {
		buf = append(buf, '[')
		for gi := range b.groups {
			g := &b.groups[gi]
			if gi > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, g.head...)
			first := true
			for i, ev := range b.events {
				if b.gidx[i] != int32(gi) {
					continue
				}
				if !first {
					buf = append(buf, ',')
				}
				first = false
				buf = b.enc.appendEntry(buf, g, ev)
				flush(false)
			}
			buf = append(buf, "]}"...)
		}
		buf = append(buf, ']')
	}
	flush(true)
	b.scratch = buf[:0]
	return err
}
