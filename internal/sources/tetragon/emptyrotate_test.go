package tetragon

import (
	"os"
	"path/filepath"
	"testing"
)

// The reader waits at the end of an empty live file; Tetragon rotates it and
// lumberjack compresses and deletes the plain backup before the watcher ever
// sees it under its backup name (here: it is moved out of the directory and
// its .gz appears). The empty file cannot be matched by content, which must
// not send the reader back to the oldest backup.
func TestEmptyLiveFileRotatedAndCompressedUnseenReshipsNothing(t *testing.T) {
	h := newHarness(t)
	appendLines(t, backupName(h.dir, 1), lines(0, 5))
	appendLines(t, backupName(h.dir, 2), lines(5, 10))
	appendLines(t, h.path, nil)
	h.start()
	h.waitLines(10)
	h.waitIdle(2) // at the end of the empty live file

	elsewhere := filepath.Join(t.TempDir(), "renamed")
	if err := os.Rename(h.path, elsewhere); err != nil {
		t.Fatal(err)
	}
	gz := backupName(h.dir, 3) + ".gz"
	if err := os.WriteFile(gz+".tmp", gzipped(t, nil), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(gz+".tmp", gz); err != nil {
		t.Fatal(err)
	}
	appendLines(t, h.path, lines(10, 13))
	h.waitLines(13)
	h.waitIdle(2)
	h.stop()
	assertLines(t, h.lines(), lines(0, 13))
}
