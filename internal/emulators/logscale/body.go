package logscale

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/klauspost/compress/gzip"
)

// statusError is a request failure answered with a status and a short text.
type statusError struct {
	status int
	reason string
}

func (e *statusError) Error() string { return e.reason }

func badRequest(format string, args ...any) error {
	return &statusError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

// body is a decoded request body in a pooled buffer.
type body struct {
	buf        *bytes.Buffer
	compressed int64 // bytes read off the wire
}

func (b *body) bytes() []byte { return b.buf.Bytes() }

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

var gzipPool sync.Pool // *gzip.Reader

// release returns the buffer to the pool. Nothing may use b afterwards.
func (b *body) release() {
	if b.buf != nil && b.buf.Cap() <= 64<<20 {
		b.buf.Reset()
		bufPool.Put(b.buf)
	}
	b.buf = nil
}

// countingReader counts bytes read through it and remembers a read error
// other than EOF, which means the client went away, not a corrupt body.
type countingReader struct {
	r   io.Reader
	n   int64
	err error
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err != nil && err != io.EOF {
		c.err = err
	}
	return n, err
}

// readBody reads and, for Content-Encoding gzip, decompresses r's body. It
// stops as soon as the decoded size passes limit (413), so memory stays
// bounded by the limit whatever the compression ratio. Corrupt gzip is 400.
func readBody(r *http.Request, limit int64) (*body, error) {
	wire := &countingReader{r: r.Body}
	b := &body{buf: bufPool.Get().(*bytes.Buffer)}
	var src io.Reader = wire
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		zr, err := gzipReader(wire)
		if err != nil {
			b.compressed = wire.n
			b.release()
			if wire.err != nil {
				return b, fmt.Errorf("read body: %w", wire.err)
			}
			return b, badRequest("corrupt gzip body: %v", err)
		}
		defer gzipPool.Put(zr)
		src = zr
	default:
		b.release()
		return b, &statusError{http.StatusUnsupportedMediaType, "unsupported Content-Encoding " + enc}
	}
	if r.ContentLength > 0 && r.ContentLength <= limit {
		b.buf.Grow(int(r.ContentLength))
	}
	n, err := b.buf.ReadFrom(io.LimitReader(src, limit+1))
	b.compressed = wire.n
	switch {
	case n > limit:
		b.release()
		return b, &statusError{http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes after decompression", limit)}
	case wire.err != nil:
		b.release()
		return b, fmt.Errorf("read body: %w", wire.err)
	case err != nil:
		b.release()
		return b, badRequest("corrupt gzip body: %v", err)
	}
	return b, nil
}

func gzipReader(r io.Reader) (*gzip.Reader, error) {
	if zr, ok := gzipPool.Get().(*gzip.Reader); ok {
		if err := zr.Reset(r); err != nil {
			gzipPool.Put(zr)
			return nil, err
		}
		return zr, nil
	}
	return gzip.NewReader(r)
}

// drain reads and discards up to limit bytes of a body we answer without
// decoding, so the client can read the answer instead of failing to write.
func drain(r *http.Request, limit int64) int64 {
	n, _ := io.Copy(io.Discard, io.LimitReader(r.Body, limit))
	return n
}

// isClientGone reports whether err came from the client going away
// mid-request rather than from a malformed body.
func isClientGone(err error) bool {
	var se *statusError
	return err != nil && !errors.As(err, &se)
}
