// Package httpingest is the generic HTTP ingest sink (type http): it POSTs
// the events as NDJSON, gzipped by default, with a bearer token, as
// Secureworks Taegis XDR's HTTP ingest and similar SIEM endpoints take
// them. Any 2xx is an acknowledgement; the status policy is the shared one
// of package delivery.
package httpingest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"

	"github.com/klauspost/compress/gzip"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/siemship/siemship/internal/event"
	"github.com/siemship/siemship/internal/pipeline"
	"github.com/siemship/siemship/internal/sinks/delivery"
)

var _ pipeline.Sink = (*Sink)(nil)

// Sink ships events to one HTTP ingest endpoint. Run may be called once;
// Ready, Verify and Status are safe to call concurrently with it.
type Sink struct {
	cfg    Config
	host   string // for messages: the URL may carry a secret path
	sender *delivery.Sender
}

// New builds a sink named name; log should already carry the name. cfg
// must be valid (Config.Validate) and hold the token.
func New(cfg Config, name string, reg prometheus.Registerer, log *slog.Logger) (*Sink, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("http sink %s: url must be http(s)://host/path", name)
	}
	if cfg.Token == "" {
		return nil, fmt.Errorf("http sink %s: token is empty", name)
	}
	s := &Sink{cfg: cfg, host: u.Host}
	peer := "HTTP ingest at " + u.Host
	s.sender, err = delivery.New(cfg.Config, delivery.Peer{
		Name:         peer,
		URL:          cfg.URL,
		Token:        cfg.Token,
		SetHeaders:   s.setHeaders,
		NewBody:      func() delivery.Body { return new(ndjson) },
		Unauthorized: peer + " rejected the token (401)",
		Forbidden:    peer + " refused the token (403)",
		UserAgent:    "siemship/" + cfg.Version,
	}, name, reg, log)
	if err != nil {
		return nil, fmt.Errorf("http %w", err)
	}
	return s, nil
}

func (s *Sink) setHeaders(h http.Header) {
	for k, v := range s.cfg.Headers {
		h.Set(k, v)
	}
	h.Set("Content-Type", "application/x-ndjson")
	auth := s.cfg.Token.Reveal()
	if s.cfg.AuthScheme != "" {
		auth = s.cfg.AuthScheme + " " + auth
	}
	h.Set(s.cfg.AuthHeader, auth)
}

// Run delivers batches from in; see pipeline.Sink.
func (s *Sink) Run(ctx context.Context, in <-chan *event.Batch) error { return s.sender.Run(ctx, in) }

// Ready reports whether the endpoint takes events, and why not.
func (s *Sink) Ready() (bool, string) { return s.sender.Ready() }

// Status returns the status-line fields.
func (s *Sink) Status() []any { return s.sender.Status() }

// Verify posts an empty body: a 2xx means reachable and the token
// accepted; 401/403 mean the token is not. Endpoints that refuse an empty
// body leave the token unverified, which is reported as such.
func (s *Sink) Verify(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	var body bytes.Buffer
	if s.cfg.Compression == delivery.CompressionGzip {
		zw, _ := gzip.NewWriterLevel(&body, s.cfg.CompressionLevel)
		_ = zw.Close() // into a bytes.Buffer: cannot fail
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.URL, &body)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	s.setHeaders(req.Header)
	if s.cfg.Compression == delivery.CompressionGzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := s.sender.Client().Do(req)
	if err != nil {
		return fmt.Errorf("HTTP ingest at %s is unreachable: %w", s.host, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch c := resp.StatusCode; {
	case c/100 == 2:
		s.sender.MarkReady()
		return nil
	case c == http.StatusUnauthorized || c == http.StatusForbidden:
		return fmt.Errorf("HTTP ingest at %s rejected the token (%d)", s.host, c)
	default:
		return fmt.Errorf("HTTP ingest at %s answered %d %s to an empty request: the token could not be verified without sending data", s.host, c, http.StatusText(c))
	}
}
