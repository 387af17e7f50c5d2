package spool

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// spoolLines writes lines 0..n-1 in batches of per with the sink down and
// stops, leaving them on disk.
func spoolLines(t *testing.T, cfg Config, n, per int) {
	t.Helper()
	r := start(t, cfg, newGateSink(false))
	for i := 0; i < n; i += per {
		r.send(t, i, min(i+per, n))
	}
	eventually(t, "all acknowledged upstream", 5*time.Second, func() bool { return r.acked.Load() == int64(n) })
	r.stop(t)
}

// A crash cuts the newest segment anywhere: on open the cut record is
// removed, every whole record before it is replayed, nothing is reported
// lost (a record cut short was never acknowledged upstream).
func TestTornTailAtRandomPointsIsCut(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for trial := range 8 {
		dir := t.TempDir()
		cfg := testConfig(dir)
		spoolLines(t, cfg, 400, 4)
		segs := segments(t, dir)
		path := segs[0]
		fi, _ := os.Stat(path)
		cut := rng.Int64N(fi.Size())
		if err := os.Truncate(path, cut); err != nil {
			t.Fatal(err)
		}
		for _, p := range segs[1:] {
			os.Remove(p) // as if the crash came before the next run
		}
		inner := newGateSink(true)
		r := start(t, cfg, inner)
		// What survives is a prefix of whole records.
		eventually(t, "replay of the surviving prefix", 5*time.Second, func() bool {
			return r.s.isOpen() && r.s.empty() && r.s.Stats().Records == 0
		})
		r.stop(t)
		lines, losses := inner.data()
		if len(losses) != 0 {
			t.Fatalf("trial %d (cut at %d of %d): a torn tail was reported as loss: %s", trial, cut, fi.Size(), losses[0])
		}
		checkSeq(t, lines, len(lines))
		if len(lines) > 400 || len(lines)%4 != 0 {
			t.Fatalf("trial %d: %d lines replayed: not a prefix of whole records", trial, len(lines))
		}
		t.Logf("cut at %d of %d bytes: %d lines replayed, torn tails %v", cut, fi.Size(), len(lines), testutil.ToFloat64(r.s.m.tornTails))
	}
}

// Damage in the middle of a segment: the span is skipped and reported
// (counter, loss event), every intact record after it is still replayed,
// and the reader does not stop.
func TestCorruptRecordMidSegmentIsSkippedAndReported(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	const n = 2000
	spoolLines(t, cfg, n, 10)
	path := segments(t, dir)[0]
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	at := fi.Size() / 3
	if _, err := f.WriteAt([]byte("garbage-garbage-garbage"), at); err != nil {
		t.Fatal(err)
	}
	f.Close()

	inner := newGateSink(true)
	r := start(t, cfg, inner)
	eventually(t, "a loss report and the records after the damage", 10*time.Second, func() bool {
		lines, losses := inner.data()
		return len(losses) == 1 && len(lines) > 0 && lines[len(lines)-1] == line(n-1)
	})
	r.send(t, n, n+10) // the spool goes on taking and delivering
	eventually(t, "new data after the damage", 5*time.Second, func() bool {
		lines, _ := inner.data()
		return lines[len(lines)-1] == line(n+9)
	})
	r.stop(t)
	lines, losses := inner.data()
	var report struct {
		Loss Loss `json:"siemship_data_loss"`
	}
	if err := json.Unmarshal([]byte(losses[0]), &report); err != nil || report.Loss.Bytes <= 0 || report.Loss.Bytes > 2*pageSize {
		t.Fatalf("loss report %s (%v): want the damaged span, at most two pages", losses[0], err)
	}
	if got := testutil.ToFloat64(r.s.m.corruptions); got != 1 {
		t.Fatalf("corruptions_total = %v, want 1", got)
	}
	lost := n + 10 - len(lines)
	if lost <= 0 || lost > 2*pageSize/300 {
		t.Fatalf("%d lines missing around %d damaged bytes: want a few, at most two pages' worth", lost, report.Loss.Bytes)
	}
	t.Logf("damage at %d: %d lines lost in %d skipped bytes, the rest delivered", at, lost, report.Loss.Bytes)
}

// block: at max_bytes the spool stops acknowledging upstream, stays under
// its cap, and goes on once the sink delivers.
func TestFullSpoolBlocksUntilTheSinkDelivers(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.MaxBytes = 1 << 20
	inner := newGateSink(false)
	r := start(t, cfg, inner)
	sent := 0
	blocked := false
	for !blocked {
		b := r.batch(sent, sent+20)
		go func() { r.in <- b }()
		sent += 20
		deadline := time.Now().Add(300 * time.Millisecond)
		for r.acked.Load() < int64(sent) && time.Now().Before(deadline) {
			time.Sleep(2 * time.Millisecond)
		}
		blocked = r.acked.Load() < int64(sent)
		if sent > 20000 {
			t.Fatal("never blocked")
		}
	}
	if st := r.s.Stats(); st.Bytes > int64(cfg.MaxBytes) {
		t.Fatalf("spool holds %d bytes, over max_bytes %d", st.Bytes, cfg.MaxBytes)
	}
	if ok, why := r.s.Ready(); ok {
		t.Fatal("Ready while full")
	} else {
		t.Log(why)
	}
	inner.up()
	eventually(t, "everything delivered and acknowledged", 10*time.Second, func() bool {
		return r.acked.Load() == int64(sent) && len(inner.lines()) == sent
	})
	r.stop(t)
	checkSeq(t, inner.lines(), sent)
}

