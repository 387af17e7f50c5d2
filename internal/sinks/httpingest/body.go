package httpingest

import (
	"io"
	"strconv"

	"github.com/siemship/siemship/internal/event"
	"github.com/siemship/siemship/internal/jsonstr"
	"github.com/siemship/siemship/internal/sinks/delivery"
)

var _ delivery.Body = (*ndjson)(nil)

// chunkSize is how much body is handed to the compressor per Write.
const chunkSize = 64 << 10

// ndjson is a request body of one event per line, each exactly as it left
// processing. An event that is not JSON (truncated, malformed) becomes an
// object that carries it as a string, so that every line stays one JSON
// object:
//
//	{"siemship":{"error":"truncated","original_bytes":2000000,"source":"tetragon"},"raw":"…"}
//
// It keeps pointers to the events, not their bytes; the body is produced
// only while compressing. Not safe for concurrent use.
type ndjson struct {
	events  []*event.Event
	sources []string
	size    int
	scratch []byte
}

func (b *ndjson) Len() int  { return len(b.events) }
func (b *ndjson) Size() int { return b.size }

func (b *ndjson) Event(i int) (*event.Event, string) { return b.events[i], b.sources[i] }

func (b *ndjson) Add(source string, ev *event.Event, maxBytes int) bool {
	n := len(ev.Raw) + 1
	if ev.Defect() != "" {
		b.scratch = appendWrapped(b.scratch[:0], source, ev)
		n = len(b.scratch)
	}
	if len(b.events) > 0 && b.size+n > maxBytes {
		return false
	}
	b.events = append(b.events, ev)
	b.sources = append(b.sources, source)
	b.size += n
	return true
}

func (b *ndjson) Reset() {
	clear(b.events) // let acknowledged batches go
	b.events, b.sources, b.size = b.events[:0], b.sources[:0], 0
}

func (b *ndjson) WriteBody(w io.Writer) error {
	buf := b.scratch[:0]
	for i, ev := range b.events {
		if ev.Defect() == "" {
			buf = append(buf, ev.Raw...)
			buf = append(buf, '\n')
		} else {
			buf = appendWrapped(buf, b.sources[i], ev)
		}
		if len(buf) >= chunkSize {
			if _, err := w.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	b.scratch = buf[:0]
	if len(buf) == 0 {
		return nil
	}
	_, err := w.Write(buf)
	return err
}

// appendWrapped appends the line of an event that is not JSON.
func appendWrapped(dst []byte, source string, ev *event.Event) []byte {
	dst = append(dst, `{"siemship":{"error":"`...)
	dst = append(dst, ev.Defect()...)
	dst = append(dst, `","original_bytes":`...)
	dst = strconv.AppendInt(dst, int64(ev.Size), 10)
	dst = append(dst, `,"source":`...)
	dst = jsonstr.Append(dst, source)
	dst = append(dst, `},"raw":`...)
	dst = jsonstr.Append(dst, ev.Raw)
	return append(dst, "}\n"...)
}
