package leader

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/siemship/siemship/internal/event"
	"github.com/siemship/siemship/internal/pipeline"
)

// Gate runs a source only while its elector leads. Before that it waits
// (a standby); when leadership is lost it cancels the source's reading and
// returns an error wrapping ErrLost, which stops the pipeline in its two
// phases: acknowledgements of the batches in flight drain, then Close
// writes the final checkpoint (refused by the ConfigMap store once the
// fence is gone). The process then exits non-zero rather than campaigning
// again: a source runs once, and its in-memory offsets are stale the
// moment another replica leads; a restart reloads them from the ConfigMap.
type Gate struct {
	e    *Elector
	name string
	src  pipeline.Source
	ran  atomic.Bool
}

var _ pipeline.Source = (*Gate)(nil)

// Gate wraps src, the source called name.
func (e *Elector) Gate(name string, src pipeline.Source) *Gate {
	return &Gate{e: e, name: name, src: src}
}

// Inner is the wrapped source.
func (g *Gate) Inner() pipeline.Source { return g.src }

// Run waits for leadership, then runs the source until ctx ends or
// leadership is lost.
func (g *Gate) Run(ctx context.Context, out chan<- *event.Batch) error {
	select {
	case <-ctx.Done():
		return nil
	case <-g.e.Lost():
		return fmt.Errorf("source %s never started: %w", g.name, g.e.Err())
	case <-g.e.Leading():
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		select {
		case <-g.e.Lost():
			cancel() // phase one: stop reading
		case <-runCtx.Done():
		}
	})
	g.ran.Store(true)
	err := g.src.Run(runCtx, out)
	if lost := g.e.Err(); lost != nil {
		return fmt.Errorf("source %s stopped: %w", g.name, lost)
	}
	return err
}

// Close writes the source's final checkpoint if it ran. Idempotent.
func (g *Gate) Close() error {
	if !g.ran.Load() {
		return nil
	}
	return g.src.Close()
}

// Ready: a standby is ready (waiting is its job) unless it cannot reach
// or may not use the Lease; a leader is as ready as its source.
func (g *Gate) Ready() (bool, string) {
	leading, holder, err := g.e.State()
	if leading {
		return g.src.Ready()
	}
	if lost := g.e.Err(); lost != nil {
		return false, lost.Error()
	}
	if err != nil {
		return false, fmt.Sprintf("leader election: lease %s/%s: %v", g.e.ns, g.e.cfg.LeaseName, err)
	}
	if holder == "" {
		return true, "standby: campaigning for lease " + g.e.ns + "/" + g.e.cfg.LeaseName
	}
	return true, "standby: lease " + g.e.ns + "/" + g.e.cfg.LeaseName + " held by " + holder
}

// Verify checks the source's credentials; it moves no data, so a standby
// may do it too.
func (g *Gate) Verify(ctx context.Context) error { return g.src.Verify(ctx) }

// Status adds the election state to the source's status fields.
func (g *Gate) Status() []any {
	leading, holder, _ := g.e.State()
	if !leading {
		return []any{"leader", false, "lease_holder", holder}
	}
	return append([]any{"leader", true}, g.src.Status()...)
}
