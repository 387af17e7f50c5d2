package tetragon

import (
	"os"
	"testing"
)

// With start_at: end, the position adopted at the first start must be
// persisted before anything is read: a restart before the first
// acknowledgement (a wrong token, fixed, pod restarted) must continue there,
// not apply "end" again and skip everything written in between.
func TestStartAtEndIsPersistedBeforeTheFirstAck(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(h *harness)
	}{
		{"live file with lines", func(h *harness) { appendLines(t, h.path, lines(1000, 1010)) }},
		{"empty live file, no backup", func(h *harness) { appendLines(t, h.path, nil) }},
		{"empty live file after a backup", func(h *harness) {
			appendLines(t, h.path, lines(1000, 1010))
			rotate(t, h.path)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.cfg.StartAt = "end"
			h.drop = true // the sink rejects everything
			tc.setup(h)
			h.start()
			waitUntil(t, "the source reads", func() bool { ok, _ := h.src.Ready(); return ok })
			appendLines(t, h.path, lines(0, 3))
			h.waitLines(3)
			h.stop() // nothing was acknowledged

			h.events, h.drop = nil, false
			h.start()
			h.waitIdle(2)
			h.stop()
			assertLines(t, h.lines(), lines(0, 3))
		})
	}
}

// A checkpoint saved for an empty file set that then got files: everything
// on disk is new since the first start.
func TestStartAtEndWithNothingOnDiskYet(t *testing.T) {
	h := newHarness(t)
	h.cfg.StartAt = "end"
	h.drop = true
	if err := os.WriteFile(h.path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	h.start()
	waitUntil(t, "the source reads", func() bool { ok, _ := h.src.Ready(); return ok })
	h.stop()
	// Down meanwhile: the empty file got lines and was rotated.
	appendLines(t, h.path, lines(0, 3))
	rotate(t, h.path)
	appendLines(t, h.path, lines(3, 5))
	h.events, h.drop = nil, false
	h.start()
	h.waitIdle(2)
	h.stop()
	assertLines(t, h.lines(), lines(0, 5))
}
