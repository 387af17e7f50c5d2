package spool

import (
	"encoding/binary"
	"errors"

	"github.com/siemship/siemship/internal/event"
)

// A record is one batch (or a chunk of a large one), encoded as
//
//	version byte (1)
//	uvarint spooled-at (Unix ms) · string source · uvarint n
//	n × (varint time · uvarint size · flags byte · string type · bytes raw)
//
// with strings and bytes as uvarint length + content. wlog adds the CRC32
// and framing; this format only has to round-trip an event.Event.
const recordVersion = 1

// appendRecord encodes events as one record.
func appendRecord(buf []byte, source string, spooledAt int64, events []*event.Event) []byte {
	buf = append(buf, recordVersion)
	buf = binary.AppendUvarint(buf, uint64(spooledAt))
	buf = appendString(buf, source)
	buf = binary.AppendUvarint(buf, uint64(len(events)))
	for _, e := range events {
		buf = binary.AppendVarint(buf, e.Time)
		buf = binary.AppendUvarint(buf, uint64(e.Size))
		buf = append(buf, byte(e.Flags))
		buf = appendString(buf, e.Type)
		buf = binary.AppendUvarint(buf, uint64(len(e.Raw)))
		buf = append(buf, e.Raw...)
	}
	return buf
}

func appendString(buf []byte, s string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

var errBadRecord = errors.New("spool record does not decode")

// header is what a record says about itself before its events.
type header struct {
	spooledAt int64
	source    string
	events    int
	rest      []byte
}

func decodeHeader(rec []byte) (header, error) {
	var h header
	if len(rec) == 0 || rec[0] != recordVersion {
		return h, errBadRecord
	}
	d := decoder{b: rec[1:]}
	h.spooledAt = int64(d.uvarint())
	h.source = string(d.bytes())
	n := d.uvarint()
	if d.bad || n > uint64(len(d.b)) { // every event takes at least one byte
		return h, errBadRecord
	}
	h.events, h.rest = int(n), d.b
	return h, nil
}

// decodeEvents decodes the events after the header. Raw points into rec,
// which the caller must not reuse while the events live. types interns
// event types across records.
func decodeEvents(h header, types map[string]string) ([]event.Event, error) {
	d := decoder{b: h.rest}
	evs := make([]event.Event, h.events)
	for i := range evs {
		e := &evs[i]
		e.Time = d.varint()
		e.Size = int(d.uvarint())
		e.Flags = event.Flags(d.byte())
		typ := d.bytes()
		if t, ok := types[string(typ)]; ok {
			e.Type = t
		} else {
			e.Type = string(typ)
			if len(types) < 256 {
				types[e.Type] = e.Type
			}
		}
		e.Raw = d.bytes()
		if d.bad {
			return nil, errBadRecord
		}
	}
	if len(d.b) != 0 {
		return nil, errBadRecord
	}
	return evs, nil
}

// decoder reads varints and length-prefixed bytes; bad sticks once set.
type decoder struct {
	b   []byte
	bad bool
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.bad = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.bad = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.bad = true
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.bad || n > uint64(len(d.b)) {
		d.bad = true
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}
