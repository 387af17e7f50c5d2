package delivery

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/siemship/siemship/internal/event"
)

func deadLetterFor(t *testing.T, path string, maxBytes int64) (*deadLetter, *metrics) {
	t.Helper()
	m, err := newMetrics(prometheus.NewRegistry(), "test")
	if err != nil {
		t.Fatal(err)
	}
	return newDeadLetter(path, maxBytes, "test", m), m
}

func rejected(n int) []*event.Event {
	out := make([]*event.Event, n)
	for i := range out {
		raw := fmt.Sprintf(`{"id":%d,"pad":"%s"}`, i, strings.Repeat("x", 200))
		out[i] = &event.Event{Raw: []byte(raw), Size: len(raw)}
	}
	return out
}

// A systemic rejection cannot fill the disk: the file is rotated at the
// cap, at most two files' worth is kept, what is discarded is counted, and
// writing goes on (readiness says why).
func TestDeadLetterIsCappedAndRotated(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dead.ndjson")
	d, m := deadLetterFor(t, path, 64<<10)
	for range 100 {
		if err := d.write(time.Now(), rejected(10), 400, "rejected as malformed"); err != nil {
			t.Fatal(err)
		}
	}
	cur, err1 := os.Stat(path)
	old, err2 := os.Stat(path + ".1")
	if err1 != nil || err2 != nil {
		t.Fatalf("files: %v %v", err1, err2)
	}
	if cur.Size() > 64<<10 || old.Size() > 64<<10 {
		t.Errorf("sizes %d and %d exceed the cap", cur.Size(), old.Size())
	}
	if testutil.ToFloat64(m.deadLetterRotations) < 2 || testutil.ToFloat64(m.deadLetterDiscarded) == 0 {
		t.Errorf("rotations %v, discarded %v", testutil.ToFloat64(m.deadLetterRotations), testutil.ToFloat64(m.deadLetterDiscarded))
	}
	if !strings.Contains(d.fullReason(), "dead_letter_max_bytes") {
		t.Errorf("readiness detail %q", d.fullReason())
	}
	for _, p := range []string{path, path + ".1"} {
		data, _ := os.ReadFile(p)
		for _, l := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
			if !json.Valid(l) {
				t.Fatalf("%s: invalid line %.100q", p, l)
			}
		}
	}
}

// After a crash left half a line, the next record starts on a line of its
// own: the torn line stays apart, every new line is valid JSON.
func TestDeadLetterAfterTornLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dead.ndjson")
	os.WriteFile(path, []byte(`{"time":"2026-12-01T00:00:00Z","sink":"test","sta`), 0o600)
	d, _ := deadLetterFor(t, path, 1<<20)
	if err := d.write(time.Now(), rejected(2), 400, "rejected as malformed"); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != 3 || !json.Valid([]byte(lines[1])) || !json.Valid([]byte(lines[2])) {
		t.Fatalf("lines %q", lines)
	}
}
