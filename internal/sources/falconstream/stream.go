package falconstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tidwall/gjson"

	"github.com/siemship/siemship/internal/event"
	"github.com/siemship/siemship/internal/falcon"
)

// chunkBytes is the size of a stream read.
const chunkBytes = 64 << 10

// batch is the partition's batch being filled: events sliced out of one
// pooled buffer.
type batch struct {
	buf    *[]byte
	events []event.Event
	last   int64
}

// streamURL is the feed URL with the position and the type filter.
func (s *Source) streamURL(r *resource, p *partState) string {
	var b strings.Builder
	b.WriteString(r.DataFeedURL)
	sep := "&"
	if !strings.Contains(r.DataFeedURL, "?") {
		sep = "?"
	}
	switch {
	case p.next >= 0:
		b.WriteString(sep + "offset=" + strconv.FormatInt(p.next, 10))
	case s.cfg.StartAt == StartNewest:
		b.WriteString(sep + "whence=2")
	default:
		b.WriteString(sep + "offset=0")
	}
	if len(s.cfg.EventTypes) > 0 {
		b.WriteString("&eventType=" + strings.Join(s.cfg.EventTypes, ","))
	}
	return b.String()
}

// stream reads one partition's stream until it ends or sctx (the session)
// does, sending batches to out. Sends wait on ctx (the source's), not on
// the session: a batch read is always handed over, so the next session can
// continue after it. It returns the events read and why it ended.
func (s *Source) stream(sctx, ctx context.Context, out chan<- *event.Batch, r *resource, p *partState) (int64, error) {
	req, err := http.NewRequestWithContext(sctx, http.MethodGet, s.streamURL(r, p), nil)
	if err != nil {
		return 0, sessionEnd(causeError, fmt.Errorf("build stream request: %w", err))
	}
	resp, err := s.client.DoSession(sctx, "stream", req, r.SessionToken.Token)
	if err != nil {
		if sctx.Err() != nil {
			return 0, context.Cause(sctx)
		}
		p.setProblem("stream refused: " + err.Error())
		if errors.Is(err, falcon.ErrUnauthorized) {
			return 0, sessionEnd(causeUnauthorized, err)
		}
		return 0, sessionEnd(causeError, err)
	}
	p.setProblem("")
	p.streaming.Store(true)
	g := s.m.streaming.WithLabelValues(p.id)
	g.Set(1)
	defer func() {
		p.streaming.Store(false)
		g.Set(0)
	}()

	chunks, readErr, stopReader := startReader(resp.Body)
	defer stopReader()

	var (
		n       int64
		b       batch
		carry   []byte // a line not complete yet
		cut     int    // bytes of the current line beyond max_event_bytes
		silence = time.NewTimer(s.cfg.ReadTimeout)
		linger  = time.NewTimer(s.cfg.Linger)
		lingerC <-chan time.Time
	)
	defer silence.Stop()
	defer linger.Stop()
	linger.Stop()
	maxLine := int(s.cfg.MaxEventBytes)
	emit := func() bool {
		lingerC = nil
		ok := s.emit(ctx, out, p, &b)
		silence.Reset(s.cfg.ReadTimeout) // waiting for the sinks is no silence of Falcon's
		return ok
	}
	add := func(line []byte, size int) bool {
		added, full := s.add(p, &b, line, size)
		if added {
			n++
			if len(b.events) == 1 {
				linger.Reset(s.cfg.Linger)
				lingerC = linger.C
			}
		}
		if full {
			return emit()
		}
		return true
	}
	for {
		select {
		case <-sctx.Done():
			emit()
			return n, context.Cause(sctx)
		case <-silence.C:
			emit()
			p.setProblem("stream silent for " + s.cfg.ReadTimeout.String())
			return n, sessionEnd(causeSilence, fmt.Errorf("nothing, not even a keep-alive, for %s", s.cfg.ReadTimeout))
		case <-lingerC:
			if !emit() {
				return n, ctx.Err()
			}
		case err := <-readErr:
			// A partial line at the end is an abrupt close: it is read again
			// from its offset by the next session.
			emit()
			if errors.Is(err, io.EOF) {
				p.setProblem("stream ended by Falcon")
				return n, sessionEnd(causeEOF, err)
			}
			p.setProblem("stream broken: " + err.Error())
			return n, sessionEnd(causeError, err)
		case c := <-chunks:
			silence.Reset(s.cfg.ReadTimeout)
			data := c.data
			for len(data) > 0 {
				i := bytes.IndexByte(data, '\n')
				part := data
				if i >= 0 {
					part = data[:i]
				}
				if room := maxLine - len(carry); len(part) > room {
					cut += len(part) - room
					part = part[:room]
				}
				var line []byte
				switch {
				case i < 0:
					carry = append(carry, part...)
					data = nil
					continue
				case len(carry) > 0:
					carry = append(carry, part...)
					line = carry
				default:
					line = part
				}
				size := len(line) + cut
				if !add(line, size) {
					c.release()
					return n, ctx.Err()
				}
				carry, cut = carry[:0], 0
				data = data[i+1:]
			}
			c.release()
		}
	}
}

