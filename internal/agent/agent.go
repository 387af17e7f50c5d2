// Package agent wires a running siemship: the Tetragon source, processing
// (parse, enrich), the sinks, the acknowledgement path back to the source,
// and the HTTP endpoints for metrics and health.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/semaphore"
	"k8s.io/klog/v2"

	"github.com/siemship/siemship/internal/checkpoints"
	"github.com/siemship/siemship/internal/config"
	"github.com/siemship/siemship/internal/event"
	"github.com/siemship/siemship/internal/processing/k8smeta"
	"github.com/siemship/siemship/internal/processing/tetragonparse"
	"github.com/siemship/siemship/internal/sinks/logscale"
	"github.com/siemship/siemship/internal/sources/tetragon"
	"github.com/siemship/siemship/internal/version"
)

// Agent is one configured pipeline. Run it once.
type Agent struct {
	cfg      *config.Config
	log      *slog.Logger
	reg      *prometheus.Registry
	source   *tetragon.Source
	parser   *tetragonparse.Parser
	enricher *k8smeta.Enricher // nil when Kubernetes metadata is off
	sink     *logscale.Sink
	listener net.Listener // nil when cfg.Listen is empty
	health   *health
}

// New builds the agent. token is the LogScale ingest token.
func New(cfg *config.Config, token string, log *slog.Logger) (*Agent, error) {
	store, err := checkpoints.Open(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	setMemoryLimit(cfg.MemoryLimit, log)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a := &Agent{cfg: cfg, log: log, reg: reg, health: newHealth()}
	budget := semaphore.NewWeighted(int64(cfg.BufferBytes))
	a.source = tetragon.New("tetragon", sourceConfig(cfg.Sources.Tetragon), store, budget, reg, log.With("source", "tetragon"))
	a.parser = tetragonparse.New(reg, log)
	if cfg.Kubernetes.Enabled {
		// client-go logs through klog; route it into our structured log.
		klog.SetSlogLogger(log.With("component", "client-go"))
		if a.enricher, err = k8smeta.New(enricherConfig(cfg.Kubernetes), reg, log.With("component", "kubernetes")); err != nil {
			return nil, fmt.Errorf("kubernetes metadata: %w", err)
		}
	}
	a.sink, err = logscale.New(SinkConfig(cfg, token), "logscale", reg, log.With("sink", "logscale"))
	if err != nil {
		return nil, fmt.Errorf("logscale sink: %w", err)
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

// Source returns the Tetragon source (for status and tests).
func (a *Agent) Source() *tetragon.Source { return a.source }

// Run ships until ctx is cancelled, then stops gracefully: reading stops,
// batches in flight get shutdown_grace to be delivered, the checkpoint is
// written. It returns nil after a graceful stop.
func (a *Agent) Run(ctx context.Context) error {
	hardCtx, hardCancel := context.WithCancel(context.Background())
	defer hardCancel()
	readCtx, stopReading := context.WithCancel(ctx)
	defer stopReading()

	fromSource := make(chan *event.Batch, 4)
	toSink := make(chan *event.Batch, 4)
	var wg sync.WaitGroup
	var runErr error
	var errOnce sync.Once
	fail := func(name string, err error) {
		if err != nil && !errors.Is(err, context.Canceled) {
			errOnce.Do(func() { runErr = fmt.Errorf("%s: %w", name, err) })
			stopReading()
		}
	}

	a.startHTTP(hardCtx, &wg)
	if a.enricher != nil {
		wg.Go(a.health.loop("kubernetes", func() error { return a.enricher.Run(hardCtx) }))
	}
	sinkDone := make(chan struct{})
	wg.Go(func() {
		defer close(sinkDone)
		a.health.loop("sink", func() error { err := a.sink.Run(hardCtx, toSink); fail("logscale sink", err); return err })()
	})
	wg.Go(a.health.loop("processing", func() error {
		a.process(hardCtx, fromSource, []chan<- *event.Batch{toSink})
		return nil
	}))
	wg.Go(a.health.loop("source", func() error {
		defer close(fromSource)
		err := a.source.Run(readCtx, fromSource)
		fail("tetragon source", err)
		return err
	}))
	wg.Go(func() { a.statusLoop(hardCtx) })
	wg.Go(func() { a.firstContact(hardCtx) })

	<-readCtx.Done()
	a.log.Info("stopping: reading stopped, delivering events in flight", "grace", a.cfg.ShutdownGrace)
	select {
	case <-sinkDone:
	case <-time.After(a.cfg.ShutdownGrace):
		a.log.Warn("grace period over, abandoning undelivered events (they are re-read after restart)")
	}
	hardCancel()
	wg.Wait()
	if err := a.source.Close(); err != nil {
		return errors.Join(runErr, fmt.Errorf("final checkpoint: %w", err))
	}
	st := a.source.Stats()
	a.log.Info("stopped", "events_read", st.EventsRead, "events_acked", st.EventsAcked, "lost_bytes", st.LostBytes)
	return runErr
}

// process parses and enriches each batch and hands it to every sink; the
// batch is acknowledged to the source once all of them delivered it.
// Closing the sinks' inputs after the source's output closed is what lets
// them flush and finish.
func (a *Agent) process(ctx context.Context, in <-chan *event.Batch, outs []chan<- *event.Batch) {
	defer func() {
		for _, out := range outs {
			close(out)
		}
	}()
	if a.enricher != nil && !a.enricher.WaitSynced(ctx, a.cfg.Kubernetes.SyncTimeout) {
		a.log.Warn("kubernetes metadata not synced yet, shipping events with a k8s.miss marker until it is",
			"waited", a.cfg.Kubernetes.SyncTimeout)
	}
	for b := range in {
		a.parser.Parse(b)
		if a.enricher != nil {
			a.enricher.Enrich(b)
		}
		b.Expect(len(outs))
		for _, out := range outs {
			select {
			case out <- b:
			case <-ctx.Done():
				return
			}
		}
	}
}

// setMemoryLimit makes the garbage collector work harder before the heap
// passes the limit, so RSS stays near what the buffers need instead of
// doubling with GOGC. GOMEMLIMIT in the environment wins.
func setMemoryLimit(limit config.ByteSize, log *slog.Logger) {
	if os.Getenv("GOMEMLIMIT") != "" || limit == 0 {
		return
	}
	debug.SetMemoryLimit(int64(limit))
	log.Debug("memory limit set", "memory_limit", limit.String())
}

func sourceConfig(t config.Tetragon) tetragon.Config {
	return tetragon.Config{
		Path:               t.Path,
		MaxLineBytes:       int(t.MaxLineBytes),
		ReadBufferBytes:    int(t.ReadBufferBytes),
		PollInterval:       t.PollInterval,
		MaxBackups:         t.MaxBackups,
		StartAt:            t.StartAt,
		CheckpointInterval: t.CheckpointInterval,
	}
}

// SinkConfig maps the configuration to the LogScale sink's; `siemship check`
// verifies with exactly what the agent will use.
func SinkConfig(cfg *config.Config, token string) logscale.Config {
	l := cfg.Sinks.LogScale
	dlq := l.DeadLetterFile
	if dlq == "" {
		dlq = filepath.Join(cfg.StateDir, "logscale-dead-letter.ndjson")
	}
	return logscale.Config{
		URL:              l.URL,
		Format:           l.Format,
		Token:            logscale.Secret(token),
		MaxEvents:        l.BatchEvents,
		MaxBytes:         int(l.BatchBytes),
		Linger:           l.Linger,
		Concurrency:      l.Concurrency,
		Timeout:          l.Timeout,
		Compression:      l.Compression,
		CompressionLevel: l.CompressionLevel,
		CAFile:           l.CAFile,
		TLSServerName:    l.TLSServerName,
		DeadLetterPath:   dlq,
		RetryInitial:     l.RetryInitial,
		RetryMax:         l.RetryMax,
		AuthRetry:        l.AuthRetry,
		Tags:             l.Tags,
		Version:          version.Version,
	}
}

func enricherConfig(k config.Kubernetes) k8smeta.Config {
	return k8smeta.Config{
		Enabled:              true,
		NodeName:             k.NodeName,
		Kubeconfig:           k.Kubeconfig,
		ClusterName:          k.ClusterName,
		PodRetention:         k.PodRetention,
		WaitForPod:           k.WaitForPod,
		NamespaceLabels:      k.NamespaceLabels,
		PodAnnotations:       k.PodAnnotations,
		NamespaceAnnotations: k.NamespaceAnnotations,
		NodeLabels:           k.NodeLabels,
		Groups: k8smeta.Groups{
			Labels: k.Groups.Labels, Annotations: k.Groups.Annotations, ServiceAccount: k.Groups.ServiceAccount,
			Network: k.Groups.Network, Owners: k.Groups.Owners, QoS: k.Groups.QoS, Priority: k.Groups.Priority,
			Creation: k.Groups.Creation, Node: k.Groups.Node,
		},
	}
}
