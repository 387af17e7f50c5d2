package delivery

import (
	"testing"
	"time"
)

// TestLogRateLimit: a lasting problem is logged loudly once, then at most
// once per AuthRetry; a change of problem is logged at once.
func TestLogRateLimit(t *testing.T) {
	l := &limiter{quiet: time.Hour}
	got := []bool{l.allow(probConfig), l.allow(probConfig), l.allow(probConfig), l.allow(probBusy), l.allow(probConfig)}
	want := []bool{true, false, false, true, true}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("allow sequence %v, want %v", got, want)
		}
	}
	l.quiet = 0
	if !l.allow(probConfig) {
		t.Error("not logged again after the quiet period")
	}
}
