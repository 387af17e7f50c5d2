package tetragon

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"gopkg.in/natefinch/lumberjack.v2"

	"github.com/siemship/siemship/internal/event"
)

func TestFollowsRenameCreateRotationsInOrder(t *testing.T) {
	h := newHarness(t)
	appendLines(t, h.path, lines(0, 10))
	h.start()
	h.waitLines(10)
	for r := range 5 {
		appendLines(t, h.path, lines(10+r*20, 20+r*20))
		rotate(t, h.path)
		appendLines(t, h.path, lines(20+r*20, 30+r*20))
	}
	got := h.waitLines(110)
	h.stop()
	assertLines(t, got, lines(0, 110))
	if n := testutil.ToFloat64(h.src.m.rotations); n != 5 {
		t.Errorf("rotations counted %v, want 5", n)
	}
}

func TestRestartContinuesExactlyAtTheCheckpoint(t *testing.T) {
	h := newHarness(t)
	appendLines(t, h.path, lines(0, 50))
	h.start()
	h.waitLines(50)
	h.stop()

	appendLines(t, h.path, lines(50, 60))
	rotate(t, h.path)
	appendLines(t, h.path, lines(60, 70))
	h.events = nil
	h.start()
	got := h.waitLines(20)
	h.stop()
	assertLines(t, got, lines(50, 70))
}

func TestCatchUpThroughCompressedBackups(t *testing.T) {
	h := newHarness(t)
	appendLines(t, h.path, lines(0, 20))
	h.start()
	h.waitLines(20)
	h.stop()

	// While the agent is down: the file it was reading is rotated and
	// compressed (its plain copy deleted), and two more rotations happen.
	appendLines(t, h.path, lines(20, 30))
	compress(t, rotate(t, h.path))
	appendLines(t, h.path, lines(30, 40))
	compress(t, rotate(t, h.path))
	appendLines(t, h.path, lines(40, 50))
	rotate(t, h.path) // left uncompressed
	appendLines(t, h.path, lines(50, 55))

	h.events = nil
	h.start()
	got := h.waitLines(35)
	h.stop()
	assertLines(t, got, lines(20, 55))
	if n := testutil.ToFloat64(h.src.m.lossIncidents); n != 0 {
		t.Errorf("reported %v losses, want none", n)
	}
}

func TestInodeReusedByOtherContentIsNotSeekedInto(t *testing.T) {
	h := newHarness(t)
	appendLines(t, h.path, lines(0, 30))
	h.start()
	h.waitLines(30)
	h.stop()

	// Delete the file and write another with different content, then make
	// the checkpoint claim the new file's inode: exactly what inode reuse
	// after a delete (common on tmpfs) looks like.
	if err := os.Remove(h.path); err != nil {
		t.Fatal(err)
	}
	appendLines(t, h.path, lines(1000, 1040))
	fi, err := os.Stat(h.path)
	if err != nil {
		t.Fatal(err)
	}
	var st state
	if _, err := h.src.store.Load(h.src.name, &st); err != nil {
		t.Fatal(err)
	}
	st.Position.File.fileID = idOf(fi)
	if err := h.src.store.Save(h.src.name, st); err != nil {
		t.Fatal(err)
	}

	h.events = nil
	h.start()
	got := h.waitLines(41) // the loss report, then the new file from its start
	h.stop()
	if !strings.HasPrefix(got[0], `{"siemship_data_loss":`) {
		t.Fatalf("first event is %.80q, want a data loss report", got[0])
	}
	assertLines(t, got[1:], lines(1000, 1040))
	if n := testutil.ToFloat64(h.src.m.mismatches); n != 1 {
		t.Errorf("identity mismatches %v, want 1", n)
	}
}

func TestFileShorterThanTheFingerprint(t *testing.T) {
	h := newHarness(t)
	short := []string{`{"test":{},"time":"2026-11-22T10:00:00Z"}`}
	appendLines(t, h.path, short)
	h.start()
	h.waitLines(1)
	h.stop()
	if pos, _ := h.src.Committed(); pos.File.Len != len(short[0])+1 {
		t.Fatalf("fingerprint covers %d bytes, want the whole short file (%d)", pos.File.Len, len(short[0])+1)
	}

	// The file grows past a KiB and is rotated while the agent is down; the
	// short fingerprint must still find it, at the right offset.
	appendLines(t, h.path, lines(0, 5))
	rotate(t, h.path)
	appendLines(t, h.path, lines(5, 8))
	h.events = nil
	h.start()
	got := h.waitLines(8)
	h.stop()
	assertLines(t, got, lines(0, 8))
}

func TestTruncatedFileIsReadAgainFromTheStart(t *testing.T) {
	h := newHarness(t)
	appendLines(t, h.path, lines(0, 20))
	h.start()
	h.waitLines(20)
	if err := os.Truncate(h.path, 0); err != nil {
		t.Fatal(err)
	}
	appendLines(t, h.path, lines(100, 103))
	got := h.waitLines(23)
	h.stop()
	assertLines(t, got[20:], lines(100, 103))
	if n := testutil.ToFloat64(h.src.m.truncations); n != 1 {
		t.Errorf("truncations %v, want 1", n)
	}
}

