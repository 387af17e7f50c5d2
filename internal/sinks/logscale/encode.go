package logscale

import (
	"maps"
	"slices"
	"strconv"

	"github.com/siemship/siemship/internal/event"
	"github.com/siemship/siemship/internal/jsonstr"
)

// encoder holds what every request body of one sink shares: the format and
// the static tags, escaped once. Safe for concurrent use (read-only).
type encoder struct {
	hec bool
	// static is `,"k":"v"` per static tag (structured tags) or `,"#k":"v"`
	// (HEC fields), sorted by key.
	static []byte
}

func newEncoder(format string, tags map[string]string) *encoder {
	e := &encoder{hec: format == FormatHEC}
	prefix := ""
	if e.hec {
		prefix = "#"
	}
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		e.static = append(e.static, ',')
		e.static = jsonstr.Append(e.static, prefix+k)
		e.static = append(e.static, ':')
		e.static = jsonstr.Append(e.static, tags[k])
	}
	return e
}

// group is one (source, event type) pair of a request with its pre-built
// bytes: for structured the group's opening `{"tags":{...},"events":[`, for
// HEC the tail of every event line from `,"source":` to the newline.
type group struct {
	source, typ string
	head        []byte
}

func (e *encoder) buildGroup(g *group, source, typ string) {
	g.source, g.typ = source, typ
	h := g.head[:0]
	if e.hec {
		h = append(h, `,"source":`...)
		h = jsonstr.Append(h, source)
		h = append(h, `,"sourcetype":`...)
		h = jsonstr.Append(h, source)
		h = append(h, `,"fields":{"#source":`...)
		h = jsonstr.Append(h, source)
		h = append(h, `,"#event_type":`...)
		h = jsonstr.Append(h, typ)
		h = append(h, e.static...)
		h = append(h, "}}\n"...)
	} else {
		h = append(h, `{"tags":{"source":`...)
		h = jsonstr.Append(h, source)
		h = append(h, `,"event_type":`...)
		h = jsonstr.Append(h, typ)
		h = append(h, e.static...)
		h = append(h, `},"events":[`...)
	}
	g.head = h
}

// groupOverhead is what a group adds to a structured body besides its
// events: its head, the closing `]}` and a separating comma.
func (e *encoder) groupOverhead(g *group, first bool) int {
	if e.hec {
		return 0
	}
	n := len(g.head) + len("]}")
	if !first {
		n++
	}
	return n
}

// Fixed parts of an event entry.
const (
	sTimestamp  = `{"timestamp":`
	sAttributes = `,"attributes":`
	sRawstring  = `,"rawstring":`
	hTime       = `{"time":`
	hEvent      = `,"event":`
)

// entryLen returns len(appendEntry(nil, g, ev)). Well-formed events are
// counted without copying; flagged ones (rare) are built in scratch.
func (e *encoder) entryLen(g *group, ev *event.Event, scratch *[]byte) int {
	if ev.Defect() != "" {
		*scratch = e.appendEntry((*scratch)[:0], g, ev)
		return len(*scratch)
	}
	if e.hec {
		return len(hTime) + secondsLen(ev.Time) + len(hEvent) + len(ev.Raw) + len(g.head)
	}
	return len(sTimestamp) + intLen(ev.Time) + len(sAttributes) + len(ev.Raw) + len("}")
}

// appendEntry appends one event: a structured event object, or a whole HEC
// line. The raw bytes are copied verbatim; only flagged events (not valid
// JSON) are escaped into a string.
func (e *encoder) appendEntry(dst []byte, g *group, ev *event.Event) []byte {
	flag := ev.Defect()
	if e.hec {
		dst = append(dst, hTime...)
		dst = appendSeconds(dst, ev.Time)
		dst = append(dst, hEvent...)
		if flag == "" {
			dst = append(dst, ev.Raw...)
			return append(dst, g.head...)
		}
		dst = jsonstr.Append(dst, ev.Raw)
		dst = append(dst, g.head[:len(g.head)-len("}}\n")]...)
		dst = append(dst, `,"siemship_error":"`...)
		dst = append(dst, flag...)
		dst = append(dst, `","siemship_original_bytes":"`...)
		dst = strconv.AppendInt(dst, int64(ev.Size), 10)
		return append(dst, "\"}}\n"...)
	}
	dst = append(dst, sTimestamp...)
	dst = strconv.AppendInt(dst, ev.Time, 10)
	if flag == "" {
		dst = append(dst, sAttributes...)
		dst = append(dst, ev.Raw...)
		return append(dst, '}')
	}
	dst = append(dst, sRawstring...)
	dst = jsonstr.Append(dst, ev.Raw)
	dst = append(dst, `,"attributes":{"siemship":{"error":"`...)
	dst = append(dst, flag...)
	dst = append(dst, `","original_bytes":`...)
	dst = strconv.AppendInt(dst, int64(ev.Size), 10)
	return append(dst, "}}}"...)
}

// appendSeconds appends Unix milliseconds as seconds with a three-digit
// fraction, e.g. 1696629837.700.
func appendSeconds(dst []byte, ms int64) []byte {
	if ms < 0 {
		dst = append(dst, '-')
		ms = -ms
	}
	dst = strconv.AppendInt(dst, ms/1000, 10)
	frac := ms % 1000
	return append(dst, '.', byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10))
}

func secondsLen(ms int64) int {
	n := 0
	if ms < 0 {
		n, ms = 1, -ms
	}
	return n + intLen(ms/1000) + len(".000")
}

// intLen returns len(strconv.AppendInt(nil, v, 10)).
func intLen(v int64) int {
	n := 1
	if v < 0 {
		n++
		if v == -v { // math.MinInt64
			return 20
		}
		v = -v
	}
	for v >= 10 {
		v /= 10
		n++
	}
	return n
}
