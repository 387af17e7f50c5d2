package falcon

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// AuthRetryAfter is what a 429 without X-Ratelimit-Retryafter waits: the
// auth-failure limit (~15/min/IP) answers so, and a minute clears it.
const AuthRetryAfter = 60 * time.Second

// Limiter paces every API call of one Falcon API client (one CID's limit is
// shared by all its callers: streams, API resources) and holds them all back
// after a 429 until the time Falcon named. Safe for concurrent use.
type Limiter struct {
	pace *rate.Limiter

	mu    sync.Mutex
	until time.Time // no call before this (after a 429)
}

// NewLimiter allows perSecond calls on average with bursts of burst.
func NewLimiter(perSecond float64, burst int) *Limiter {
	return &Limiter{pace: rate.NewLimiter(rate.Limit(perSecond), burst)}
}

// Wait blocks until a call may go out, reporting how long it was held back
// by a 429 (0 when it was not).
func (l *Limiter) Wait(ctx context.Context) (time.Duration, error) {
	var held time.Duration
	for {
		l.mu.Lock()
		d := time.Until(l.until)
		l.mu.Unlock()
		if d <= 0 {
			break
		}
		held += d
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return held, ctx.Err()
		case <-t.C:
		}
	}
	return held, l.pace.Wait(ctx)
}

// Block holds every call back until t.
func (l *Limiter) Block(t time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t.After(l.until) {
		l.until = t
	}
}

// RetryAfter reads X-Ratelimit-Retryafter: Unix epoch seconds in practice;
// a value above 1e12 is taken as epoch milliseconds (what the spec text
// says); a small value (below 1e9) as seconds from now. Without a usable
// header it returns fallback from now. The wait is capped at 15 minutes so
// a wrong clock cannot stall the agent for hours.
func RetryAfter(h http.Header, now time.Time, fallback time.Duration) time.Time {
	v := strings.TrimSpace(h.Get("X-Ratelimit-Retryafter"))
	n, err := strconv.ParseFloat(v, 64)
	var t time.Time
	switch {
	case v == "" || err != nil || n < 0:
		t = now.Add(fallback)
	case n > 1e12:
		t = time.UnixMilli(int64(n))
	case n < 1e9:
		t = now.Add(time.Duration(n * float64(time.Second)))
	default:
		t = time.Unix(int64(n), int64((n-float64(int64(n)))*1e9))
	}
	if t.Before(now) {
		t = now
	}
	if maxT := now.Add(15 * time.Minute); t.After(maxT) {
		t = maxT
	}
	return t
}
