package tetragon

import (
	"bytes"
	"os"
	"testing"
	"time"

	"github.com/siemship/siemship/internal/event"
	"github.com/siemship/siemship/internal/testkit"
)

// FuzzLines writes arbitrary bytes in two appends and checks that the reader
// emits exactly the complete lines, truncating the long ones, whatever the
// content and wherever reads split it.
func FuzzLines(f *testing.F) {
	for _, s := range testkit.TetragonSamples(f) {
		f.Add(append(s, '\n'), uint16(len(s)/2))
	}
	f.Add([]byte("a\n\nbb\r\n"+string(bytes.Repeat([]byte("x"), 300))+"\ncc"), uint16(3))
	f.Fuzz(func(t *testing.T, data []byte, cut uint16) {
		if len(data) > 1<<16 {
			return
		}
		const maxLine = 100
		want := expectedEvents(data, maxLine)
		h := newHarness(t)
		h.cfg.MaxLineBytes = maxLine
		h.cfg.ReadBufferBytes = 16
		h.cfg.PollInterval = 5 * time.Millisecond
		split := min(int(cut), len(data))
		if err := os.WriteFile(h.path, data[:split], 0o600); err != nil {
			t.Fatal(err)
		}
		h.start()
		f, err := os.OpenFile(h.path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.Write(data[split:])
		f.Close()
		h.waitIdle(2) // everything on disk was read and emitted: nothing more can come
		h.stop()
		got := h.eventsCopy()
		if len(got) != len(want) {
			t.Fatalf("got %d events, want %d", len(got), len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i].Raw, want[i].Raw) || got[i].Size != want[i].Size || got[i].Flags != want[i].Flags {
				t.Fatalf("event %d: got %q size %d flags %b, want %q size %d flags %b",
					i, got[i].Raw, got[i].Size, got[i].Flags, want[i].Raw, want[i].Size, want[i].Flags)
			}
		}
	})
}

// expectedEvents is the reference: complete non-empty lines, long ones cut.
func expectedEvents(data []byte, maxLine int) []event.Event {
	var out []event.Event
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			return out
		}
		l := data[:i]
		data = data[i+1:]
		switch {
		case len(l) == 0:
		case len(l) > maxLine:
			out = append(out, event.Event{Raw: l[:maxLine], Size: len(l), Flags: event.Truncated})
		default:
			out = append(out, event.Event{Raw: l, Size: len(l)})
		}
	}
}
