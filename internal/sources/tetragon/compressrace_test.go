package tetragon

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/siemship/siemship/internal/event"
)

// removeAfterFirstScan deletes path right after the reader's first listing
// of the directory: lumberjack deleting a plain backup once its .gz is
// complete, between siemship's scan and its reading the backup's head.
func removeAfterFirstScan(t *testing.T, h *harness, path string) {
	h.prelude = func(_ context.Context, s *Source, _ chan<- *event.Batch) {
		done := false
		s.set.scanned = func() {
			if !done {
				done = true
				if err := os.Remove(path); err != nil {
					t.Error(err)
				}
			}
		}
	}
}

func assertNoLoss(t *testing.T, h *harness) {
	t.Helper()
	if n := testutil.ToFloat64(h.src.m.lossIncidents); n != 0 {
		t.Errorf("reported %v losses; the data was on disk in the .gz", n)
	}
	for _, l := range h.lines() {
		if strings.Contains(l, "siemship_data_loss") {
			t.Errorf("loss report shipped: %.200s", l)
		}
	}
}

// The checkpoint names a backup mid-file (the reader was behind), the backup
// was compressed, and the plain file is deleted between the scan and the
// head check: the rest of the backup is read from the .gz, nothing skipped
// and no loss reported.
func TestRestartRacingCompressionOfABackupMidFile(t *testing.T) {
	h := newHarness(t)
	backup := backupName(h.dir, 1)
	appendLines(t, backup, lines(0, 300)) // several batches
	appendLines(t, h.path, lines(300, 305))
	h.ackFirst = 2
	h.start()
	h.waitLines(305)
	h.stop()
	pos, ok := h.src.Committed()
	if !ok || !strings.HasSuffix(backup, pos.File.Name) || pos.Offset == 0 {
		t.Fatalf("checkpoint %+v, want inside %s", pos, backup)
	}
	from := int(pos.Offset) / (len(line(0)) + 1)

	compressKeep(t, backup)
	h.events, h.ackFirst = nil, 0
	removeAfterFirstScan(t, h, backup)
	h.start()
	h.waitIdle(2)
	h.stop()
	assertNoLoss(t, h)
	assertLines(t, h.lines(), lines(from, 305))
}

// The checkpoint names tetragon.log (taken while it was live); since then it
// was rotated and compressed, and the plain backup is deleted between the
// scan and the head check: reading continues in the .gz at the checkpoint,
// and the older backups are not shipped again.
func TestRestartRacingCompressionOfTheFileThatWasLive(t *testing.T) {
	h := newHarness(t)
	appendLines(t, backupName(h.dir, 1), lines(1000, 1010))
	appendLines(t, h.path, lines(0, 20))
	h.start()
	h.waitLines(30)
	h.stop()

	appendLines(t, h.path, lines(20, 30))
	backup := rotate(t, h.path)
	appendLines(t, h.path, lines(30, 35))
	compressKeep(t, backup)
	h.events = nil
	removeAfterFirstScan(t, h, backup)
	h.start()
	h.waitIdle(2)
	h.stop()
	assertNoLoss(t, h)
	assertLines(t, h.lines(), lines(20, 35))
}
