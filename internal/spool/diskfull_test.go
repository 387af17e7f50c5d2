package spool

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// tmpfs mounts a small tmpfs for a spool directory that runs out of space
// before max_bytes. Tests run as root (as CI does); a failed mount fails
// the test, it does not skip it.
func tmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount a %s tmpfs at %s (the disk-full tests need root): %v: %s", size, dir, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	spool := filepath.Join(dir, "spool")
	if err := os.Mkdir(spool, 0o700); err != nil {
		t.Fatal(err)
	}
	return spool
}

// A full disk (ENOSPC) counts as full: with when_full block the spool stops
// acknowledging upstream, says why, and goes on once the sink delivers and
// trimming frees space; nothing is lost or reordered.
func TestDiskFullBlocks(t *testing.T) {
	cfg := testConfig(tmpfs(t, "1536k"))
	cfg.MaxBytes = 64 << 20 // far above what the disk holds
	inner := newGateSink(false)
	r := start(t, cfg, inner)
	sent := 0
	for {
		b := r.batch(sent, sent+20)
		go func() { r.in <- b }()
		sent += 20
		deadline := time.Now().Add(300 * time.Millisecond)
		for r.acked.Load() < int64(sent) && time.Now().Before(deadline) {
			time.Sleep(2 * time.Millisecond)
		}
		if r.acked.Load() < int64(sent) {
			break // blocked
		}
		if sent > 40000 {
			t.Fatal("never blocked although the disk is full")
		}
	}
	if testutil.ToFloat64(r.s.m.writeErrors) == 0 {
		t.Error("no write error counted for ENOSPC")
	}
	if testutil.ToFloat64(r.s.m.diskFull) == 0 {
		t.Error("disk_full_total not counted")
	}
	if room := r.s.Room(); room > 256<<10 {
		t.Errorf("Room %d while the disk is full: it must count the disk's free space, not only max_bytes", room)
	}
	if ok, why := r.s.Ready(); ok {
		t.Error("Ready while the disk is full")
	} else {
		t.Log(why)
	}
	inner.up()
	eventually(t, "everything delivered and acknowledged", 20*time.Second, func() bool {
		return r.acked.Load() == int64(sent) && len(inner.lines()) == sent
	})
	r.stop(t)
	checkSeq(t, inner.lines(), sent)
	t.Logf("blocked after %d lines on a 1.5 MiB disk; all delivered once the sink came up", sent)
}

// With when_full drop_oldest a full disk drops the oldest segments: every
// line is delivered or counted in a loss report, exactly, and the spool
// keeps acknowledging upstream.
func TestDiskFullDropsOldest(t *testing.T) {
	cfg := testConfig(tmpfs(t, "1536k"))
	cfg.MaxBytes, cfg.WhenFull = 64<<20, FullDropOldest
	inner := newGateSink(false)
	r := start(t, cfg, inner)
	const n = 12000 // ~3.6 MB: more than twice the disk
	for i := 0; i < n; i += 20 {
		r.send(t, i, i+20)
	}
	eventually(t, "all acknowledged upstream (none blocked)", 10*time.Second, func() bool { return r.acked.Load() == n })
	inner.up()
	eventually(t, "the rest delivered", 20*time.Second, func() bool { return r.s.Stats().Records == 0 })
	r.stop(t)
	lines, losses := inner.data()
	var dropped int64
	for _, l := range losses {
		var report struct {
			Loss Loss `json:"siemship_data_loss"`
		}
		if err := json.Unmarshal([]byte(l), &report); err != nil {
			t.Fatalf("loss report %s: %v", l, err)
		}
		dropped += report.Loss.Events
	}
	if dropped == 0 {
		t.Fatal("nothing dropped although the disk is far too small")
	}
	if got := testutil.ToFloat64(r.s.m.dropped); got != float64(dropped) {
		t.Fatalf("dropped_events_total %v, loss reports %d", got, dropped)
	}
	if int64(len(lines))+dropped != n {
		t.Fatalf("delivered %d + reported dropped %d = %d, want %d", len(lines), dropped, int64(len(lines))+dropped, n)
	}
	t.Logf("%d delivered, %d dropped in %d reports", len(lines), dropped, len(losses))
}
