package tetragon

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// gzipped returns ls as a gzip stream, one line per line.
func gzipped(t *testing.T, ls []string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	for _, l := range ls {
		if _, err := zw.Write([]byte(l + "\n")); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// decodableLines counts the whole lines a gzip reader gets out of data
// before it fails.
func decodableLines(t *testing.T, data []byte) int {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return 0
	}
	out, err := io.ReadAll(zr)
	if err == nil {
		t.Fatal("the stream is not corrupt")
	}
	return bytes.Count(out, []byte{'\n'})
}

func lossReports(t *testing.T, got []string) []Loss {
	t.Helper()
	var out []Loss
	for _, l := range got {
		var r struct {
			Loss *Loss `json:"siemship_data_loss"`
		}
		if json.Unmarshal([]byte(l), &r) == nil && r.Loss != nil {
			out = append(out, *r.Loss)
		}
	}
	return out
}

// A truncated .gz backup (a disk that filled while lumberjack compressed, a
// copy cut short) must not stall the reader: its whole lines are shipped,
// the unreadable rest reported lost, and reading goes on with the next file.
func TestTruncatedGzipBackupShipsItsWholeLinesAndMovesOn(t *testing.T) {
	h := newHarness(t)
	data := gzipped(t, lines(0, 200))
	cut := data[:len(data)*6/10]
	ok := decodableLines(t, cut)
	if ok == 0 || ok >= 200 {
		t.Fatalf("%d whole lines decodable from the cut stream; the test wants some, not all", ok)
	}
	if err := os.WriteFile(backupName(h.dir, 1)+".gz", cut, 0o600); err != nil {
		t.Fatal(err)
	}
	appendLines(t, backupName(h.dir, 2), lines(200, 210))
	appendLines(t, h.path, lines(210, 215))
	h.start()
	h.waitIdle(2)
	h.stop()
	got := h.lines()
	if len(got) != ok+1+15 {
		t.Fatalf("got %d events, want %d whole lines of the cut backup, a loss report and the 15 lines after", len(got), ok)
	}
	assertLines(t, got[:ok], lines(0, ok))
	losses := lossReports(t, got[ok:ok+1])
	if len(losses) != 1 || !strings.Contains(losses[0].Reason, "corrupt") || losses[0].ResumedAt == nil {
		t.Fatalf("event after the whole lines: %.300s, want a loss report for the corrupt rest", got[ok])
	}
	assertLines(t, got[ok+1:], lines(200, 215))
	if n := testutil.ToFloat64(h.src.m.lossIncidents); n != 1 {
		t.Errorf("loss incidents %v, want 1", n)
	}
}

// A .gz whose header is not gzip at all is reported lost as a whole.
func TestGarbageGzipBackupIsReportedLostAndSkipped(t *testing.T) {
	h := newHarness(t)
	appendLines(t, backupName(h.dir, 1), lines(0, 5))
	if err := os.WriteFile(backupName(h.dir, 2)+".gz", []byte("this is not gzip\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	appendLines(t, h.path, lines(5, 10))
	h.start()
	h.waitIdle(2)
	h.stop()
	got := h.lines()
	if len(got) != 11 {
		t.Fatalf("got %d events, want 5 lines, a loss report, 5 lines", len(got))
	}
	assertLines(t, got[:5], lines(0, 5))
	if l := lossReports(t, got[5:6]); len(l) != 1 || len(l[0].Files) != 1 || !strings.HasSuffix(backupName(h.dir, 2)+".gz", l[0].Files[0]) {
		t.Fatalf("event 5: %.300s, want a loss report naming the garbage file", got[5])
	}
	assertLines(t, got[6:], lines(5, 10))
}

func TestGzipErrorsAreClassified(t *testing.T) {
	if err := gzipError("x", io.ErrUnexpectedEOF); !errors.Is(err, errCorrupt) {
		t.Errorf("unexpected EOF: %v, want corrupt", err)
	}
	if err := gzipError("x", &os.PathError{Op: "read", Path: "x", Err: os.ErrPermission}); errors.Is(err, errCorrupt) {
		t.Errorf("an I/O error is not corruption: %v", err)
	}
}
