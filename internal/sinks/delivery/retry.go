package delivery

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxRetryAfter caps a server's Retry-After: a typo or a clock far off
// should not park the data for hours.
const maxRetryAfter = 10 * time.Minute

// StatusError is a non-2xx answer from the destination.
type StatusError struct {
	Code int
	// RetryAfter is the server's Retry-After, capped; 0 when absent.
	RetryAfter time.Duration
	// Body is the first bytes of the answer, for the log only: SIEMs'
	// error texts are not documented and are never parsed.
	Body string
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("answered %d %s", e.Code, http.StatusText(e.Code))
	if e.Body != "" {
		msg += fmt.Sprintf(": %q", e.Body)
	}
	return msg
}

// action is what the sender does after an attempt.
type action int

const (
	actDeliver    action = iota // accepted: acknowledge
	actRetry                    // transient: same body again after a backoff
	actHalve                    // split the request and send each half
	actDeadLetter               // rejected for good: dead-letter the request
	actConfig                   // auth or configuration problem: keep the data, retry slowly
)

// classify decides what to do after an attempt that returned err.
func classify(err error) action {
	if err == nil {
		return actDeliver
	}
	var se *StatusError
	if !errors.As(err, &se) {
		// No answer at all (refused, reset, timeout, DNS): the server or the
		// network may be back any moment and the data is fine.
		return actRetry
	}
	switch c := se.Code; {
	case c >= 200 && c < 300:
		return actDeliver
	case c == http.StatusRequestTimeout:
		// The server gave up waiting for our body: nothing wrong with it.
		return actRetry
	case c == http.StatusTooManyRequests:
		// Rate limited: back off, honouring Retry-After.
		return actRetry
	case c == http.StatusRequestEntityTooLarge:
		// Too large as a whole: halves may pass; one event alone still 413
		// can never pass and is dead-lettered.
		return actHalve
	case c == http.StatusBadRequest:
		// Some event is malformed: bisect to find it and deliver the rest.
		return actHalve
	case c == http.StatusUnprocessableEntity:
		// The token's repository is gone: bisecting would only multiply
		// requests that all fail the same way.
		return actDeadLetter
	case c == http.StatusUnauthorized, c == http.StatusForbidden:
		// Unknown or blocked token: an operator must act; keep the data.
		return actConfig
	case c >= 500 && c != http.StatusNotImplemented:
		// Server trouble or back-pressure (503 is LogScale's documented
		// "ingest delayed"): retry the same body.
		return actRetry
	default:
		// 501 and unexpected codes (404, 405, 3xx, ...) mean a wrong URL or
		// path, not a bad event: never dead-letter, retry slowly.
		return actConfig
	}
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date.
// It returns 0 when absent or unreadable and caps at maxRetryAfter.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}