func TestPartialLastLineWaitsForItsNewline(t *testing.T) {
	h := newHarness(t)
	appendLines(t, h.path, lines(0, 2))
	full := line(2)
	f, err := os.OpenFile(h.path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteString(full[:500])
	h.start()
	h.waitLines(2)
	h.waitIdle(2) // the reader has read the half line and found no newline
	if n := len(h.lines()); n != 2 {
		t.Fatalf("%d events before the line was complete, want 2", n)
	}
	f.WriteString(full[500:] + "\n")
	got := h.waitLines(3)
	h.stop()
	assertLines(t, got, lines(0, 3))
}

func TestUnterminatedLastLineOfARotatedFileIsShipped(t *testing.T) {
	h := newHarness(t)
	appendLines(t, h.path, lines(0, 2))
	f, _ := os.OpenFile(h.path, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(line(2))
	f.Close()
	rotate(t, h.path)
	appendLines(t, h.path, lines(3, 4))
	h.start()
	got := h.waitLines(4)
	h.stop()
	assertLines(t, got, lines(0, 4))
}

func TestFiveMiBLineIsShippedTruncatedAndFlagged(t *testing.T) {
	h := newHarness(t)
	huge := `{"process_exec":{"process":{"arguments":"` + strings.Repeat("x", 5<<20) + `"}},"time":"2026-11-22T10:00:00Z"}`
	appendLines(t, h.path, lines(0, 1))
	appendLines(t, h.path, []string{huge})
	appendLines(t, h.path, lines(1, 3))
	h.start()
	h.waitLines(4)
	h.stop()
	evs := h.eventsCopy()
	if evs[1].Flags&event.Truncated == 0 || len(evs[1].Raw) != h.cfg.MaxLineBytes || evs[1].Size != len(huge) {
		t.Fatalf("long line: flags=%v len=%d size=%d, want truncated to %d of %d",
			evs[1].Flags, len(evs[1].Raw), evs[1].Size, h.cfg.MaxLineBytes, len(huge))
	}
	if string(evs[1].Raw) != huge[:h.cfg.MaxLineBytes] {
		t.Fatal("truncated line is not the line's first bytes")
	}
	assertLines(t, []string{string(evs[0].Raw), string(evs[2].Raw), string(evs[3].Raw)}, lines(0, 3))
	if n := testutil.ToFloat64(h.src.m.longLines); n != 1 {
		t.Errorf("long lines %v, want 1", n)
	}
	// The checkpoint is after the last line: a restart reads nothing again.
	h.events = nil
	h.start()
	h.waitIdle(2)
	h.stop()
	if n := len(h.lines()); n != 0 {
		t.Fatalf("restart re-read %d events", n)
	}
}

func TestDataDeletedBeforeItWasReadIsReported(t *testing.T) {
	h := newHarness(t)
	appendLines(t, h.path, lines(0, 10))
	h.start()
	h.waitLines(10)
	h.stop()

	// Down while Tetragon writes and rotates past its retention.
	appendLines(t, h.path, lines(10, 20))
	first := rotate(t, h.path)
	appendLines(t, h.path, lines(20, 30))
	second := rotate(t, h.path)
	appendLines(t, h.path, lines(30, 40))
	os.Remove(first)
	os.Remove(second)

	h.events = nil
	h.start()
	got := h.waitLines(11)
	h.stop()
	var report struct {
		Loss Loss `json:"siemship_data_loss"`
	}
	if err := json.Unmarshal([]byte(got[0]), &report); err != nil {
		t.Fatalf("first event is not a loss report: %v: %.100q", err, got[0])
	}
	wantFP := fingerprintOf([]byte(strings.Join(lines(0, 20), "\n") + "\n"))
	l := report.Loss
	if l.From.File.fingerprint != wantFP || l.From.Offset != int64(10*(len(line(0))+1)) {
		t.Errorf("lost_from = %+v, want file %v at offset %d", l.From, wantFP, 10*(len(line(0))+1))
	}
	if l.ResumedAt == nil || l.ResumedAt.fingerprint != fingerprintOf([]byte(line(30)+"\n")) {
		t.Errorf("resumed_at = %+v, want the live file", l.ResumedAt)
	}
	assertLines(t, got[1:], lines(30, 40))
	if n := testutil.ToFloat64(h.src.m.lossIncidents); n != 1 {
		t.Errorf("loss incidents %v, want 1", n)
	}
}

func TestBackPressurePausesTheReader(t *testing.T) {
	h := newHarness(t)
	h.hold = make(chan struct{})
	h.budget = 4 * int64(h.cfg.ReadBufferBytes) // 256 KiB; the file is 2 MB
	appendLines(t, h.path, lines(0, 2000))
	h.start()
	waitUntil(t, "the reader waits for budget", func() bool { return testutil.ToFloat64(h.src.m.budgetWaits) >= 1 })
	// Nothing is acknowledged, so nothing is released: the reader is
	// stopped for good, with no more than the budget read.
	read := int64(testutil.ToFloat64(h.src.m.bytesRead))
	if read > h.budget || read < h.budget-int64(h.cfg.ReadBufferBytes) {
		t.Fatalf("reader read %d bytes while nothing was acknowledged; want the budget of %d, less at most one read buffer", read, h.budget)
	}
	close(h.hold)
	got := h.waitLines(2000)
	h.stop()
	assertLines(t, got, lines(0, 2000))
}

func TestBackupsDeletedWhileTheReaderWasBehindAreReported(t *testing.T) {
	h := newHarness(t)
	h.hold = make(chan struct{})
	appendLines(t, h.path, lines(0, 300)) // several batches: the reader blocks inside this file
	h.start()
	waitUntil(t, "the reader sent a batch of the live file", func() bool { return h.received.Load() >= 1 })

	// While the reader is paused by back-pressure: the file it reads is
	// rotated, two more rotations happen, and retention deletes the next
	// file before the reader ever reached it.
	own := rotate(t, h.path)
	appendLines(t, h.path, lines(300, 310))
	skipped := rotate(t, h.path)
	appendLines(t, h.path, lines(310, 320))
	rotate(t, h.path)
	appendLines(t, h.path, lines(320, 330))
	// Retention runs well after the rename: the watcher has seen the file.
	waitUntil(t, "the watcher knows "+skipped, func() bool { return h.src.watch.knows(skipped) })
	os.Remove(own) // the reader holds it open: nothing lost there
	os.Remove(skipped)
	close(h.hold)

	got := h.waitLines(321)
	h.stop()
	assertLines(t, got[:300], lines(0, 300))
	var report struct {
		Loss Loss `json:"siemship_data_loss"`
	}
	if err := json.Unmarshal([]byte(got[300]), &report); err != nil {
		t.Fatalf("event after the first file is not a loss report: %v: %.100q", err, got[300])
	}
	if l := report.Loss; len(l.Files) != 1 || !strings.HasSuffix(skipped, l.Files[0]) || l.BytesAtLeast == 0 {
		t.Errorf("loss report names %v with %d bytes, want only %s", l.Files, l.BytesAtLeast, skipped)
	}
	assertLines(t, got[301:], lines(310, 330))
}

func TestMissingFileIsReportedUntilItAppears(t *testing.T) {
	h := newHarness(t)
	if err := os.Mkdir(h.path, 0o755); err != nil { // not a regular file: nothing to read yet
		t.Fatal(err)
	}
	h.start()
	h.waitWaits(2)
	ok, why := h.src.Ready()
	if ok || !strings.Contains(why, "waiting for Tetragon's export file") {
		t.Fatalf("Ready() = %v %q, want not ready, waiting for the file", ok, why)
	}
	os.Remove(h.path)
	appendLines(t, h.path, lines(0, 3))
	got := h.waitLines(3)
	h.stop()
	assertLines(t, got, lines(0, 3))
	if ok, why := h.src.Ready(); !ok {
		t.Fatalf("not ready after reading: %q", why)
	}
}

func TestStartAtEndSkipsExistingData(t *testing.T) {
	h := newHarness(t)
	h.cfg.StartAt = "end"
	appendLines(t, h.path, lines(0, 10))
	f, _ := os.OpenFile(h.path, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(line(10)[:100]) // a half-written line: starting inside it would ship garbage
	f.Close()
	h.start()
	waitUntil(t, "the source started at the end", func() bool { ok, _ := h.src.Ready(); return ok })
	f, _ = os.OpenFile(h.path, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(line(10)[100:] + "\n")
	f.Close()
	appendLines(t, h.path, lines(11, 13))
	got := h.waitLines(3)
	h.stop()
	assertLines(t, got, lines(10, 13))
}

// A writer rotating as fast as it can while the reader follows: with
// nothing deleted, every line must arrive exactly once and in order. This
// is what catches races between listing the directory and opening files.
func TestFollowsAFastRotatingWriterWithoutLoss(t *testing.T) {
	h := newHarness(t)
	h.cfg.PollInterval = 5 * time.Millisecond
	h.start()
	lj := &lumberjack.Logger{Filename: h.path, MaxSize: 1 << 20, MaxBackups: 0}
	defer lj.Close()
	const total = 4000
	for i := range total {
		if i%7 == 0 && i > 0 {
			// Backup names have millisecond resolution: two rotations in
			// one millisecond would overwrite a backup (lumberjack's limit).
			time.Sleep(2 * time.Millisecond)
			if err := lj.Rotate(); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := lj.Write([]byte(line(i) + "\n")); err != nil {
			t.Fatal(err)
		}
	}
	got := h.waitLines(total)
	h.stop()
	assertLines(t, got, lines(0, total))
}
