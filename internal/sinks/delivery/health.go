package delivery

import (
	"log/slog"
	"sync"
	"time"
)

// problem kinds, for readiness and log rate limiting.
const (
	probNone        = ""
	probUnreachable = "unreachable"
	probConfig      = "config"
	probBusy        = "busy" // 5xx, 429: the server is there but not taking data now
)

// limiter keeps a repeated failure from flooding the log: a problem is
// logged when it starts or changes, then at most once per quiet period.
// Safe for concurrent use.
type limiter struct {
	quiet time.Duration

	mu      sync.Mutex
	problem string
	last    time.Time
}

// allow records a failure of the given kind and reports whether to log it
// at its full level now (else at debug level).
func (l *limiter) allow(kind string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if kind != l.problem || now.Sub(l.last) >= l.quiet {
		l.problem, l.last = kind, now
		return true
	}
	return false
}

// clear ends the current problem and returns its kind.
func (l *limiter) clear() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.problem
	l.problem = probNone
	return p
}

// health tracks readiness. Safe for concurrent use.
type health struct {
	log   *slog.Logger
	peer  string
	lim   limiter
	gauge interface{ Set(float64) }

	mu     sync.Mutex
	ready  bool
	reason string
}

func newHealth(log *slog.Logger, peer string, quiet time.Duration, gauge interface{ Set(float64) }) *health {
	h := &health{log: log, peer: peer, lim: limiter{quiet: quiet}, gauge: gauge,
		reason: "no request to " + peer + " has succeeded yet"}
	gauge.Set(0)
	return h
}

// ok records a success: ready, and a note in the log if a problem ends.
func (h *health) ok() {
	if p := h.lim.clear(); p != probNone {
		h.log.Info(h.peer+" accepts events again", "after", p)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ready, h.reason = true, ""
	h.gauge.Set(1)
}

// fail records a failed attempt. notReady makes readiness false with the
// given reason. It reports whether to log the failure at full level now.
func (h *health) fail(kind, reason string, notReady bool) bool {
	if notReady {
		h.mu.Lock()
		h.ready, h.reason = false, reason
		h.gauge.Set(0)
		h.mu.Unlock()
	}
	return h.lim.allow(kind)
}

// state returns readiness and, when not ready, why.
func (h *health) state() (bool, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ready, h.reason
}
