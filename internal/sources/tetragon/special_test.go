package tetragon

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// backupName is a lumberjack backup name for the n-th second of the test day.
func backupName(dir string, sec int) string {
	return filepath.Join(dir, "tetragon-2026-11-22T09-00-"+twoDigits(sec)+".000.log")
}

func twoDigits(n int) string { return string(rune('0'+n/10)) + string(rune('0'+n%10)) }

// The agent runs as root: a symlink with a backup's name pointing at a
// secret (the ingest token, a service-account token) must never be read, nor
// a FIFO (opening it would block the reader) or a device. They are reported
// once each and skipped.
func TestSymlinksAndSpecialFilesAreNeverRead(t *testing.T) {
	h := newHarness(t)
	secret := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(secret, []byte(`{"process_exec":{"secret":"SECRET-TOKEN"},"time":"2026-11-22T10:00:00Z"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, backupName(h.dir, 1)); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(backupName(h.dir, 2), 0o600); err != nil {
		t.Fatal(err)
	}
	appendLines(t, backupName(h.dir, 3), lines(0, 3))
	appendLines(t, h.path, lines(3, 5))
	h.start()
	h.waitLines(5)
	h.waitIdle(2)
	h.stop()
	assertLines(t, h.lines(), lines(0, 5))
	if n := testutil.ToFloat64(h.src.m.ignoredFiles); n != 2 {
		t.Errorf("ignored files counted %v, want 2 (the symlink and the FIFO, once each)", n)
	}
}

// The live file itself as a symlink is not followed either.
func TestLiveFileSymlinkIsNotFollowed(t *testing.T) {
	h := newHarness(t)
	secret := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(secret, []byte(`{"secret":"SECRET-TOKEN"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, h.path); err != nil {
		t.Fatal(err)
	}
	h.start()
	waitUntil(t, "the symlink is reported", func() bool { return testutil.ToFloat64(h.src.m.ignoredFiles) == 1 })
	h.waitWaits(2)
	h.stop()
	for _, l := range h.lines() {
		if strings.Contains(l, "SECRET") {
			t.Fatalf("the symlink's target was shipped: %q", l)
		}
	}
}

// A name replaced by a symlink between the listing and the open is not
// followed: the open itself refuses.
func TestOpenRefusesASymlinkPlantedAfterTheListing(t *testing.T) {
	dir := t.TempDir()
	set := newFileSet(filepath.Join(dir, "tetragon.log"))
	appendLines(t, filepath.Join(dir, "tetragon.log"), lines(0, 1))
	list, err := set.scan()
	if err != nil || len(list) != 1 {
		t.Fatalf("scan = %v, %v", list, err)
	}
	secret := filepath.Join(t.TempDir(), "token")
	os.WriteFile(secret, []byte("SECRET\n"), 0o600)
	os.Remove(filepath.Join(dir, "tetragon.log"))
	if err := os.Symlink(secret, filepath.Join(dir, "tetragon.log")); err != nil {
		t.Fatal(err)
	}
	list[0].id = fileID{} // whatever the scan saw, the open must check
	of, err := set.open(list[0], 0, nil)
	if err == nil {
		of.Close()
		t.Fatal("opened a symlink")
	}
	if !errors.Is(err, errNotRegular) {
		t.Errorf("open error %v, want errNotRegular", err)
	}
	if _, err := set.readHead(list[0], 10); !errors.Is(err, errNotRegular) {
		t.Errorf("readHead error %v, want errNotRegular", err)
	}
}
