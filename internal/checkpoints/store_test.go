package checkpoints

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type pos struct {
	Inode  uint64 `json:"inode"`
	Offset int64  `json:"offset"`
}

func TestSaveLoadRoundTrip(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "state"))
	if err != nil {
		t.Fatal(err)
	}
	var got pos
	if ok, err := s.Load("tetragon", &got); ok || err != nil {
		t.Fatalf("empty store: ok=%v err=%v, want false, nil", ok, err)
	}
	for _, want := range []pos{{1, 10}, {2, 0}, {2, 99999}} {
		if err := s.Save("tetragon", want); err != nil {
			t.Fatal(err)
		}
		if ok, err := s.Load("tetragon", &got); !ok || err != nil || got != want {
			t.Fatalf("load = %+v ok=%v err=%v, want %+v", got, ok, err, want)
		}
	}
	entries, _ := os.ReadDir(s.Dir())
	if len(entries) != 1 {
		t.Fatalf("state dir holds %d files, want exactly the checkpoint (no temp leftovers)", len(entries))
	}
}

func TestLoadCorruptIsAnErrorNamingTheFile(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.Path("x"), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	var p pos
	_, err = s.Load("x", &p)
	if err == nil || !strings.Contains(err.Error(), s.Path("x")) {
		t.Fatalf("err = %v, want an error naming %s", err, s.Path("x"))
	}
}

func TestOpenRejectsUnwritableDir(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(filepath.Join(file, "sub")); err == nil {
		t.Fatal("Open under a regular file succeeded")
	}
}

func TestInvalidName(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Save("../escape", pos{}); err == nil {
		t.Fatal("a name with a path separator was accepted")
	}
}
