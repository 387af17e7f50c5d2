// Package agent builds a running siemship from its configuration: the
// sources, their processing (parse, enrich), the sinks and the routes
// between them (package pipeline), and the HTTP endpoints for metrics and
// health. Components are built with a plain switch on their type.
package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/semaphore"
	"k8s.io/klog/v2"

	"github.com/siemship/siemship/internal/bytesize"
	"github.com/siemship/siemship/internal/checkpoints"
	"github.com/siemship/siemship/internal/config"
	"github.com/siemship/siemship/internal/leader"
	"github.com/siemship/siemship/internal/pipeline"
	"github.com/siemship/siemship/internal/processing/k8smeta"
	"github.com/siemship/siemship/internal/sources/tetragon"
	"github.com/siemship/siemship/internal/version"
)

// Agent is one configured pipeline. Run it once.
type Agent struct {
	cfg      *config.Config
	log      *slog.Logger
	reg      *prometheus.Registry
	inputs   []pipeline.Input
	outputs  []pipeline.Output
	routes   []pipeline.Route
	enricher *k8smeta.Enricher // nil when Kubernetes metadata is off
	elector  *leader.Elector   // nil when leader election is off
	offsets  *leader.ConfigMapStore
	loops    *pipeline.Loops
	listener net.Listener // nil when cfg.Listen is empty
}

// New builds the agent and its components; it reads the components'
// secrets but contacts nothing.
func New(cfg *config.Config, log *slog.Logger) (*Agent, error) {
	store, err := checkpoints.Open(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	setMemoryLimit(cfg.MemoryLimit, log)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), buildInfo())
	a := &Agent{cfg: cfg, log: log, reg: reg, routes: cfg.Routes, loops: pipeline.NewLoops()}
	if cfg.Kubernetes.Enabled {
		// client-go logs through klog; route it into our structured log.
		klog.SetSlogLogger(log.With("component", "client-go"))
		if a.enricher, err = k8smeta.New(cfg.Kubernetes, reg, log); err != nil {
			return nil, fmt.Errorf("kubernetes metadata: %w", err)
		}
	}
	if cfg.LeaderElection.Enabled {
		klog.SetSlogLogger(log.With("component", "client-go"))
		if a.elector, err = leader.New(cfg.LeaderElection, reg, log.With("component", "leader_election")); err != nil {
			return nil, err
		}
		a.offsets = a.elector.ConfigMap()
	}
	budget := semaphore.NewWeighted(int64(cfg.BufferBytes))
	var enrichMu sync.Mutex // Enrich is not safe for concurrent use; sources may share it
	for _, s := range cfg.Sources {
		in, err := a.buildSource(s, store, budget, &enrichMu)
		if err != nil {
			return nil, fmt.Errorf("source %s: %w", s.Name, err)
		}
		a.inputs = append(a.inputs, in)
	}
	for _, s := range cfg.Sinks {
		sink, err := BuildSink(s, reg, log)
		if err != nil {
			return nil, fmt.Errorf("sink %s: %w", s.Name, err)
		}
		a.outputs = append(a.outputs, pipeline.Output{Name: s.Name, Sink: sink})
	}
	if cfg.Listen != "" {
		if a.listener, err = net.Listen("tcp", cfg.Listen); err != nil {
			return nil, fmt.Errorf("listen on %s (key listen): %w", cfg.Listen, err)
		}
	}
	return a, nil
}

// Registry exposes the agent's metrics (for tests and the demo).
func (a *Agent) Registry() *prometheus.Registry { return a.reg }

// Addr is the address of the metrics/health listener, or nil.
func (a *Agent) Addr() net.Addr {
	if a.listener == nil {
		return nil
	}
	return a.listener.Addr()
}

// Run ships until ctx is cancelled, then stops gracefully: reading stops,
// batches in flight get shutdown_grace to be delivered, the checkpoints are
// written. It returns nil after a graceful stop.
func (a *Agent) Run(ctx context.Context) error {
	p, err := pipeline.New(a.inputs, a.outputs, a.routes, a.reg, a.loops, a.log)
	if err != nil {
		return err
	}
	bgCtx, stopBackground := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stopBackground()
	a.startHTTP(bgCtx, &wg)
	if a.enricher != nil {
		wg.Go(a.loops.Loop("kubernetes", func() error { return a.enricher.Run(bgCtx) }))
	}
	wg.Go(func() { a.statusLoop(bgCtx) })
	wg.Go(func() { a.firstContact(bgCtx) })
	if a.elector == nil {
		err = p.Run(ctx, a.cfg.ShutdownGrace)
		a.log.Info("stopped", a.statusArgs()...)
		return err
	}
	// The campaign ends only after the pipeline stopped and the final
	// checkpoint is written: ending it releases the Lease.
	campaignCtx, endCampaign := context.WithCancel(context.Background())
	var campaign sync.WaitGroup
	campaign.Go(a.loops.Loop("leader election", func() error { return a.elector.Run(campaignCtx) }))
	err = p.Run(ctx, a.cfg.ShutdownGrace)
	endCampaign()
	campaign.Wait()
	a.log.Info("stopped", a.statusArgs()...)
	return err
}

// setMemoryLimit makes the garbage collector work harder before the heap
// passes the limit, so RSS stays near what the buffers need instead of
// doubling with GOGC. GOMEMLIMIT in the environment wins.
func setMemoryLimit(limit bytesize.Size, log *slog.Logger) {
	if os.Getenv("GOMEMLIMIT") != "" || limit == 0 {
		return
	}
	debug.SetMemoryLimit(int64(limit))
	log.Debug("memory limit set", "memory_limit", limit.String())
}

// buildInfo is siemship_build_info{version, goversion} 1.
func buildInfo() prometheus.Collector {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "siemship", Name: "build_info",
		Help: "Always 1; the labels say which siemship build runs."}, []string{"version", "goversion"})
	goVersion := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		goVersion = bi.GoVersion
	}
	g.WithLabelValues(version.Version, goVersion).Set(1)
	return g
}

// Tetragon returns the Tetragon source named name, or nil (for the demo
// and tests).
func (a *Agent) Tetragon(name string) *tetragon.Source {
	for _, in := range a.inputs {
		if src, ok := in.Source.(*tetragon.Source); ok && in.Name == name {
			return src
		}
	}
	return nil
}
