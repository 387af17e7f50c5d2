package delivery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/siemship/siemship/internal/event"
	"github.com/siemship/siemship/internal/retry"
)

// Bounds on reading answers: error texts only go to the log, and the rest
// of a body is drained only when short, so the connection can be reused.
const (
	maxErrorBody = 256
	maxDrain     = 64 << 10
)

// deliver sends r until each of its events is delivered or dead-lettered,
// or ctx ends, and releases r. On ctx's end the events stay
// unacknowledged, to be read again from the source.
func (s *Sender) deliver(ctx context.Context, r *request) {
	lo, hi := s.send(ctx, r)
	if lo == nil {
		return
	}
	// Halves go one after the other, within r's concurrency slot.
	s.deliver(ctx, s.seal(lo, true))
	if ctx.Err() != nil {
		s.releaseBody(hi)
		return
	}
	s.deliver(ctx, s.seal(hi, true))
}

// send posts r, retrying as the status policy says, and releases r. When
// the destination wants r split, it returns bodies for its two halves.
func (s *Sender) send(ctx context.Context, r *request) (lo, hi Body) {
	defer s.release(r)
	retries := 0
	for attempt := 0; ctx.Err() == nil; attempt++ {
		err := s.post(ctx, r, attempt > 0 || r.resend)
		if ctx.Err() != nil {
			return nil, nil // hard stop: the attempt was cut off, not answered
		}
		var se *StatusError
		errors.As(err, &se)
		switch classify(err) {
		case actDeliver:
			s.health.ok()
			s.ack(events(r.b))
			return nil, nil
		case actRetry:
			// Transient (see classify): the same body again after a backoff.
			wait := retry.Backoff(retries, s.cfg.RetryInitial, s.cfg.RetryMax)
			if se != nil && se.RetryAfter > 0 {
				wait = se.RetryAfter
			}
			retries++
			s.noteFailure(err, r.b.Len(), wait)
			retry.Sleep(ctx, wait)
		case actConfig:
			// Only an operator can fix this; keep the data and look again slowly.
			s.noteFailure(err, r.b.Len(), s.cfg.AuthRetry)
			retry.Sleep(ctx, s.cfg.AuthRetry)
		case actDeadLetter:
			// Rejected for good as a whole: retrying cannot help.
			s.deadLetter(ctx, events(r.b), se)
			return nil, nil
		case actHalve:
			n := r.b.Len()
			if n == 1 {
				// One event alone that is still rejected is the bad one.
				s.deadLetter(ctx, events(r.b), se)
				return nil, nil
			}
			s.log.Info(s.peer.Name+" rejected a request, sending it in halves",
				"status", se.Code, "events", n, "answer", se.Body)
			return s.slice(r.b, 0, n/2), s.slice(r.b, n/2, n)
		}
	}
	return nil, nil
}

// post sends r once. It returns nil on 2xx, a *StatusError for any other
// answer, and the transport's error when there was no answer.
func (s *Sender) post(ctx context.Context, r *request, resend bool) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	body := r.body.Bytes()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.peer.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	s.setHeaders(req.Header)

	n := float64(r.b.Len())
	s.m.eventsSent.Add(n)
	if resend {
		s.m.eventsRetried.Add(n)
	}
	s.m.bytesSent.Add(float64(len(body)))
	s.m.bytesUncompressed.Add(float64(r.b.Size()))

	start := time.Now()
	resp, err := s.client.Do(req)
	if err != nil {
		s.m.duration.Observe(time.Since(start).Seconds())
		s.m.requests.WithLabelValues("network_error").Inc()
		return fmt.Errorf("send %d events: %w", r.b.Len(), err)
	}
	defer resp.Body.Close()
	var snippet []byte
	if resp.StatusCode/100 != 2 {
		snippet, _ = io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	s.m.duration.Observe(time.Since(start).Seconds())
	s.m.requests.WithLabelValues(strconv.Itoa(resp.StatusCode)).Inc()
	if resp.StatusCode/100 == 2 {
		return nil
	}
	return &StatusError{
		Code:       resp.StatusCode,
		RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
		Body:       s.peer.Token.Redact(strings.TrimSpace(strings.ToValidUTF8(string(snippet), "\ufffd"))),
	}
}

func (s *Sender) setHeaders(h http.Header) {
	s.peer.SetHeaders(h)
	if s.cfg.Compression == CompressionGzip {
		h.Set("Content-Encoding", "gzip")
	}
	h.Set("User-Agent", s.peer.UserAgent)
}

// ack acknowledges events to their sources.
func (s *Sender) ack(events []*event.Event) {
	event.Deliver(events)
	s.m.eventsAcked.Add(float64(len(events)))
}

// noteFailure updates readiness and logs a failed attempt that will be
// retried after wait: at full level when the problem is new, or once per
// AuthRetry while it lasts, else at debug level.
func (s *Sender) noteFailure(err error, events int, wait time.Duration) {
	kind, level, reason, notReady := probUnreachable, slog.LevelWarn, "", true
	var se *StatusError
	switch {
	case !errors.As(err, &se):
		reason = s.peer.Name + " is unreachable: " + err.Error()
	case se.Code == http.StatusUnauthorized:
		kind, level = probConfig, slog.LevelError
		reason = s.peer.Unauthorized
	case se.Code == http.StatusForbidden:
		kind, level = probConfig, slog.LevelError
		reason = s.peer.Forbidden
	case classify(err) == actConfig:
		kind, level = probConfig, slog.LevelError
		reason = fmt.Sprintf("%s answered %d %s: check the URL and format", s.peer.Name, se.Code, http.StatusText(se.Code))
	default:
		kind, notReady = probBusy, false
		reason = fmt.Sprintf("%s answered %d %s", s.peer.Name, se.Code, http.StatusText(se.Code))
	}
	if !s.health.fail(kind, reason, notReady) {
		level = slog.LevelDebug
	}
	attrs := []any{"events", events, "retry_in", wait.Round(time.Millisecond).String()}
	if se != nil && se.Body != "" {
		attrs = append(attrs, "answer", se.Body)
	}
	s.log.Log(context.Background(), level, reason+"; keeping the events and retrying", attrs...)
}
