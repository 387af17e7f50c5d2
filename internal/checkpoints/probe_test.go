package checkpoints

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
)

// A save writes its temporary file in the state directory itself: renameio
// without WithTempDir probes the system temp directory on every save,
// creating and renaming test files there.
func TestSaveDoesNotProbeTheTempDirectory(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	s, err := Open(filepath.Join(t.TempDir(), "state"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Add(tmp); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := s.Save("tetragon", pos{1, int64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	// inotify reports events in order: everything before the sentinel's
	// creation was done by the saves.
	sentinel := filepath.Join(tmp, "sentinel")
	if err := os.WriteFile(sentinel, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var seen []string
	timeout := time.After(30 * time.Second)
	for {
		select {
		case ev := <-w.Events:
			if ev.Name == sentinel {
				if len(seen) > 0 {
					t.Fatalf("saves touched the temp directory: %v", seen)
				}
				return
			}
			seen = append(seen, ev.String())
		case err := <-w.Errors:
			t.Fatal(err)
		case <-timeout:
			t.Fatal("no event for the sentinel file")
		}
	}
}

// BenchmarkSave measures one checkpoint write (temp file, fsync, rename,
// directory fsync): the cost of saving soon after every commit.
func BenchmarkSave(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "state"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if err := s.Save("tetragon", pos{1, int64(i)}); err != nil {
			b.Fatal(err)
		}
	}
}
