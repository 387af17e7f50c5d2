package logscale

import (
	"bytes"
	"math"

	"github.com/klauspost/compress/gzip"
)

// request is a sealed request: its events and its body exactly as sent.
// Retries resend the same body; only splitting builds new ones.
type request struct {
	b    *builder
	body *bytes.Buffer
	// resend: the events were sent before, in the request this one was
	// split from.
	resend bool
}

// seal writes b's body, gzipped when configured, into a pooled buffer.
func (s *Sink) seal(b *builder, resend bool) *request {
	body := s.bodies.Get().(*bytes.Buffer)
	body.Reset()
	// Writes into a bytes.Buffer cannot fail, so neither can writeBody or
	// the gzip writer on top of it.
	if s.cfg.Compression == CompressionGzip {
		zw := s.gzips.Get().(*gzip.Writer)
		zw.Reset(body)
		_ = b.writeBody(zw)
		_ = zw.Close()
		s.gzips.Put(zw)
	} else {
		_ = b.writeBody(body)
	}
	return &request{b: b, body: body, resend: resend}
}

// release returns r's buffers to the pools. r must not be used afterwards.
func (s *Sink) release(r *request) {
	s.bodies.Put(r.body)
	s.releaseBuilder(r.b)
}

func (s *Sink) releaseBuilder(b *builder) {
	b.reset()
	s.builders.Put(b)
}

// slice returns a builder with events [lo, hi) of from.
func (s *Sink) slice(from *builder, lo, hi int) *builder {
	b := s.builders.Get().(*builder)
	for i := lo; i < hi; i++ {
		b.add(from.groups[from.gidx[i]].source, from.events[i], math.MaxInt)
	}
	return b
}
