package logpush

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/klauspost/compress/gzip"
	"golang.org/x/sync/semaphore"
)

// A request body is read twice, cheaply. The first pass stores the bytes as
// they came off the wire (compressed: typically a tenth of the records) and
// decompresses them on the fly only to count and check them, discarding the
// output. So a body that is too large or corrupt is refused before a single
// record was emitted, and a gzip bomb stops as soon as its output passes the
// cap, after reading about cap/1000 compressed bytes. The second pass
// decompresses the stored bytes into batches (see split.go).

// wireChunk is the unit the stored body grows by, each granted from the
// memory budget.
const wireChunk = 64 << 10

var wirePool = sync.Pool{New: func() any { b := make([]byte, wireChunk); return &b }}

// rejection is a request refused with a status before anything was emitted.
type rejection struct {
	status int
	reason string
}

func (r *rejection) Error() string { return r.reason }

func reject(status int, format string, args ...any) error {
	return &rejection{status: status, reason: fmt.Sprintf(format, args...)}
}

// errClientGone: reading the body failed, so the client went away or was
// too slow; there is nobody to answer.
var errClientGone = errors.New("client went away")

// body is one request's body as received, in chunks granted from the budget.
type body struct {
	budget *semaphore.Weighted
	chunks []*[]byte
	last   int // bytes used in the last chunk
	gzip   bool
	wire   int64  // bytes as received
	size   int64  // bytes decompressed
	head   []byte // the first decompressed bytes (up to headBytes), to spot the validation request
}

const headBytes = 64

// isGzip decides whether a body is gzip: by Content-Encoding, else by its
// magic bytes, since Logpush does not promise the header.
func isGzip(h http.Header, br *bufio.Reader) (bool, error) {
	switch enc := strings.ToLower(strings.TrimSpace(h.Get("Content-Encoding"))); enc {
	case "gzip", "x-gzip":
		return true, nil
	case "", "identity":
		magic, _ := br.Peek(2)
		return len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b, nil
	default:
		return false, reject(http.StatusUnsupportedMediaType, "unsupported Content-Encoding %q (gzip or none)", enc)
	}
}

// receive stores r and checks it: a decompressed size above limit is 413,
// corrupt gzip 400, a budget that cannot cover the stored bytes 429. On
// error nothing is held.
func receive(r io.Reader, gz bool, limit int64, budget *semaphore.Weighted, zr *gzip.Reader) (b *body, err error) {
	b = &body{budget: budget, gzip: gz}
	defer func() {
		if err != nil {
			b.release()
			b = nil
		}
	}()
	// A compressed body can be larger than what it holds (stored blocks,
	// headers), but not by much: past this, it is certainly too large.
	wireLimit := limit + limit/16 + 64<<10
	store := &storer{b: b, limit: wireLimit}
	wire := io.TeeReader(&readErr{r: r}, store)
	if !gz {
		n, err := io.Copy(&headWriter{b: b, limit: limit}, wire)
		b.size = n
		return b, wireErr(err, store)
	}
	if err := zr.Reset(wire); err != nil {
		if e := wireErr(err, store); e != nil && !isCorrupt(e) {
			return b, e
		}
		return b, reject(http.StatusBadRequest, "corrupt gzip body: %v", err)
	}
	n, err := io.Copy(&headWriter{b: b, limit: limit}, zr)
	b.size = n
	if e := wireErr(err, store); e != nil {
		if isCorrupt(e) {
			return b, reject(http.StatusBadRequest, "corrupt gzip body: %v", err)
		}
		return b, e
	}
	// The gzip stream ended; anything after it must still be read (and
	// stored) so the second pass sees what the first one judged.
	if _, err := io.Copy(io.Discard, wire); err != nil {
		return b, wireErr(err, store)
	}
	return b, nil
}

// corrupt marks a decoding error, as opposed to a wire or budget one.
type corrupt struct{ error }

func isCorrupt(err error) bool {
	var c corrupt
	return errors.As(err, &c)
}

// wireErr classifies the error a pass-one copy ended with.
func wireErr(err error, s *storer) error {
	var rej *rejection
	var re readError
	switch {
	case err == nil:
		return nil
	case s.err != nil:
		return s.err
	case errors.As(err, &rej):
		return rej
	case errors.As(err, &re):
		return fmt.Errorf("%w: %w", errClientGone, re.error)
	default:
		return corrupt{err}
	}
}

// readError wraps a failure of the underlying body reader, to tell it apart
// from a decoding error of the bytes read.
type readError struct{ error }

type readErr struct{ r io.Reader }

func (r *readErr) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		err = readError{err}
	}
	return n, err
}

// storer appends the wire bytes to the body's chunks.
type storer struct {
	b     *body
	limit int64
	err   error
}

func (s *storer) Write(p []byte) (int, error) {
	b := s.b
	if b.wire+int64(len(p)) > s.limit {
		s.err = reject(http.StatusRequestEntityTooLarge, "body larger than max_body_bytes")
		return 0, s.err
	}
	n := len(p)
	for len(p) > 0 {
		if len(b.chunks) == 0 || b.last == wireChunk {
			if !b.budget.TryAcquire(wireChunk) {
				s.err = reject(http.StatusTooManyRequests, "memory budget exhausted")
				return 0, s.err
			}
			b.chunks = append(b.chunks, wirePool.Get().(*[]byte))
			b.last = 0
		}
		c := *b.chunks[len(b.chunks)-1]
		k := copy(c[b.last:], p)
		b.last += k
		p = p[k:]
	}
	b.wire += int64(n)
	return n, nil
}

// headWriter counts the decompressed bytes, keeps the first headBytes and
// stops past the limit.
type headWriter struct {
	b     *body
	limit int64
	n     int64
}

func (h *headWriter) Write(p []byte) (int, error) {
	h.n += int64(len(p))
	if h.n > h.limit {
		return 0, reject(http.StatusRequestEntityTooLarge, "body larger than max_body_bytes (%d bytes) after decompression", h.limit)
	}
	if room := headBytes - len(h.b.head); room > 0 {
		h.b.head = append(h.b.head, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// release returns every stored chunk not yet released. Idempotent.
func (b *body) release() {
	for i, c := range b.chunks {
		if c != nil {
			b.budget.Release(wireChunk)
			wirePool.Put(c)
			b.chunks[i] = nil
		}
	}
}

// reader reads the stored bytes once, returning each chunk to the budget as
// soon as it was read past.
func (b *body) reader() *chunkReader { return &chunkReader{b: b} }

type chunkReader struct {
	b   *body
	i   int
	off int
}

func (r *chunkReader) current() []byte {
	for r.i < len(r.b.chunks) {
		c := (*r.b.chunks[r.i])[:wireChunk]
		if r.i == len(r.b.chunks)-1 {
			c = c[:r.b.last]
		}
		if r.off < len(c) {
			return c[r.off:]
		}
		r.b.budget.Release(wireChunk)
		wirePool.Put(r.b.chunks[r.i])
		r.b.chunks[r.i] = nil
		r.i++
		r.off = 0
	}
	return nil
}

func (r *chunkReader) Read(p []byte) (int, error) {
	c := r.current()
	if c == nil {
		return 0, io.EOF
	}
	n := copy(p, c)
	r.off += n
	return n, nil
}

// ReadByte lets the decompressor read without a bufio.Reader of its own.
func (r *chunkReader) ReadByte() (byte, error) {
	c := r.current()
	if c == nil {
		return 0, io.EOF
	}
	r.off++
	return c[0], nil
}
