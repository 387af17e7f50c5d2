// Package logscale is a strict LogScale-compatible receiver for tests,
// benchmarks and the local demo. It speaks LogScale's ingest endpoints
// (humio-structured, humio-unstructured, HEC, HEC raw, raw, json), the subset
// of the GraphQL setup API and the package endpoints that siemship uses, and it
// enforces what the real service enforces (see the LogScale contract): auth,
// body limits, gzip, the structured schema, HEC decoding and the index check.
// On top it injects faults on demand and exposes what it stored and saw under
// /_emulator/.
//
// A Server is safe for concurrent use.
package logscale

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/siemship/siemship/internal/emulators/faults"
)

// DefaultMaxBodyBytes is LogScale's MAX_INGEST_REQUEST_SIZE: the largest
// request body accepted after decompression.
const DefaultMaxBodyBytes = 32 << 20

// Version is what GET /api/v1/status reports.
const Version = "1.189.0"

// Token is an ingest token's entry in the token table.
type Token struct {
	// Name is the token's display name in GraphQL listings; the token string
	// itself is the map key in Config.Tokens and is never listed as a name.
	Name string
	// Repo is the repository the token ingests into.
	Repo string
	// Parser is the parser assigned to the token ("" for none).
	Parser string
	// Blocked tokens are rejected with 403.
	Blocked bool
}

// Config configures a Server. The zero value of every field is usable.
type Config struct {
	// Tokens maps ingest token strings to their entries.
	Tokens map[string]Token
	// APITokens are accepted as Bearer tokens on /graphql and the package endpoints.
	APITokens []string
	// Repos are repositories that exist without an ingest token of their own
	// (the repositories of Tokens exist implicitly).
	Repos []string
	// DeletedRepos are repositories whose tokens are answered with 422.
	DeletedRepos []string
	// MaxBodyBytes bounds the decoded request body (default DefaultMaxBodyBytes).
	MaxBodyBytes int64
	// Discard validates every request fully but keeps only counters.
	Discard bool
	// OnEvent, when set, is called with every committed event, after the
	// request is committed and before its response is written. It may be
	// called concurrently from several requests. Strings in the event share
	// memory with the request body: copy the parts you keep for long.
	OnEvent func(StoredEvent)
	// MaxRequestLog bounds the request log (default 10,000 most recent).
	MaxRequestLog int
	// DisableInspection turns off the /_emulator/ API.
	DisableInspection bool
	// Logger receives warnings; nil discards them.
	Logger *slog.Logger
}

// Server is the receiver. Create it with New; serve it with Serve or use it
// as an http.Handler (for example with httptest.NewServer).
type Server struct {
	cfg    Config
	log    *slog.Logger
	mux    *http.ServeMux
	reqID  atomic.Uint64
	store  *store
	faults *faults.Injector
	reqs   *requestLog
	assets *assets

	// grace is how long Serve lets in-flight requests finish on shutdown.
	grace time.Duration

	mu     sync.RWMutex // guards tokens, apiTok, deleted
	tokens map[string]*tokenEntry
	apiTok map[string]bool
	// deleted repositories (422 on ingest)
	deleted map[string]bool
}

// New builds a Server from cfg. cfg.Tokens is copied.
func New(cfg Config) *Server {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxRequestLog <= 0 {
		cfg.MaxRequestLog = 10000
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:     cfg,
		log:     log,
		store:   newStore(cfg.Discard),
		faults:  faults.New(),
		reqs:    newRequestLog(cfg.MaxRequestLog),
		tokens:  map[string]*tokenEntry{},
		apiTok:  map[string]bool{},
		deleted: map[string]bool{},
		grace:   5 * time.Second,
	}
	s.assets = newAssets(cfg.Repos)
	for tok, t := range cfg.Tokens {
		s.AddToken(tok, t)
	}
	for _, t := range cfg.APITokens {
		s.apiTok[t] = true
	}
	for _, r := range cfg.DeletedRepos {
		s.deleted[r] = true
	}
	s.mux = s.routes()
	return s
}

func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/status", s.serveStatus)
	for path, rt := range ingestRoutes {
		mux.Handle("POST "+path, s.ingestHandler(rt))
	}
	mux.HandleFunc("POST /graphql", s.serveGraphQL)
	mux.HandleFunc("POST /api/v1/packages/analyze", s.servePackage(false))
	mux.HandleFunc("POST /api/v1/packages/install", s.servePackage(true))
	if !s.cfg.DisableInspection {
		s.inspectRoutes(mux)
	}
	return mux
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

func (s *Server) serveStatus(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "OK", "version": Version})
}

// Serve serves HTTP on ln until ctx is cancelled, then shuts down: it stops
// accepting, lets in-flight requests finish for up to 5 s, then aborts them
// (storing nothing of what they carried) and closes every
// connection. It returns nil after a shutdown caused by ctx, and has stopped
// all its goroutines when it returns.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	// Request contexts derive from base, not from ctx, so that a graceful
	// shutdown lets in-flight requests commit; base is cancelled only when the
	// grace period is over (which ends slow answers still waiting).
	base, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBase()
	var inflight tracker
	srv := &http.Server{
		Handler:           inflight.wrap(s),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return base },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc: // the listener failed
		cancelBase()
		_ = srv.Close()
		inflight.wait()
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), s.grace)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		s.log.Warn("in-flight requests aborted after the shutdown grace period", "grace", s.grace.String())
		cancelBase()
		_ = srv.Close()
	}
	inflight.wait() // handlers still running after Close
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	}
	return nil
}

// Reset forgets stored events, the request log, counters and faults. Tokens,
// parsers and dashboards stay.
func (s *Server) Reset() {
	s.store.reset()
	s.reqs.reset()
	s.faults.Reset()
}

// tracker counts running handlers so that Serve can wait for them.
type tracker struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

func (t *tracker) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			panic(http.ErrAbortHandler) // arrived after shutdown: no answer
		}
		t.wg.Add(1)
		t.mu.Unlock()
		defer t.wg.Done()
		h.ServeHTTP(w, r)
	})
}

func (t *tracker) wait() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.wg.Wait()
}
