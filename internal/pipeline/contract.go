// Package pipeline connects sources to sinks: the contracts every component
// implements, the routes between them, the fan-out of batches and the
// acknowledgements flowing back, and a two-phase stop.
//
//	source ──batches──▶ process ──route filters──▶ sinks ──▶ SIEM
//	   ▲                                             │
//	   └───── ack: a batch is done when every sink ◀─┘
//	          of every matching route delivered it
//
// Delivery is at least once: a source commits a position only when the
// batches before it are done, so a crash re-reads at most what was in
// flight.
package pipeline

import (
	"context"

	"github.com/siemship/siemship/internal/event"
)

// Component is what the agent asks of every source and sink alike. Ready,
// Verify and Status are called concurrently with Run (the start-up summary
// verifies while data already flows): they must share no unguarded state
// with it.
type Component interface {
	// Ready reports whether the component does its job now and, when not,
	// why, in words an operator can act on.
	Ready() (ok bool, reason string)
	// Verify checks what can be checked before running (a file readable, a
	// server reachable, credentials accepted) without moving any data; for
	// `siemship check` and the start-up summary. It returns nil or an error
	// in plain words.
	Verify(ctx context.Context) error
	// Status returns slog key-value pairs for the periodic status line,
	// e.g. "events_acked", 1200. Keys are short and stable.
	Status() []any
}

// Source produces batches. Every batch it sends must be acknowledged
// through event.Deliver by the sinks (the pipeline does the bookkeeping);
// the source commits its position only for the acknowledged prefix.
type Source interface {
	Component
	// Run reads until ctx is done, sending batches to out. It never closes
	// out. It returns nil when ctx ended, or the error that stopped it.
	Run(ctx context.Context, out chan<- *event.Batch) error
	// Close persists the final position after every sink returned, so the
	// last acknowledgements count. Idempotent; safe without Run.
	Close() error
}

// Sink delivers batches to one destination.
type Sink interface {
	Component
	// Run delivers the batches from in until in is closed, then finishes what
	// is in flight and returns nil. Each event of each batch is acknowledged
	// once, through event.Deliver, after the destination accepted it (or it
	// was written to a dead-letter file). When ctx ends Run aborts at once;
	// undelivered events stay unacknowledged. A sink must not keep an event
	// or its bytes after acknowledging it, nor modify a batch.
	Run(ctx context.Context, in <-chan *event.Batch) error
}
