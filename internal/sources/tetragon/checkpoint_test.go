package tetragon

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// within polls cond until it holds, failing the test after d.
func within(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The checkpoint follows the commit point closely (whatever the interval
// says, at most maxSaveDelay later), so that a SIGKILL re-ships little more
// than what was in flight; acks in between are coalesced into one write.
func TestCheckpointIsSavedSoonAfterTheCommitPointMoves(t *testing.T) {
	h := newHarness(t)
	h.cfg.CheckpointInterval = time.Minute
	appendLines(t, h.path, lines(0, 10))
	h.start()
	h.waitLines(10)
	want := int64(10 * (len(line(0)) + 1))
	// Far above maxSaveDelay (a loaded CI machine), far below the interval.
	within(t, 5*time.Second, "the checkpoint covers the 10 acknowledged lines", func() bool {
		var st state
		ok, err := h.src.store.Load(h.src.name, &st)
		return err == nil && ok && st.Position.Offset == want
	})

	begin := time.Now()
	writes := testutil.ToFloat64(h.src.m.checkpointSaves)
	for i := range 20 {
		appendLines(t, h.path, lines(10+i*100, 110+i*100))
		h.waitLines(110 + i*100)
	}
	h.stop()
	elapsed := time.Since(begin)
	n := testutil.ToFloat64(h.src.m.checkpointSaves) - writes
	if limit := 2 + float64(elapsed/maxSaveDelay); n > limit {
		t.Errorf("%v checkpoint writes in %v, want at most %v (coalesced to one per %v)", n, elapsed, limit, maxSaveDelay)
	}
	if n < 1 {
		t.Errorf("no checkpoint write for 2000 acknowledged lines")
	}
}
