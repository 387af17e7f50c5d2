package retry

import (
	"testing"
	"time"
)

func TestBackoffFullJitter(t *testing.T) {
	initial, maxDelay := 100*time.Millisecond, 3*time.Second
	for attempt, ceil := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond,
		800 * time.Millisecond, 1600 * time.Millisecond, 3 * time.Second, 3 * time.Second} {
		var top time.Duration
		for range 2000 {
			d := Backoff(attempt, initial, maxDelay)
			if d < 0 || d > ceil {
				t.Fatalf("attempt %d: %v outside [0, %v]", attempt, d, ceil)
			}
			top = max(top, d)
		}
		// Full jitter spreads over the whole range.
		if top < ceil*8/10 {
			t.Errorf("attempt %d: largest of 2000 delays %v, want near %v", attempt, top, ceil)
		}
	}
	if d := Backoff(500, initial, maxDelay); d > maxDelay {
		t.Errorf("huge attempt: %v over the max", d)
	}
}
