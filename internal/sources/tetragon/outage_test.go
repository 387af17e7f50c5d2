package tetragon

import (
	"encoding/json"
	"testing"
	"time"

	"gopkg.in/natefinch/lumberjack.v2"
)

func (w *watcher) knownCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.known)
}

// During a long outage the reader stays in one file while Tetragon rotates
// and deletes hundreds of backups: what the watcher remembers of them must
// stay bounded by what is on disk, and the loss report must still count
// them all.
func TestKnownBackupsStayBoundedDuringAnOutage(t *testing.T) {
	h := newHarness(t)
	h.hold = make(chan struct{})
	lj := &lumberjack.Logger{Filename: h.path, MaxSize: 1 << 20, MaxBackups: 2}
	defer lj.Close()
	write := func(ls []string) {
		for _, l := range ls {
			if _, err := lj.Write([]byte(l + "\n")); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(lines(0, 300)) // several batches: the reader blocks inside this file
	h.start()
	waitUntil(t, "the reader sent its first batch", func() bool { return h.received.Load() >= 1 })

	const rotations = 150
	for i := range rotations {
		// Backup names have millisecond resolution: two rotations in one
		// millisecond would overwrite a backup (lumberjack's limit).
		time.Sleep(2 * time.Millisecond)
		if err := lj.Rotate(); err != nil {
			t.Fatal(err)
		}
		write(lines(300+i, 301+i))
	}
	// lumberjack deletes old backups in the background; the watcher sees the result.
	waitUntil(t, "the watcher remembers only what is on disk", func() bool {
		list, _ := h.src.set.scan()
		return len(list) == 3 && h.src.watch.knownCount() <= 3
	})
	close(h.hold)
	last := 300 + rotations
	h.waitIdle(2)
	h.stop()
	got := h.lines()
	assertLines(t, got[:300], lines(0, 300))
	var report struct {
		Loss Loss `json:"siemship_data_loss"`
	}
	if err := json.Unmarshal([]byte(got[300]), &report); err != nil {
		t.Fatalf("event after the first file is not a loss report: %v: %.100q", err, got[300])
	}
	l := report.Loss
	if n := len(l.Files) + l.FilesOmitted; n < rotations/2 || n > rotations || len(l.Files) > maxLossNames || l.BytesAtLeast < int64(n) {
		t.Errorf("loss report: %d names + %d omitted, %d bytes; want most of the %d rotated-out files, at most %d names",
			len(l.Files), l.FilesOmitted, l.BytesAtLeast, rotations, maxLossNames)
	}
	rest := got[301:]
	assertLines(t, rest, lines(last-len(rest), last))
	if len(rest) == 0 || len(rest) > 3 {
		t.Errorf("%d lines after the loss report, want those of the 2 backups and the live file", len(rest))
	}
}
