package demo

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// The README's first command must work: a short demo with rotations,
// compression and faults accounts for every event.
func TestDemoAccountsForEveryEvent(t *testing.T) {
	var out bytes.Buffer
	err := Run(context.Background(), Options{
		Events: 4000, Rate: 4000, RotateKiB: 256, Backups: 5, Compress: true, Faults: 0.1, Dir: t.TempDir(),
	}, &out)
	if err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out.String())
	}
	for _, want := range []string{"written by the Tetragon-like writer: 4000 events", "missing:                            0"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
}
