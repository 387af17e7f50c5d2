package syslog

import (
	"sync"
	"time"
)

// health tracks readiness and keeps a repeated failure from flooding the
// log: a problem is logged when it starts or changes, then at most once per
// quiet period. Safe for concurrent use.
type health struct {
	quiet time.Duration
	gauge interface{ Set(float64) }

	mu      sync.Mutex
	ready   bool
	reason  string
	problem string
	last    time.Time
}

func newHealth(quiet time.Duration, gauge interface{ Set(float64) }) *health {
	gauge.Set(0)
	return &health{quiet: quiet, gauge: gauge, reason: "not connected to the syslog receiver yet"}
}

// ok records a working connection and returns the problem it ends, if any.
func (h *health) ok() (ended string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ended, h.problem = h.problem, ""
	h.ready, h.reason = true, ""
	h.gauge.Set(1)
	return ended
}

// fail records a failure: not ready, with reason. It reports whether to log
// it at its full level now (else at debug level).
func (h *health) fail(kind, reason string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ready, h.reason = false, reason
	h.gauge.Set(0)
	now := time.Now()
	if kind != h.problem || now.Sub(h.last) >= h.quiet {
		h.problem, h.last = kind, now
		return true
	}
	return false
}

func (h *health) state() (bool, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ready, h.reason
}
