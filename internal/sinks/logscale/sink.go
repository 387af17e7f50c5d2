// Package logscale is the sink that ships events to Falcon LogScale over its
// humio-structured or HEC ingest API.
//
// Run takes batches from a channel, packs their events into requests (by
// count, uncompressed size and linger time), gzips them and posts them with
// at most Concurrency requests in flight; when all are busy it stops taking
// batches, which is the back-pressure that pauses the source. Each event is
// acknowledged (event.Deliver) exactly once: after LogScale accepted it, or
// after it was written to the dead-letter file. The status-code policy is
// in retry.go.
package logscale

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/prometheus/client_golang/prometheus"
)

// Sink ships events to one LogScale ingest endpoint. Run may be called
// once; Ready and Verify are safe to call concurrently with it.
type Sink struct {
	cfg       Config
	name      string
	log       *slog.Logger
	m         *metrics
	health    *health
	dlLog     *limiter // dead-letter write failures
	client    *http.Client
	enc       *encoder
	dl        *deadLetter
	ingestURL string
	statusURL string
	userAgent string

	builders sync.Pool // *builder
	bodies   sync.Pool // *bytes.Buffer
	gzips    sync.Pool // *gzip.Writer
}

// New builds a sink named name (the "sink" label of its metrics and the
// "sink" field of its logs and dead-letter lines). Zero fields of cfg take
// their DefaultConfig value. The token never appears in logs or errors.
func New(cfg Config, name string, reg prometheus.Registerer, log *slog.Logger) (*Sink, error) {
	cfg = cfg.withDefaults()
	base, err := cfg.check()
	if err != nil {
		return nil, err
	}
	client, err := newClient(&cfg)
	if err != nil {
		return nil, fmt.Errorf("logscale sink %s: %w", name, err)
	}
	m, err := newMetrics(reg, name)
	if err != nil {
		return nil, fmt.Errorf("logscale sink %s: %w", name, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("sink", name)
	s := &Sink{
		cfg:       cfg,
		name:      name,
		log:       log,
		m:         m,
		health:    newHealth(log, cfg.AuthRetry, m.ready),
		dlLog:     &limiter{quiet: cfg.AuthRetry},
		client:    client,
		enc:       newEncoder(cfg.Format, cfg.Tags),
		dl:        newDeadLetter(cfg.DeadLetterPath, name),
		ingestURL: base.String() + cfg.ingestPath(),
		statusURL: base.String() + pathStatus,
		userAgent: "siemship/" + cfg.Version,
	}
	s.builders.New = func() any { return newBuilder(s.enc) }
	s.bodies.New = func() any { return new(bytes.Buffer) }
	level := cfg.CompressionLevel
	s.gzips.New = func() any {
		w, _ := gzip.NewWriterLevel(nil, level) // level checked in cfg.check
		return w
	}
	return s, nil
}

// Ready reports whether the sink can deliver: false, with a plain reason,
// until a request succeeded (or Verify passed) and while the last attempt
// failed because LogScale was unreachable or rejected the configuration.
func (s *Sink) Ready() (bool, string) { return s.health.state() }

// Verify checks reachability and the token like the package-level Verify,
// and marks the sink ready when they pass.
func (s *Sink) Verify(ctx context.Context) error {
	err := verify(ctx, s.client, &s.cfg, s.statusURL, s.ingestURL, s.userAgent)
	if err == nil {
		s.health.ok()
	}
	return err
}
