package event

import (
	"sync/atomic"
	"testing"
)

func TestBatchIsDoneOnlyWhenEverySinkDeliveredEveryEvent(t *testing.T) {
	var done atomic.Int32
	b := NewBatch("tetragon", make([]Event, 3), func() { done.Add(1) })
	b.Expect(2)
	evs := []*Event{&b.Events[0], &b.Events[1], &b.Events[2]}
	Deliver(evs) // first sink, all events
	if done.Load() != 0 {
		t.Fatal("done after one of two sinks")
	}
	Deliver(evs[:2])
	if done.Load() != 0 {
		t.Fatal("done before the second sink delivered the last event")
	}
	Deliver(evs[2:])
	if done.Load() != 1 {
		t.Fatalf("done ran %d times, want once", done.Load())
	}
}

func TestEmptyBatchIsDoneAtOnce(t *testing.T) {
	ran := false
	NewBatch("tetragon", nil, func() { ran = true }).Expect(2)
	if !ran {
		t.Fatal("a batch without events must be done when expected")
	}
}

func TestOverDeliveryPanics(t *testing.T) {
	b := NewBatch("tetragon", make([]Event, 1), nil)
	b.Expect(1)
	b.Delivered(1)
	defer func() {
		if recover() == nil {
			t.Fatal("delivering more than expected must panic: it would double-acknowledge")
		}
	}()
	b.Delivered(1)
}
