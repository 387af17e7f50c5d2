package delivery

import (
	"bytes"
	"math"

	"github.com/klauspost/compress/gzip"

	"github.com/siemship/siemship/internal/event"
)

// request is a sealed request: its events and its body exactly as sent.
// Retries resend the same body; only splitting builds new ones.
type request struct {
	b    Body
	body *bytes.Buffer
	// resend: the events were sent before, in the request this one was
	// split from.
	resend bool
}

// seal writes b's body, gzipped when configured, into a pooled buffer.
func (s *Sender) seal(b Body, resend bool) *request {
	body := s.bodies.Get().(*bytes.Buffer)
	body.Reset()
	// Writes into a bytes.Buffer cannot fail, so neither can WriteBody or
	// the gzip writer on top of it.
	if s.cfg.Compression == CompressionGzip {
		zw := s.gzips.Get().(*gzip.Writer)
		zw.Reset(body)
		_ = b.WriteBody(zw)
		_ = zw.Close()
		s.gzips.Put(zw)
	} else {
		_ = b.WriteBody(body)
	}
	return &request{b: b, body: body, resend: resend}
}

// release returns r's buffers to the pools. r must not be used afterwards.
func (s *Sender) release(r *request) {
	s.bodies.Put(r.body)
	s.releaseBody(r.b)
}

func (s *Sender) releaseBody(b Body) {
	b.Reset()
	s.builders.Put(b)
}

// slice returns a body with events [lo, hi) of from.
func (s *Sender) slice(from Body, lo, hi int) Body {
	b := s.builders.Get().(Body)
	for i := lo; i < hi; i++ {
		ev, source := from.Event(i)
		b.Add(source, ev, math.MaxInt)
	}
	return b
}

// events returns b's events, for acknowledging or dead-lettering them.
func events(b Body) []*event.Event {
	out := make([]*event.Event, b.Len())
	for i := range out {
		out[i], _ = b.Event(i)
	}
	return out
}
