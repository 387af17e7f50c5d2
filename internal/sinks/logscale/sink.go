// Package logscale is the sink that ships events to Falcon LogScale over its
// humio-structured or HEC ingest API. The delivery machinery (batching,
// concurrency, retries, dead letter) is package delivery's; this package
// owns the request bodies, the headers and LogScale's words.
package logscale

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/siemship/siemship/internal/event"
	"github.com/siemship/siemship/internal/pipeline"
	"github.com/siemship/siemship/internal/sinks/delivery"
)

var _ pipeline.Sink = (*Sink)(nil)

// Sink ships events to one LogScale ingest endpoint. Run may be called
// once; Ready, Verify and Status are safe to call concurrently with it.
type Sink struct {
	cfg       Config
	sender    *delivery.Sender
	statusURL string
	ingestURL string
	userAgent string
}

// New builds a sink named name (the "sink" label of its metrics and the
// "sink" field of dead-letter lines); log should already carry the name.
// cfg must be valid (Config.Validate) and hold the token. The token never
// appears in logs or errors.
func New(cfg Config, name string, reg prometheus.Registerer, log *slog.Logger) (*Sink, error) {
	base, err := cfg.baseURL()
	if err != nil {
		return nil, err
	}
	s := &Sink{
		cfg:       cfg,
		statusURL: base + pathStatus,
		ingestURL: base + cfg.ingestPath(),
		userAgent: "siemship/" + cfg.Version,
	}
	enc := newEncoder(cfg.Format, cfg.Tags)
	s.sender, err = delivery.New(cfg.Config, delivery.Peer{
		Name:         "LogScale",
		URL:          s.ingestURL,
		Token:        cfg.Token,
		SetHeaders:   s.setHeaders,
		NewBody:      func() delivery.Body { return newBuilder(enc) },
		Unauthorized: "LogScale rejected the ingest token: unknown token (401)",
		Forbidden:    "LogScale rejected the ingest token: token blocked (403)",
		UserAgent:    s.userAgent,
	}, name, reg, log)
	if err != nil {
		return nil, fmt.Errorf("logscale %w", err)
	}
	return s, nil
}

func (s *Sink) setHeaders(h http.Header) {
	h.Set("Content-Type", "application/json")
	h.Set("Authorization", "Bearer "+s.cfg.Token.Reveal())
}

// Run delivers batches from in; see pipeline.Sink.
func (s *Sink) Run(ctx context.Context, in <-chan *event.Batch) error { return s.sender.Run(ctx, in) }

// Ready reports whether LogScale takes events, and why not.
func (s *Sink) Ready() (bool, string) { return s.sender.Ready() }

// Status returns the status-line fields.
func (s *Sink) Status() []any { return s.sender.Status() }

// Verify checks reachability and the token like the package-level Verify,
// and marks the sink ready when they pass.
func (s *Sink) Verify(ctx context.Context) error {
	err := verify(ctx, s.sender.Client(), &s.cfg, s.statusURL, s.ingestURL, s.userAgent)
	if err == nil {
		s.sender.MarkReady()
	}
	return err
}
