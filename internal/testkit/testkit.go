// Package testkit holds small helpers shared by tests.
package testkit

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// RepoRoot returns the directory holding go.mod, walking up from the
// working directory (a package directory under go test).
func RepoRoot(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// SharedTestdata returns the path of a file in the repository's test data
// (testdata/ at its root), shared by the tests of several packages.
func SharedTestdata(tb testing.TB, elem ...string) string {
	tb.Helper()
	p := filepath.Join(append([]string{RepoRoot(tb), "testdata"}, elem...)...)
	if _, err := os.Stat(p); err != nil {
		tb.Fatalf("shared test data missing: %v", err)
	}
	return p
}

// TetragonSamples returns the sample Tetragon export lines.
func TetragonSamples(tb testing.TB) [][]byte {
	tb.Helper()
	data, err := os.ReadFile(SharedTestdata(tb, "tetragon", "docs-examples.ndjson"))
	if err != nil {
		tb.Fatal(err)
	}
	var out [][]byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) > 0 {
			out = append(out, bytes.Clone(sc.Bytes()))
		}
	}
	if len(out) == 0 {
		tb.Fatal("no sample lines")
	}
	return out
}

// KeptDir is like t.TempDir but keeps the directory when the test fails, so
// logs and state can be inspected; its path is logged then.
func KeptDir(tb testing.TB) string {
	tb.Helper()
	dir, err := os.MkdirTemp("", "siemship-"+filepath.Base(tb.Name())+"-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("kept %s for inspection", dir)
			return
		}
		os.RemoveAll(dir)
	})
	return dir
}
