package logpush

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/gzip"
	segjson "github.com/segmentio/encoding/json"
	"github.com/tidwall/gjson"

	"github.com/siemship/siemship/internal/event"
	"github.com/siemship/siemship/internal/jsonstr"
)

var (
	gzipPool  = sync.Pool{New: func() any { return new(gzip.Reader) }}
	bufioPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4<<10) }}
)

// answer is how a request ends: a status and a short reason for the client.
type answer struct {
	code   int
	reason string
}

// ServeHTTP handles one Logpush request. See the package comment.
func (s *Source) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if !s.handlers.enter() {
		s.respond(w, answer{http.StatusServiceUnavailable, "shutting down"}, true)
		return
	}
	defer s.handlers.leave()
	s.m.inFlight.Inc()
	defer s.m.inFlight.Dec()
	a := s.handle(w, r, start)
	if a.code == 0 {
		// The client is most likely gone, but a slow one may still read:
		// it must never take the empty answer for net/http's implicit 200.
		s.m.requests.WithLabelValues(codeAborted).Inc()
		s.respond(w, answer{http.StatusServiceUnavailable, "request aborted: retry"}, false)
		return
	}
	s.respond(w, a, true)
}

func (s *Source) respond(w http.ResponseWriter, a answer, count bool) {
	h := w.Header()
	switch a.code {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		h.Set("Retry-After", strconv.Itoa(int(s.cfg.RetryAfter/time.Second)))
	case http.StatusMethodNotAllowed:
		h.Set("Allow", http.MethodPost)
	case http.StatusRequestEntityTooLarge:
		// The rest of the body was not read: do not make the client send it.
		h.Set("Connection", "close")
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(a.code)
	_, _ = io.WriteString(w, a.reason+"\n")
	if count {
		s.m.answered(a.code)
	}
}

// handle reads, emits and waits for one request. A zero answer means the
// client went away and nobody is left to answer.
func (s *Source) handle(w http.ResponseWriter, r *http.Request, start time.Time) answer {
	if r.Method != http.MethodPost {
		return answer{http.StatusMethodNotAllowed, "Logpush sends POST"}
	}
	if err := s.secrets.get().check(r.Header.Get(s.cfg.AuthHeader)); err != nil {
		// No header value in the log: a near miss would leak the secret.
		s.log.Info("request refused", "remote", r.RemoteAddr, "reason", err.Error(), "header", s.cfg.AuthHeader)
		if errors.Is(err, errNoCredentials) {
			return answer{http.StatusUnauthorized, "missing " + s.cfg.AuthHeader + " header"}
		}
		return answer{http.StatusForbidden, "wrong " + s.cfg.AuthHeader + " header"}
	}
	deadline := start.Add(s.cfg.ResponseTimeout)
	ctx, cancel := context.WithDeadline(r.Context(), deadline)
	defer cancel()
	// A client trickling its body cannot hold a handler past the deadline.
	_ = http.NewResponseController(w).SetReadDeadline(deadline)

	// The first decode buffer is granted before reading, so a request that
	// could not be decoded is refused before it costs anything.
	if !s.budget.TryAcquire(int64(s.cfg.BatchBytes)) {
		s.log.Warn("request refused: memory budget exhausted (sinks slower than Logpush pushes)", "remote", r.RemoteAddr)
		return answer{http.StatusTooManyRequests, "busy: retry later"}
	}
	sp := &splitter{batch: int(s.cfg.BatchBytes), maxRecord: int(s.cfg.MaxRecordBytes), budget: s.budget, reserved: int64(s.cfg.BatchBytes)}
	defer sp.releaseReserved()

	b, a := s.receive(r)
	if b == nil {
		return a
	}
	defer b.release()
	if b.size == 0 || isValidation(b) {
		if b.size > 0 {
			s.m.validations.Inc()
		}
		return answer{http.StatusOK, "ok"}
	}
	zr := gzipPool.Get().(*gzip.Reader)
	defer gzipPool.Put(zr)
	sp.src, sp.left = b.reader(), b.size
	if b.gzip {
		if err := zr.Reset(sp.src); err != nil {
			// The first pass read this very header: unreachable.
			return answer{http.StatusBadRequest, "corrupt gzip body"}
		}
		sp.src = zr
	}
	return s.emit(ctx, r, sp, start)
}

// receive reads and checks the body (the first pass). A nil body comes with
// the answer to give.
func (s *Source) receive(r *http.Request) (*body, answer) {
	br := bufioPool.Get().(*bufio.Reader)
	br.Reset(r.Body)
	defer func() { br.Reset(nil); bufioPool.Put(br) }()
	gz, err := isGzip(r.Header, br)
	var b *body
	if err == nil {
		zr := gzipPool.Get().(*gzip.Reader)
		b, err = receive(br, gz, int64(s.cfg.MaxBodyBytes), s.budget, zr)
		gzipPool.Put(zr)
	}
	if b != nil {
		s.m.wireBytes.Add(float64(b.wire))
		s.m.decoded.Add(float64(b.size))
	}
	var rej *rejection
	switch {
	case err == nil:
		return b, answer{}
	case errors.As(err, &rej):
		if rej.status == http.StatusTooManyRequests {
			s.log.Warn("request refused: memory budget exhausted while reading its body", "remote", r.RemoteAddr)
		} else {
			s.log.Warn("request refused", "remote", r.RemoteAddr, "status", rej.status, "reason", rej.reason)
		}
		return nil, answer{rej.status, rej.reason}
	default:
		s.log.Info("client went away while sending", "remote", r.RemoteAddr, "error", err)
		return nil, answer{}
	}
}

// emit sends the body's records as batches, then waits until every batch is
// done (200) or the deadline passed (503: Logpush will push again, and what
// was delivered meanwhile arrives twice).
func (s *Source) emit(ctx context.Context, r *http.Request, sp *splitter, start time.Time) answer {
	ds := s.datasets.get(datasetOf(s.cfg.Dataset, r))
	req := newPending()
	now := start.UnixMilli()
	for {
		c, err := sp.next(ctx)
		if errors.Is(err, errSplitDone) {
			break
		}
		if err != nil {
			return s.interrupted(ctx, r, "waiting for memory", err)
		}
		s.parse(ds, c.events, now)
		if err := s.send(ctx, c, req); err != nil {
			return s.interrupted(ctx, r, "handing records to the pipeline", err)
		}
	}
	req.finish() // every batch is out: only their completions are left
	select {
	case <-req.done:
		s.m.delivery.Observe(time.Since(start).Seconds())
		return answer{http.StatusOK, "ok"}
	case <-ctx.Done():
		return s.interrupted(ctx, r, "waiting for delivery", ctx.Err())
	}
}

func (s *Source) parse(ds *dataset, events []event.Event, now int64) {
	var malformed, truncated, guessed int
	for i := range events {
		e := &events[i]
		ds.parse(e, now)
		if e.Flags&event.Malformed != 0 {
			malformed++
		}
		if e.Flags&event.Truncated != 0 {
			truncated++
		}
		if e.Flags&event.TimeGuessed != 0 {
			guessed++
		}
	}
	ds.records.Add(float64(len(events)))
	s.m.malformed.Add(float64(malformed))
	s.m.truncated.Add(float64(truncated))
	s.m.timeGuessed.Add(float64(guessed))
}

// send hands one chunk to the pipeline. Its completion returns the chunk's
// budget and counts toward the request.
func (s *Source) send(ctx context.Context, c *chunk, req *pending) error {
	n := len(c.events)
	cost := c.cost
	req.add()
	b := event.NewBatch(s.name, c.events, func() {
		s.budget.Release(cost)
		s.m.acked.Add(float64(n))
		req.finish()
	})
	select {
	case s.out <- b:
		return nil
	case <-ctx.Done():
		// Never handed out, so never completed: give its budget back here.
		s.budget.Release(cost)
		return ctx.Err()
	}
}

// interrupted names why a request ends before delivery: the source is
// stopping, the client went away, or the deadline passed.
func (s *Source) interrupted(ctx context.Context, r *http.Request, doing string, err error) answer {
	switch {
	case s.hard.Err() != nil:
		return answer{http.StatusServiceUnavailable, "shutting down: retry later"}
	case r.Context().Err() != nil:
		s.log.Info("client went away "+doing, "remote", r.RemoteAddr)
		return answer{}
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		s.log.Warn("records not delivered within response_timeout; asking Logpush to push again (duplicates follow)",
			"remote", r.RemoteAddr, "while", doing, "response_timeout", s.cfg.ResponseTimeout.String())
		return answer{http.StatusServiceUnavailable, "not delivered in time: retry later"}
	default:
		s.log.Error("request failed "+doing, "remote", r.RemoteAddr, "error", err)
		return answer{http.StatusServiceUnavailable, "retry later"}
	}
}

// pending counts a request's batches not yet done, plus one for the
// emitting handler; done closes when it reaches zero.
type pending struct {
	n    atomic.Int64
	done chan struct{}
}

func newPending() *pending {
	p := &pending{done: make(chan struct{})}
	p.n.Store(1)
	return p
}

func (p *pending) add() { p.n.Add(1) }

func (p *pending) finish() {
	if p.n.Add(-1) == 0 {
		close(p.done)
	}
}

// isValidation spots the request Logpush sends when a job is created: a
// body of exactly {"content":"tests"} (older jobs: "test").
func isValidation(b *body) bool {
	if b.size > headBytes {
		return false
	}
	v := bytes.TrimSpace(b.head)
	if !jsonstr.StartsObject(v) || !segjson.Valid(v) {
		return false
	}
	keys, ok := 0, false
	gjson.ParseBytes(v).ForEach(func(k, val gjson.Result) bool {
		keys++
		ok = k.Str == "content" && val.Type == gjson.String && (val.Str == "tests" || val.Str == "test")
		return true
	})
	return keys == 1 && ok
}
