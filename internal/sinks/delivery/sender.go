// Package delivery is what every HTTP sink shares: packing events into
// requests (by count, uncompressed size and linger time), gzip while the
// body is written, at most Concurrency requests in flight with each event
// acknowledged once, retries with full jitter and Retry-After, 413 split,
// 400 bisection, the dead letter, and 401/403 as configuration errors.
//
// A sink supplies the destination (Peer): its URL, headers, how a request
// body is built (Body), and the words its errors are reported in. The
// status-code policy is in retry.go.
package delivery

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/siemship/siemship/internal/event"
	"github.com/siemship/siemship/internal/secret"
)

// Body collects the events of one request and writes its body. Not safe
// for concurrent use.
type Body interface {
	// Add appends ev (from source) unless that would take a non-empty body
	// over maxBytes; it reports whether it did. An event alone always fits.
	Add(source string, ev *event.Event, maxBytes int) bool
	// Len is the number of events; Size the exact uncompressed body length.
	Len() int
	Size() int
	// Event returns the i-th event and its source.
	Event(i int) (*event.Event, string)
	// WriteBody writes the body to w.
	WriteBody(w io.Writer) error
	// Reset empties the body, keeping its buffers.
	Reset()
}

// Peer is the destination a sender posts to.
type Peer struct {
	// Name is the destination in log lines and readiness, e.g. "LogScale".
	Name string
	// URL is where request bodies are POSTed.
	URL string
	// Token is sent by SetHeaders and removed from any answer logged.
	Token secret.Secret
	// SetHeaders sets a request's headers (authentication, content type);
	// Content-Encoding and User-Agent are set by the sender.
	SetHeaders func(h http.Header)
	// NewBody returns an empty request body.
	NewBody func() Body
	// Unauthorized and Forbidden are the log messages for 401 and 403.
	Unauthorized, Forbidden string
	// UserAgent is sent with every request.
	UserAgent string
}

// Sender delivers events to one Peer. Run may be called once; Ready,
// MarkReady and Status are safe to call concurrently with it.
type Sender struct {
	cfg    Config
	peer   Peer
	name   string
	log    *slog.Logger
	m      *metrics
	health *health
	dlLog  *limiter // dead-letter write failures
	client *http.Client
	dl     *deadLetter

	builders sync.Pool // Body
	bodies   sync.Pool // *bytes.Buffer
	gzips    sync.Pool // *gzip.Writer
}

// New builds the sender of the sink named name (the "sink" label of its
// metrics and the "sink" field of dead-letter lines). log should already
// carry the sink's name. cfg must be valid (see Config.Validate).
func New(cfg Config, peer Peer, name string, reg prometheus.Registerer, log *slog.Logger) (*Sender, error) {
	if err := cfg.check(); err != nil {
		return nil, fmt.Errorf("sink %s: %w", name, err)
	}
	client, err := newClient(&cfg)
	if err != nil {
		return nil, fmt.Errorf("sink %s: %w", name, err)
	}
	m, err := newMetrics(reg, name)
	if err != nil {
		return nil, fmt.Errorf("sink %s: %w", name, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Sender{
		cfg:    cfg,
		peer:   peer,
		name:   name,
		log:    log,
		m:      m,
		health: newHealth(log, peer.Name, cfg.AuthRetry, m.ready),
		dlLog:  &limiter{quiet: cfg.AuthRetry},
		client: client,
		dl:     newDeadLetter(cfg.DeadLetterPath, int64(cfg.DeadLetterMaxBytes), name, m),
	}
	s.builders.New = func() any { return peer.NewBody() }
	s.bodies.New = func() any { return new(bytes.Buffer) }
	level := cfg.CompressionLevel
	s.gzips.New = func() any {
		w, _ := gzip.NewWriterLevel(nil, level) // level checked in cfg.check
		return w
	}
	return s, nil
}

// check rejects what would make the sender misbehave; Validate says the
// same with key names.
func (c *Config) check() error {
	switch {
	case c.Compression != CompressionGzip && c.Compression != CompressionNone:
		return fmt.Errorf("compression %q: want %q or %q", c.Compression, CompressionGzip, CompressionNone)
	case c.CompressionLevel < gzip.BestSpeed || c.CompressionLevel > gzip.BestCompression:
		return fmt.Errorf("compression level %d: want 1 (fastest) to 9", c.CompressionLevel)
	case c.MaxEvents < 1 || c.MaxBytes < 1 || c.Concurrency < 1:
		return fmt.Errorf("max events, max bytes and concurrency must be positive")
	case c.Linger <= 0 || c.Timeout <= 0 || c.RetryInitial <= 0 || c.AuthRetry <= 0 || c.RetryMax < c.RetryInitial:
		return fmt.Errorf("linger, timeout and retry periods must be positive, retry max ≥ retry initial")
	}
	return nil
}

// Client is the HTTP client the sender uses (for a sink's own checks).
func (s *Sender) Client() *http.Client { return s.client }

// Ready reports whether the destination takes events: false, with a plain
// reason, until a request succeeded (or MarkReady was called) and while
// the last attempt failed because it was unreachable or rejected the
// configuration.
func (s *Sender) Ready() (bool, string) {
	ok, reason := s.health.state()
	if ok {
		if full := s.dl.fullReason(); full != "" {
			return true, full
		}
	}
	return ok, reason
}

// MarkReady records a successful check (a sink's Verify).
func (s *Sender) MarkReady() { s.health.ok() }

// Status returns the status-line fields: events acknowledged, in flight,
// dead-lettered.
func (s *Sender) Status() []any {
	return []any{
		"acked", int64(counterValue(s.m.eventsAcked)),
		"inflight_requests", int64(gaugeValue(s.m.inflight)),
		"dead_lettered", int64(counterVecSum(s.m.eventsDeadLetter)),
	}
}
