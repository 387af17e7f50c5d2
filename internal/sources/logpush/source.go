// Package logpush is the HTTPS endpoint Cloudflare Logpush pushes to. Each
// request's gzip NDJSON records become batches on the shared ack path, and
// the request is answered 200 only when every sink of every route delivered
// every record: until then Cloudflare holds the data, so a crash or a
// timeout costs a duplicate on its retry, never a loss.
//
// The source holds no state: several replicas can run behind one Service.
// See contracts/cloudflare-taegis-syslog.md for what Logpush sends.
package logpush

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"

	"github.com/siemship/siemship/internal/event"
	"github.com/siemship/siemship/internal/pipeline"
	"github.com/siemship/siemship/internal/validate"
)

var _ pipeline.Source = (*Source)(nil)

// Source serves Logpush requests while Run runs. Run may be called once.
type Source struct {
	cfg      Config
	name     string
	log      *slog.Logger
	m        *metrics
	budget   *semaphore.Weighted
	secrets  *watched[secrets]
	cert     *watched[*tls.Certificate] // nil for plain HTTP
	datasets *datasets

	out      chan<- *event.Batch
	handlers gate
	// hard ends every request still waiting when the grace period is over.
	hard       context.Context
	hardCancel context.CancelFunc

	addr   atomic.Pointer[net.Addr]
	status atomic.Pointer[string] // readiness detail; "" when serving
}

// New prepares a source named name; it serves nothing until Run. It reads
// the secret file and the TLS pair now, so a broken one fails at start-up.
// budget bounds the memory of every request's data not yet delivered; reg
// gets the metrics; log already names the source.
func New(cfg Config, name string, budget *semaphore.Weighted, reg prometheus.Registerer, log *slog.Logger) (*Source, error) {
	// The config loader validated cfg already; tests and tools may not have.
	v := validate.New("sources." + name + ".")
	cfg.Validate(v)
	if err := v.Err(); err != nil {
		return nil, err
	}
	s := &Source{cfg: cfg, name: name, log: log, m: newMetrics(reg, name), budget: budget}
	s.hard, s.hardCancel = context.WithCancel(context.Background())
	s.datasets = newDatasets(cfg.TimeField, s.m.records)
	var err error
	s.secrets, err = newWatched("secret file", log, s.m.reloadErrors.Inc,
		func() (secrets, error) { return loadSecrets(cfg.SecretFile) }, cfg.SecretFile)
	if err != nil {
		return nil, fmt.Errorf("logpush source %s: %w", name, err)
	}
	if cfg.tls() {
		s.cert, err = newWatched("TLS pair", log, s.m.reloadErrors.Inc, loadPair(cfg.TLSCertFile, cfg.TLSKeyFile),
			cfg.TLSCertFile, cfg.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("logpush source %s: %w", name, err)
		}
	}
	s.setStatus("starting")
	return s, nil
}

// Run serves until ctx ends, then stops accepting connections, lets the
// requests in flight finish for up to shutdown_grace, answers the rest 503
// and returns once every handler returned. It never closes out.
func (s *Source) Run(ctx context.Context, out chan<- *event.Batch) error {
	defer s.hardCancel()
	s.out = out
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		s.setStatus("cannot listen: " + err.Error())
		return fmt.Errorf("logpush source %s: listen on %s: %w", s.name, s.cfg.Listen, err)
	}
	addr := ln.Addr()
	s.addr.Store(&addr)
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		// Scanners and half-open TLS handshakes are routine on a public
		// endpoint: keep them out of the error log.
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		// Requests see the hard-stop context, so a handler's waits end when
		// the grace period is over.
		BaseContext: func(net.Listener) context.Context { return s.hard },
	}
	served := make(chan error, 1)
	go func() {
		if s.cert != nil {
			srv.TLSConfig = &tls.Config{
				MinVersion:     tls.VersionTLS12,
				GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return s.cert.get(), nil },
			}
			served <- srv.ServeTLS(ln, "", "")
			return
		}
		served <- srv.Serve(ln)
	}()
	s.log.Info("serving Logpush", "address", addr.String(), "tls", s.cert != nil)
	s.setStatus("")

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-served:
		served = nil
	}
	s.setStatus("stopping")
	grace, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownGrace)
	defer cancel()
	if err := srv.Shutdown(grace); err != nil {
		s.log.Warn("requests still waiting for delivery at the end of the grace period are answered 503",
			"grace", s.cfg.ShutdownGrace.String(), "in_flight", s.handlers.count())
		s.hardCancel()
		srv.Close()
	}
	s.hardCancel()
	s.handlers.closeAndWait()
	if served != nil {
		serveErr = <-served
	}
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("logpush source %s: serve: %w", s.name, serveErr)
	}
	return nil
}

// Addr is the address being served, nil before Run listens.
func (s *Source) Addr() net.Addr {
	if a := s.addr.Load(); a != nil {
		return *a
	}
	return nil
}

// Ready reports whether the source accepts requests, and why not.
func (s *Source) Ready() (bool, string) {
	st := *s.status.Load()
	return st == "", st
}

func (s *Source) setStatus(st string) { s.status.Store(&st) }

// Verify checks the TLS pair and the secret file without serving.
func (s *Source) Verify(context.Context) error {
	var errs []error
	if _, err := loadSecrets(s.cfg.SecretFile); err != nil {
		errs = append(errs, err)
	}
	if s.cfg.tls() {
		if _, err := loadPair(s.cfg.TLSCertFile, s.cfg.TLSKeyFile)(); err != nil {
			errs = append(errs, err)
		}
	}
	if p := s.secrets.problem(); p != "" {
		errs = append(errs, errors.New(p))
	}
	return errors.Join(errs...)
}

// Status returns counters for the periodic status line.
func (s *Source) Status() []any {
	return []any{
		"requests", int64(counterValue(s.m.requests)),
		"records", int64(counterValue(s.m.records)),
		"records_acked", int64(counterValue(s.m.acked)),
		"in_flight", s.handlers.count(),
	}
}

// Close has nothing to persist: Logpush keeps every record not answered
// 200. Idempotent.
func (s *Source) Close() error { return nil }

// gate counts handlers running and turns new ones away once closed, so Run
// can wait for the last one (a WaitGroup cannot refuse a late Add).
type gate struct {
	mu     sync.Mutex
	n      int
	closed bool
	idle   chan struct{}
}

func (g *gate) enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.n++
	return true
}

func (g *gate) leave() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.n--
	if g.n == 0 && g.idle != nil {
		close(g.idle)
		g.idle = nil
	}
}

func (g *gate) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.n
}

func (g *gate) closeAndWait() {
	g.mu.Lock()
	g.closed = true
	if g.n == 0 {
		g.mu.Unlock()
		return
	}
	idle := make(chan struct{})
	g.idle = idle
	g.mu.Unlock()
	<-idle
}