// drop_oldest: at max_bytes the oldest segments go; every line is either
// delivered or counted in a loss report, exactly.
func TestDropOldestReportsExactlyWhatItDropped(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.MaxBytes, cfg.WhenFull = 1<<20, FullDropOldest
	inner := newGateSink(false)
	r := start(t, cfg, inner)
	const n = 12000 // ~4 MB: four times the cap
	for i := 0; i < n; i += 20 {
		r.send(t, i, i+20)
	}
	eventually(t, "all acknowledged upstream (none blocked)", 5*time.Second, func() bool { return r.acked.Load() == n })
	if st := r.s.Stats(); st.Bytes > int64(cfg.MaxBytes)+pageSize {
		t.Fatalf("spool holds %d bytes, over max_bytes %d", st.Bytes, cfg.MaxBytes)
	}
	inner.up()
	eventually(t, "the rest delivered", 10*time.Second, func() bool { return r.s.Stats().Records == 0 })
	r.stop(t)
	lines, losses := inner.data()
	var dropped int64
	for _, l := range losses {
		var report struct {
			Loss Loss `json:"siemship_data_loss"`
		}
		if err := json.Unmarshal([]byte(l), &report); err != nil || !report.Loss.Exact {
			t.Fatalf("loss report %s: %v", l, err)
		}
		dropped += report.Loss.Events
	}
	if got := testutil.ToFloat64(r.s.m.dropped); got != float64(dropped) {
		t.Fatalf("dropped_events_total %v, loss reports %d", got, dropped)
	}
	if int64(len(lines))+dropped != n {
		t.Fatalf("delivered %d + reported dropped %d = %d, want %d", len(lines), dropped, int64(len(lines))+dropped, n)
	}
	// What was delivered is what the sink held before the drops and the
	// newest part, in order, each once.
	prev := -1
	for _, l := range lines {
		var seq int
		if _, err := fmt.Sscanf(l[strings.Index(l, "spool:")+6:], "%09d", &seq); err != nil || seq <= prev {
			t.Fatalf("line %.60q after line %d: out of order or repeated", l, prev)
		}
		prev = seq
	}
	t.Logf("%d delivered, %d dropped in %d reports", len(lines), dropped, len(losses))
}

func TestFsyncIntervalAcknowledgesAfterTheInterval(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Fsync = "interval:300ms"
	r := start(t, cfg, newGateSink(false))
	r.send(t, 0, 10)
	time.Sleep(50 * time.Millisecond)
	if r.acked.Load() != 0 {
		t.Fatal("acknowledged before the interval's fsync")
	}
	eventually(t, "acknowledged after the interval", 2*time.Second, func() bool { return r.acked.Load() == 10 })
	r.send(t, 10, 20)
	r.stop(t) // the last ones are acknowledged at stop
	if r.acked.Load() != 20 {
		t.Fatalf("%d acknowledged after stop, want 20", r.acked.Load())
	}
}

// overflow: straight through while the sink keeps up; spilled while it is
// down; everything delivered once, in order, when it is back.
func TestOverflowSpillsOnlyWhileTheSinkIsBehind(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Mode = ModeOverflow
	inner := newGateSink(true)
	r := start(t, cfg, inner)
	for i := 0; i < 100; i += 10 {
		r.send(t, i, i+10)
		eventually(t, "delivered", 2*time.Second, func() bool { return len(inner.lines()) == i+10 })
	}
	if w := testutil.ToFloat64(r.s.m.writes); w != 0 {
		t.Fatalf("%v events spooled while the sink kept up", w)
	}
	r.stop(t)

	inner = newGateSink(false)
	r = start(t, cfg, inner)
	for i := 100; i < 1100; i += 10 {
		r.send(t, i, i+10)
	}
	eventually(t, "acknowledged while down", 5*time.Second, func() bool { return r.acked.Load() >= 900 })
	if w := testutil.ToFloat64(r.s.m.writes); w == 0 {
		t.Fatal("nothing spilled while the sink was down")
	}
	inner.up()
	eventually(t, "all delivered", 5*time.Second, func() bool { return len(inner.lines()) == 1000 })
	r.stop(t)
	got := inner.lines()
	seen := map[string]bool{}
	for _, l := range got {
		if seen[l] {
			t.Fatalf("delivered twice: %.50q", l)
		}
		seen[l] = true
	}
	t.Logf("direct %v, spooled %v", testutil.ToFloat64(r.s.m.direct), testutil.ToFloat64(r.s.m.writes))
}