// add appends one line to b, reporting whether it was an event (not a
// keep-alive or a replay) and whether b should be sent now.
func (s *Source) add(p *partState, b *batch, line []byte, size int) (added, full bool) {
	line = bytes.TrimRight(line, "\r")
	if len(bytes.TrimSpace(line)) == 0 {
		return false, false // keep-alive
	}
	// GetBytes reads without copying the line, and metadata comes first:
	// each lookup stops early. (GetManyBytes would copy every line.)
	meta := gjson.GetBytes(line, "metadata")
	res := [4]gjson.Result{meta.Get("offset"), meta.Get("eventType"), meta.Get("eventCreationTime")}
	if res[1].Str == "UserActivityAuditEvent" {
		res[3] = gjson.GetBytes(line, "event.ServiceName")
	}
	var flags event.Flags
	if size > len(line) {
		flags |= event.Truncated
		s.m.truncated.Inc()
	}
	offset := p.next - 1
	if res[0].Exists() {
		offset = res[0].Int()
		if p.next >= 0 && offset < p.next {
			s.m.skipped.Inc()
			return false, false
		}
	} else {
		flags |= event.Malformed
	}
	ms := res[2].Int()
	if ms <= 0 {
		flags |= event.TimeGuessed
		ms = p.lastTime
		if ms == 0 {
			ms = time.Now().UnixMilli()
		}
	}
	p.lastTime = ms
	typ := p.eventType(res[1].String(), res[3].String())

	if b.buf == nil {
		b.buf = s.pool.Get().(*[]byte)
		*b.buf = (*b.buf)[:0]
	}
	if len(*b.buf)+len(line) > cap(*b.buf) {
		// The caller sends b before the next line; this one starts it.
		full = true
	}
	start := len(*b.buf)
	*b.buf = append(*b.buf, line...)
	b.events = append(b.events, event.Event{Raw: (*b.buf)[start:len(*b.buf):len(*b.buf)], Time: ms, Type: typ, Size: size, Flags: flags})
	b.last = offset
	p.next = offset + 1
	p.seen.Set(float64(offset))
	p.eventsC.Inc()
	return true, full || len(b.events) >= s.cfg.MaxBatchEvents || len(*b.buf)+int(s.cfg.MaxEventBytes) > cap(*b.buf)
}

// emit hands b to the pipeline, tracking its last offset. It reports false
// when ctx ended first (the source stops: b is dropped, never committed).
func (s *Source) emit(ctx context.Context, out chan<- *event.Batch, p *partState, b *batch) bool {
	if len(b.events) == 0 {
		return true
	}
	buf, events, last := b.buf, b.events, b.last
	*b = batch{}
	weight := int64(cap(*buf))
	if s.budget != nil {
		if err := s.budget.Acquire(ctx, weight); err != nil {
			return false
		}
	}
	ack := p.tracker.Track(last)
	n := len(events)
	done := func() {
		ack()
		if off, ok, _ := p.tracker.Committed(); ok {
			p.committedG.Set(float64(off))
		}
		p.ackedC.Add(float64(n))
		s.pool.Put(buf)
		if s.budget != nil {
			s.budget.Release(weight)
		}
	}
	select {
	case out <- event.NewBatch(s.name, events, done):
		return true
	case <-ctx.Done():
		return false
	}
}

// eventType is metadata.eventType, and for UserActivityAuditEvent the
// service that acted (event.ServiceName), as the seed routed them.
func (p *partState) eventType(et, service string) string {
	if et == "" {
		return "unknown"
	}
	key := et
	if et == "UserActivityAuditEvent" && service != "" {
		key = et + "_" + service
	}
	if t, ok := p.types[key]; ok {
		return t
	}
	t := sanitizeType(key)
	if len(p.types) < 1024 { // bounded: types become tags and metric labels
		p.types[key] = t
	}
	return t
}

func sanitizeType(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			b[i] = '_'
		}
	}
	if len(b) > 96 {
		b = b[:96]
	}
	return string(b)
}

func (p *partState) setProblem(why string) { p.problem.Store(&why) }

// chunk is one read of the stream; release returns its buffer.
type chunk struct {
	data    []byte
	release func()
}

// startReader reads body in its own goroutine (so the stream loop can wait
// for silence and the linger at the same time), handing over chunks. stop
// closes body and waits for the goroutine.
func startReader(body io.ReadCloser) (<-chan chunk, <-chan error, func()) {
	chunks := make(chan chunk)
	readErr := make(chan error, 1)
	done := make(chan struct{})
	free := make(chan []byte, 2)
	free <- make([]byte, chunkBytes)
	free <- make([]byte, chunkBytes)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			var buf []byte
			select {
			case buf = <-free:
			case <-done:
				return
			}
			n, err := body.Read(buf)
			if n > 0 {
				select {
				case chunks <- chunk{data: buf[:n], release: func() { free <- buf }}:
				case <-done:
					return
				}
			} else {
				free <- buf
			}
			if err != nil {
				readErr <- err
				return
			}
		}
	})
	var once sync.Once
	return chunks, readErr, func() {
		once.Do(func() {
			close(done)
			body.Close()
			wg.Wait()
		})
	}
}
