// Package ack turns out-of-order acknowledgements into an in-order commit point.
//
// Sinks finish requests out of order (several run at once, retries and splits
// reorder them). A source may only persist a position once everything before
// it is delivered too, so each source keeps a Tracker per ordered stream (a
// file set, a stream partition, an API cursor) and persists Committed().
package ack

import "sync"

// Tracker records positions in the order they were handed out and reports the
// newest one before which every position is acknowledged. Safe for concurrent
// use.
type Tracker[P any] struct {
	mu        sync.Mutex
	pending   []entry[P] // in hand-out order; a prefix of done entries is popped eagerly
	next      uint64     // sequence number of the next Track call
	first     uint64     // sequence number of pending[0]
	committed P
	has       bool
	version   uint64 // bumped whenever committed changes
}

type entry[P any] struct {
	pos  P
	done bool
}

// Track registers pos as handed out after every earlier tracked position and
// returns the function that acknowledges it. The function must be called
// exactly once.
func (t *Tracker[P]) Track(pos P) (ack func()) {
	t.mu.Lock()
	seq := t.next
	t.next++
	t.pending = append(t.pending, entry[P]{pos: pos})
	t.mu.Unlock()
	return func() { t.done(seq) }
}

func (t *Tracker[P]) done(seq uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	i := seq - t.first
	if i >= uint64(len(t.pending)) || t.pending[i].done {
		panic("ack: position acknowledged twice")
	}
	t.pending[i].done = true
	n := 0
	for n < len(t.pending) && t.pending[n].done {
		n++
	}
	if n == 0 {
		return
	}
	t.committed, t.has = t.pending[n-1].pos, true
	t.version++
	// Shift rather than reslice so the backing array does not grow without bound.
	m := copy(t.pending, t.pending[n:])
	clear(t.pending[m:])
	t.pending = t.pending[:m]
	t.first += uint64(n)
}

// Start sets the commit point to pos, a position that needs no
// acknowledgement (where a source starts reading), so that it can be
// persisted before anything is read. It is ignored once a position is
// tracked: the commit point then only follows acknowledgements.
func (t *Tracker[P]) Start(pos P) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.next > 0 {
		return
	}
	t.committed, t.has = pos, true
	t.version++
}

// Oldest returns the oldest tracked position not yet acknowledged, if any.
func (t *Tracker[P]) Oldest() (pos P, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.pending) == 0 {
		return pos, false
	}
	return t.pending[0].pos, true
}

// Committed returns the newest position before which everything is
// acknowledged, whether there is one, and a version number that changes
// whenever the position does (so savers can skip unchanged state).
func (t *Tracker[P]) Committed() (pos P, ok bool, version uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.committed, t.has, t.version
}

// Pending returns how many tracked positions are not yet committed.
func (t *Tracker[P]) Pending() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.pending)
}
