// Package retry holds the two primitives every retrying loop shares: a
// full-jitter backoff and a sleep that ends with its context.
package retry

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff returns a full-jitter delay for the given attempt (0-based):
// uniform in [0, min(maxDelay, initial·2^attempt)]. Full jitter spreads
// the retries of many agents after a shared outage.
func Backoff(attempt int, initial, maxDelay time.Duration) time.Duration {
	ceil := maxDelay
	if attempt < 32 && initial<<attempt > 0 && initial<<attempt < maxDelay {
		ceil = initial << attempt
	}
	if ceil <= 0 {
		return 0
	}
	return rand.N(ceil + 1)
}

// Sleep waits d or until ctx ends; it reports whether the full d passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
