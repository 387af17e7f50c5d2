package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/siemship/siemship/internal/event"
)

// Input is a named source and how its batches are prepared before routing.
type Input struct {
	Name   string
	Source Source
	// Process prepares each batch (parse, enrich) before it is routed; nil
	// for sources whose events leave them ready. It may block (waiting for
	// metadata) and must return when ctx ends.
	Process func(ctx context.Context, b *event.Batch)
}

// Output is a named sink.
type Output struct {
	Name string
	Sink Sink

	in chan *event.Batch // set by New
}

// Pipeline runs sources and sinks connected by routes. Run it once.
type Pipeline struct {
	inputs  []Input
	outputs []Output
	routes  map[string][]*route // by source name
	loops   *Loops
	log     *slog.Logger
}

// route is a compiled Route: its sinks' inputs and its filter.
type route struct {
	name     string
	filter   filter
	sinks    []chan *event.Batch
	sent     prometheus.Counter
	filtered prometheus.Counter
}

// New connects inputs to outputs. routes must name only existing
// components (config validates them); with none, every input goes to
// every output. Liveness of each loop is reported to loops.
func New(inputs []Input, outputs []Output, routes []Route, reg prometheus.Registerer, loops *Loops, log *slog.Logger) (*Pipeline, error) {
	p := &Pipeline{inputs: inputs, outputs: outputs, routes: map[string][]*route{}, loops: loops, log: log}
	if len(routes) == 0 {
		for _, in := range inputs {
			r := Route{From: in.Name}
			for _, out := range outputs {
				r.To = append(r.To, out.Name)
			}
			routes = append(routes, r)
		}
	}
	chans := make(map[string]chan *event.Batch, len(outputs))
	for _, out := range outputs {
		chans[out.Name] = make(chan *event.Batch, 4)
	}
	counter := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "siemship", Subsystem: "route",
		Name: "events_total", Help: "Events routed, by route and outcome: sent to the route's sinks, or filtered out (acknowledged without sending)."},
		[]string{"route", "outcome"})
	if err := reg.Register(counter); err != nil {
		return nil, fmt.Errorf("register route metrics: %w", err)
	}
	for i := range routes {
		r := &routes[i]
		cr := &route{name: r.DisplayName(), filter: filter{r.Include, r.Exclude},
			sent: counter.WithLabelValues(r.DisplayName(), "sent"), filtered: counter.WithLabelValues(r.DisplayName(), "filtered")}
		for _, to := range r.To {
			ch, ok := chans[to]
			if !ok {
				return nil, fmt.Errorf("route %s: no sink %q", cr.name, to)
			}
			cr.sinks = append(cr.sinks, ch)
		}
		p.routes[r.From] = append(p.routes[r.From], cr)
	}
	for _, in := range inputs {
		if len(p.routes[in.Name]) == 0 {
			return nil, fmt.Errorf("source %s is in no route: its events would go nowhere", in.Name)
		}
	}
	for i := range p.outputs {
		p.outputs[i].in = chans[p.outputs[i].Name]
	}
	return p, nil
}

// Run ships until ctx is cancelled, then stops in two phases: sources stop
// reading, batches in flight get grace to be delivered, then everything is
// cancelled; the sources' final checkpoints are written. It returns nil
// after a graceful stop, or the first component error that stopped it.
func (p *Pipeline) Run(ctx context.Context, grace time.Duration) error {
	hardCtx, hardCancel := context.WithCancel(context.Background())
	defer hardCancel()
	readCtx, stopReading := context.WithCancel(ctx)
	defer stopReading()

	var runErr error
	var errOnce sync.Once
	fail := func(name string, err error) error {
		if err != nil && !errors.Is(err, context.Canceled) {
			errOnce.Do(func() { runErr = fmt.Errorf("%s: %w", name, err) })
			stopReading()
		}
		return err
	}

	var wg, sinks, processing sync.WaitGroup
	for _, out := range p.outputs {
		sinks.Go(p.loops.Loop("sink "+out.Name, func() error {
			return fail("sink "+out.Name, out.Sink.Run(hardCtx, out.in))
		}))
	}
	for _, in := range p.inputs {
		batches := make(chan *event.Batch, 4)
		wg.Go(p.loops.Loop("source "+in.Name, func() error {
			defer close(batches)
			return fail("source "+in.Name, in.Source.Run(readCtx, batches))
		}))
		processing.Go(p.loops.Loop("processing "+in.Name, func() error {
			p.forward(hardCtx, in, batches)
			return nil
		}))
	}
	// Closing the sinks' inputs once no source can send any more is what
	// lets them flush and finish.
	wg.Go(func() {
		processing.Wait()
		for _, out := range p.outputs {
			close(out.in)
		}
	})
	sinksDone := make(chan struct{})
	go func() { sinks.Wait(); close(sinksDone) }() // ends with the sinks, which hardCancel ends

	<-readCtx.Done()
	p.log.Info("stopping: reading stopped, delivering events in flight", "grace", grace.String())
	select {
	case <-sinksDone:
	case <-time.After(grace):
		p.log.Warn("grace period over, abandoning undelivered events (they are read again after restart)")
	}
	hardCancel()
	wg.Wait()
	<-sinksDone
	var closeErrs []error
	for _, in := range p.inputs {
		if err := in.Source.Close(); err != nil {
			closeErrs = append(closeErrs, fmt.Errorf("source %s: final checkpoint: %w", in.Name, err))
		}
	}
	return errors.Join(append([]error{runErr}, closeErrs...)...)
}

// forward prepares each batch of one input and hands it to the sinks of
// every route from it. A batch is done when every sink of every route
// delivered every event the route's filter kept; filtered-out events need
// no delivery, so the source's checkpoint moves past them. A slow sink
// blocks forward, and so the source: the slowest sink sets the pace.
func (p *Pipeline) forward(ctx context.Context, in Input, batches <-chan *event.Batch) {
	routes := p.routes[in.Name]
	kept := make([][]int, len(routes)) // nil: the route keeps every event
	for b := range batches {
		if in.Process != nil {
			in.Process(ctx, b)
		}
		deliveries := 0
		for i, r := range routes {
			kept[i] = nil
			n := len(b.Events)
			if !r.filter.none() {
				idx := make([]int, 0, len(b.Events))
				for j := range b.Events {
					if r.filter.keeps(&b.Events[j]) {
						idx = append(idx, j)
					}
				}
				kept[i], n = idx, len(idx)
			}
			r.sent.Add(float64(n))
			r.filtered.Add(float64(len(b.Events) - n))
			deliveries += n * len(r.sinks)
		}
		b.ExpectDeliveries(deliveries)
		for i, r := range routes {
			view := b
			if kept[i] != nil {
				if len(kept[i]) == 0 {
					continue
				}
				view = b.View(kept[i])
			}
			for _, sink := range r.sinks {
				select {
				case sink <- view:
				case <-ctx.Done():
					return
				}
			}
		}
	}
}
