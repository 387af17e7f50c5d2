package logpush

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/klauspost/compress/gzip"
	"golang.org/x/sync/semaphore"

	"github.com/siemship/siemship/internal/event"
)

// decodeAll runs both passes over body as the handler does, with tiny
// buffers so records straddle them, and returns the events (or the
// rejection). Every grant must be back in the budget afterwards.
func decodeAll(t *testing.T, body []byte, gz bool, limit int64, batch, maxRecord int) ([]event.Event, error) {
	const total = 1 << 30
	budget := semaphore.NewWeighted(total)
	if !budget.TryAcquire(int64(batch)) {
		t.Fatal("budget")
	}
	sp := &splitter{batch: batch, maxRecord: maxRecord, budget: budget, reserved: int64(batch)}
	b, err := receive(bytes.NewReader(body), gz, limit, budget, new(gzip.Reader))
	var events []event.Event
	if err == nil {
		sp.src, sp.left = b.reader(), b.size
		if gz {
			zr := new(gzip.Reader)
			if err := zr.Reset(sp.src); err != nil {
				t.Fatalf("second pass refused the header the first pass accepted: %v", err)
			}
			sp.src = zr
		}
		for {
			c, err := sp.next(context.Background())
			if errors.Is(err, errSplitDone) {
				break
			}
			if err != nil {
				t.Fatalf("second pass: %v", err)
			}
			for _, e := range c.events {
				e.Raw = bytes.Clone(e.Raw)
				events = append(events, e)
			}
			budget.Release(c.cost) // the batch is done
		}
		b.release()
	}
	sp.releaseReserved()
	if !budget.TryAcquire(total) {
		t.Fatal("budget not returned in full")
	}
	return events, err
}

// referenceRecords is what any body must decode to: its non-blank lines,
// without CR before the newline, cut at maxRecord.
func referenceRecords(data []byte, maxRecord int) []event.Event {
	var out []event.Event
	for line := range bytes.Lines(data) {
		line = bytes.TrimSuffix(line, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		switch {
		case isBlank(line):
		case len(line) > maxRecord:
			out = append(out, event.Event{Raw: line[:maxRecord], Size: len(line), Flags: event.Truncated})
		default:
			out = append(out, event.Event{Raw: line, Size: len(line)})
		}
	}
	return out
}

// FuzzDecodeBody: any body, gzipped by the test or taken as an arbitrary
// (likely corrupt) gzip stream, decodes to exactly the reference records or
// is refused whole; nothing panics and the budget always comes back.
func FuzzDecodeBody(f *testing.F) {
	f.Add([]byte(rec1+"\n"+rec2+"\n"), false)
	f.Add([]byte("a\r\n\n  \nbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\nc"), false)
	f.Add(gzipBytes([]byte(rec1+"\n")), true)
	f.Add(corruptGzip(rec1), true)
	f.Add(append(gzipBytes([]byte("x\n")), gzipBytes([]byte("y\n"))...), true)
	f.Fuzz(func(t *testing.T, data []byte, rawGzip bool) {
		if len(data) > 1<<16 {
			return
		}
		const limit, batch, maxRecord = 4 << 10, 64, 24
		if rawGzip {
			// Arbitrary bytes as a gzip stream: refused, or decoded the same
			// as their decompression.
			events, err := decodeAll(t, data, true, limit, batch, maxRecord)
			if err != nil {
				var rej *rejection
				if !errors.As(err, &rej) || (rej.status != 400 && rej.status != 413) {
					t.Fatalf("error %v, want a 400 or 413 rejection", err)
				}
				return
			}
			zr, err := gzip.NewReader(bytes.NewReader(data))
			if err != nil {
				t.Fatalf("accepted a body the reference cannot open: %v", err)
			}
			var plain bytes.Buffer
			if _, err := plain.ReadFrom(zr); err != nil {
				t.Fatalf("accepted a body the reference cannot decode: %v", err)
			}
			compare(t, events, referenceRecords(plain.Bytes(), maxRecord))
			return
		}
		for _, gz := range []bool{false, true} {
			body := data
			if gz {
				body = gzipBytes(data)
			}
			events, err := decodeAll(t, body, gz, limit, batch, maxRecord)
			if len(data) > limit {
				var rej *rejection
				if !errors.As(err, &rej) || rej.status != 413 {
					t.Fatalf("gzip %v: %d bytes over a %d limit: %v, want 413", gz, len(data), limit, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("gzip %v: %v", gz, err)
			}
			compare(t, events, referenceRecords(data, maxRecord))
		}
	})
}

func compare(t *testing.T, got, want []event.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i].Raw, want[i].Raw) || got[i].Size != want[i].Size || got[i].Flags != want[i].Flags {
			t.Fatalf("record %d: got %q size %d flags %b, want %q size %d flags %b",
				i, got[i].Raw, got[i].Size, got[i].Flags, want[i].Raw, want[i].Size, want[i].Flags)
		}
	}
}
