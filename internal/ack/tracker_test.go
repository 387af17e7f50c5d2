package ack

import (
	"math/rand/v2"
	"sync"
	"testing"
)

func TestTrackerCommitsOnlyTheAcknowledgedPrefix(t *testing.T) {
	var tr Tracker[int]
	acks := make([]func(), 5)
	for i := range acks {
		acks[i] = tr.Track(i * 10)
	}
	if _, ok, _ := tr.Committed(); ok {
		t.Fatal("nothing acknowledged yet, but a position is committed")
	}
	acks[2]()
	acks[1]()
	if _, ok, _ := tr.Committed(); ok {
		t.Fatal("position 0 is not acknowledged, so nothing may be committed")
	}
	acks[0]()
	if pos, _, _ := tr.Committed(); pos != 20 {
		t.Fatalf("committed %d, want 20 (0,1,2 acked)", pos)
	}
	acks[4]()
	if pos, _, _ := tr.Committed(); pos != 20 {
		t.Fatalf("committed %d, want still 20 (3 missing)", pos)
	}
	acks[3]()
	if pos, _, _ := tr.Committed(); pos != 40 {
		t.Fatalf("committed %d, want 40", pos)
	}
	if n := tr.Pending(); n != 0 {
		t.Fatalf("pending %d, want 0", n)
	}
}

func TestTrackerVersionChangesOnlyWithPosition(t *testing.T) {
	var tr Tracker[int]
	a, b := tr.Track(1), tr.Track(2)
	_, _, v0 := tr.Committed()
	b()
	if _, _, v := tr.Committed(); v != v0 {
		t.Fatal("version changed although the commit point did not move")
	}
	a()
	if _, _, v := tr.Committed(); v == v0 {
		t.Fatal("version did not change when the commit point moved")
	}
}

func TestTrackerDoubleAckPanics(t *testing.T) {
	var tr Tracker[int]
	a := tr.Track(1)
	tr.Track(2)
	a()
	defer func() {
		if recover() == nil {
			t.Fatal("second ack of the same position did not panic")
		}
	}()
	a()
}

func TestTrackerConcurrentRandomOrder(t *testing.T) {
	var tr Tracker[int]
	const n = 10000
	acks := make([]func(), n)
	for i := range acks {
		acks[i] = tr.Track(i)
	}
	rand.Shuffle(n, func(i, j int) { acks[i], acks[j] = acks[j], acks[i] })
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < n; i += 4 {
				acks[i]()
			}
		})
	}
	wg.Wait()
	if pos, ok, _ := tr.Committed(); !ok || pos != n-1 {
		t.Fatalf("committed %d (ok=%v), want %d", pos, ok, n-1)
	}
}

func TestTrackerStartIsCommittedAndOldestIsTheFirstUnacknowledged(t *testing.T) {
	var tr Tracker[int]
	tr.Start(5)
	if pos, ok, v := tr.Committed(); !ok || pos != 5 || v == 0 {
		t.Fatalf("after Start: committed %d ok=%v version %d, want 5, true, >0", pos, ok, v)
	}
	if _, ok := tr.Oldest(); ok {
		t.Fatal("Oldest with nothing tracked")
	}
	a, b := tr.Track(10), tr.Track(20)
	b()
	if pos, ok := tr.Oldest(); !ok || pos != 10 {
		t.Fatalf("Oldest = %d %v, want 10", pos, ok)
	}
	a()
	if _, ok := tr.Oldest(); ok {
		t.Fatal("Oldest after everything was acknowledged")
	}
	if pos, _, _ := tr.Committed(); pos != 20 {
		t.Fatalf("committed %d, want 20", pos)
	}
}
