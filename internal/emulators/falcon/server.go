// Package falcon is a strict emulator of the CrowdStrike Falcon API for
// tests, benchmarks and the demo: the OAuth2 token endpoint (201, 403,
// short lifetimes, the auth-failure limit), event stream discovery with N
// partitions and appId leases that outlive a disconnect, session refresh
// and expiry, streams with keep-alive lines and random closes, 401 on a
// stale session token, inclusive offsets and 429 with
// X-Ratelimit-Retryafter. See contracts/falcon.md.
//
// A Server is safe for concurrent use.
package falcon

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures a Server. Zero values take the defaults named.
type Config struct {
	ClientID, ClientSecret string
	// Region is the X-Cs-Region of token answers (default "us-1").
	Region string
	// TokenTTL is the access tokens' lifetime, sent as whole seconds in
	// expires_in (default 1799 s).
	TokenTTL time.Duration
	// NoStreamScope answers discovery 403 as for a client without
	// "Event streams: read".
	NoStreamScope bool
	// Partitions is the number of stream partitions (default 1).
	Partitions int
	// RefreshInterval is refreshActiveSessionInterval, whole seconds
	// (default 1800 s): a partition's session that is not refreshed within
	// it dies (its stream ends, its token turns stale).
	RefreshInterval time.Duration
	// LeaseLinger is how long an appId stays in use after the last stream of
	// its session closed, or after a discovery whose streams never opened.
	LeaseLinger time.Duration
	// KeepAlive is the blank-line interval of an idle stream (default 5 s).
	KeepAlive time.Duration
	// StreamStarted appends an AuthActivityAuditEvent streamStarted to a
	// partition whenever a stream of it opens, as Falcon does.
	StreamStarted bool
	Faults        Faults
	Seed          uint64
}

// Faults are injected at random, each with its probability.
type Faults struct {
	// CloseAfterEvent: end the stream after an event (half cleanly, half by
	// aborting the connection in the middle of the next line).
	CloseAfterEvent float64
	// EmptyDiscovery: answer a discovery 200 with an empty body.
	EmptyDiscovery float64
	// Stale401: answer a stream open 401 (the session went stale) and end
	// the session.
	Stale401 float64
	// RateLimit: answer an API call 429 with X-Ratelimit-Retryafter.
	RateLimit float64
	// RetryAfter is what a 429 asks to wait (default 1 s); rounded up to
	// whole epoch seconds unless RetryAfterMillis.
	RetryAfter       time.Duration
	RetryAfterMillis bool
}

// Stats counts what the emulator saw.
type Stats struct {
	TokensIssued, TokenDenied, Revoked int
	Discoveries, InUse, EmptyBodies    int
	StreamsOpened, Stale401, Closes    int
	RateLimited                        int
	Refreshes                          map[int]int // by partition
	Expired                            int         // partition sessions that died unrefreshed
	BadRequests                        int         // requests that broke the contract
	// Requests counts every HTTP request served, whatever the endpoint
	// and the answer (token, 401, 429 and 400 included): the API calls a
	// client made.
	Requests int
}

// Server is the emulator.
type Server struct {
	cfg Config
	mux *http.ServeMux

	mu       sync.Mutex
	rng      *mrand.Rand
	tokens   map[string]time.Time // access token → expiry
	authFail []time.Time
	parts    []*partition
	sessions map[string]*partSession // session token → partition session
	leases   map[string]*session     // appId → current session
	stats    Stats
	nextID   int
	requests atomic.Int64 // Stats.Requests, apart from mu: streams hold it

	res resStore // API resources (resources.go)
}

type partition struct {
	events  [][]byte
	changed chan struct{} // closed and replaced on append
}

type session struct {
	id      int
	appID   string
	parts   []*partSession
	streams int
	idle    time.Time // when the last stream closed (or the session was created)
	dead    bool
}

type partSession struct {
	s         *session
	partition int
	token     string
	expires   time.Time
	used      bool // a token opens one stream, once
	expired   bool
}

// New returns a server with cfg's defaults filled in.
func New(cfg Config) *Server {
	if cfg.Region == "" {
		cfg.Region = "us-1"
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = 1799 * time.Second
	}
	if cfg.Partitions <= 0 {
		cfg.Partitions = 1
	}
	if cfg.RefreshInterval <= 0 {
		cfg.RefreshInterval = 1800 * time.Second
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = 5 * time.Second
	}
	if cfg.Faults.RetryAfter <= 0 {
		cfg.Faults.RetryAfter = time.Second
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux(), rng: mrand.New(mrand.NewPCG(cfg.Seed, 99)),
		tokens: map[string]time.Time{}, sessions: map[string]*partSession{}, leases: map[string]*session{}}
	s.stats.Refreshes = map[int]int{}
	for range cfg.Partitions {
		s.parts = append(s.parts, &partition{changed: make(chan struct{})})
	}
	s.mux.HandleFunc("POST /oauth2/token", s.token)
	s.mux.HandleFunc("POST /oauth2/revoke", s.revoke)
	s.mux.HandleFunc("GET /sensors/entities/datafeed/v2", s.discover)
	s.mux.HandleFunc("POST /sensors/entities/datafeed-actions/v1/{partition}", s.refresh)
	s.mux.HandleFunc("GET /sensors/entities/datafeed/v1/{partition}", s.stream)
	s.registerResources()
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	s.mux.ServeHTTP(w, r)
}

// Append adds n generated events to partition p, dated now.
func (s *Server) Append(p, n int) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	part := s.parts[p]
	for range n {
		part.events = append(part.events, Event(s.cfg.Seed, p, int64(len(part.events)), now))
	}
	close(part.changed)
	part.changed = make(chan struct{})
}

// appendLocked adds one event line; s.mu held.
func (s *Server) appendLocked(p int, line []byte) {
	part := s.parts[p]
	part.events = append(part.events, line)
	close(part.changed)
	part.changed = make(chan struct{})
}

// Head returns the offset the next event of partition p will get.
func (s *Server) Head(p int) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int64(len(s.parts[p].events))
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Requests = int(s.requests.Load())
	st.Refreshes = map[int]int{}
	for k, v := range s.stats.Refreshes {
		st.Refreshes[k] = v
	}
	return st
}

// SetFaults replaces the fault probabilities.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.RetryAfter <= 0 {
		f.RetryAfter = time.Second
	}
	s.cfg.Faults = f
}

func randomToken() string {
	b := make([]byte, 24)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *Server) chance(p float64) bool { return p > 0 && s.rng.Float64() < p }

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func meta() map[string]any {
	return map[string]any{"query_time": 0.001, "powered_by": "emulator", "trace_id": randomToken()[:16]}
}

func apiError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]any{"meta": meta(), "resources": []any{}, "errors": []any{map[string]any{"code": code, "message": msg}}})
}

// rateLimited answers 429 when the fault fires; s.mu held.
func (s *Server) rateLimited(w http.ResponseWriter) bool {
	if !s.chance(s.cfg.Faults.RateLimit) {
		return false
	}
	s.stats.RateLimited++
	at := time.Now().Add(s.cfg.Faults.RetryAfter)
	v := strconv.FormatInt((at.UnixMilli()+999)/1000, 10)
	if s.cfg.Faults.RetryAfterMillis {
		v = strconv.FormatInt(at.UnixMilli(), 10)
	}
	w.Header().Set("X-Ratelimit-Limit", "6000")
	w.Header().Set("X-Ratelimit-Remaining", "0")
	w.Header().Set("X-Ratelimit-Retryafter", v)
	apiError(w, http.StatusTooManyRequests, "API rate limit exceeded.")
	return true
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		s.mu.Lock()
		s.stats.BadRequests++
		s.mu.Unlock()
		apiError(w, http.StatusBadRequest, "invalid form")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	w.Header().Set("X-Cs-Region", s.cfg.Region)
	w.Header().Set("X-Cs-Traceid", randomToken()[:16])
	now := time.Now()
	// The auth-failure limit: ~15 failures a minute, answered 429 without header.
	recent := s.authFail[:0]
	for _, t := range s.authFail {
		if now.Sub(t) < time.Minute {
			recent = append(recent, t)
		}
	}
	s.authFail = recent
	if len(s.authFail) >= 15 {
		apiError(w, http.StatusTooManyRequests, "too many failed authentication attempts")
		return
	}
	if r.PostForm.Get("client_id") != s.cfg.ClientID || r.PostForm.Get("client_secret") != s.cfg.ClientSecret {
		s.authFail = append(s.authFail, now)
		s.stats.TokenDenied++
		apiError(w, http.StatusForbidden, "access denied, invalid client")
		return
	}
	tok := randomToken()
	ttl := int64((s.cfg.TokenTTL + time.Second - 1) / time.Second)
	s.tokens[tok] = now.Add(time.Duration(ttl) * time.Second)
	s.stats.TokensIssued++
	writeJSON(w, http.StatusCreated, map[string]any{"access_token": tok, "expires_in": ttl, "token_type": "bearer"})
}

func (s *Server) revoke(w http.ResponseWriter, r *http.Request) {
	id, secret, ok := r.BasicAuth()
	r.ParseForm()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !ok || id != s.cfg.ClientID || secret != s.cfg.ClientSecret {
		apiError(w, http.StatusForbidden, "access denied, invalid client")
		return
	}
	delete(s.tokens, r.PostForm.Get("token"))
	s.stats.Revoked++
	writeJSON(w, http.StatusOK, map[string]any{"meta": meta(), "errors": []any{}})
}

// bearer checks the access token; s.mu held.
func (s *Server) bearer(w http.ResponseWriter, r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	exp, known := s.tokens[tok]
	if !ok || !known || time.Now().After(exp) {
		apiError(w, http.StatusUnauthorized, "access denied, authorization failed")
		return false
	}
	return true
}

var appIDPattern = regexp.MustCompile(`^[A-Za-z0-9]{1,32}$`)

func (s *Server) discover(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.bearer(w, r) || s.rateLimited(w) {
		return
	}
	if s.cfg.NoStreamScope {
		apiError(w, http.StatusForbidden, "access denied, authorization failed")
		return
	}
	appID := r.URL.Query().Get("appId")
	if !appIDPattern.MatchString(appID) {
		s.stats.BadRequests++
		apiError(w, http.StatusBadRequest, "appId must be 1-32 alphanumeric characters")
		return
	}
	s.stats.Discoveries++
	if s.chance(s.cfg.Faults.EmptyDiscovery) {
		s.stats.EmptyBodies++
		w.WriteHeader(http.StatusOK)
		return
	}
	now := time.Now()
	if cur := s.leases[appID]; cur != nil && !cur.dead && (cur.streams > 0 || now.Before(cur.idle.Add(s.cfg.LeaseLinger))) {
		// The appId is in use: Falcon answers 200 with no resources.
		s.stats.InUse++
		writeJSON(w, http.StatusOK, map[string]any{"meta": meta(), "resources": []any{}, "errors": []any{}})
		return
	}
	if old := s.leases[appID]; old != nil {
		s.endSession(old)
	}
	s.nextID++
	sess := &session{id: s.nextID, appID: appID, idle: now}
	s.leases[appID] = sess
	base := "http://" + r.Host
	var res []any
	for p := range s.parts {
		ps := &partSession{s: sess, partition: p, token: randomToken(), expires: now.Add(s.cfg.RefreshInterval)}
		sess.parts = append(sess.parts, ps)
		s.sessions[ps.token] = ps
		res = append(res, map[string]any{
			"dataFeedURL":                  fmt.Sprintf("%s/sensors/entities/datafeed/v1/%d?appId=%s", base, p, appID),
			"sessionToken":                 map[string]any{"token": ps.token, "expiration": ps.expires.UTC().Format(time.RFC3339Nano)},
			"refreshActiveSessionURL":      fmt.Sprintf("%s/sensors/entities/datafeed-actions/v1/%d?appId=%s&action_name=refresh_active_stream_session", base, p, appID),
			"refreshActiveSessionInterval": int64(s.cfg.RefreshInterval / time.Second),
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"meta": meta(), "resources": res, "errors": []any{}})
}

// endSession makes every token of sess stale; s.mu held.
func (s *Server) endSession(sess *session) {
	sess.dead = true
	for _, ps := range sess.parts {
		delete(s.sessions, ps.token)
	}
}

func (s *Server) partitionOf(w http.ResponseWriter, r *http.Request) (int, bool) {
	p, err := strconv.Atoi(r.PathValue("partition"))
	if err != nil || p < 0 || p >= len(s.parts) {
		apiError(w, http.StatusNotFound, "no such partition")
		return 0, false
	}
	return p, true
}

func (s *Server) refresh(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.bearer(w, r) || s.rateLimited(w) {
		return
	}
	p, ok := s.partitionOf(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	if q.Get("action_name") != "refresh_active_stream_session" || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		s.stats.BadRequests++
		apiError(w, http.StatusBadRequest, "action_name=refresh_active_stream_session and Content-Type: application/json required")
		return
	}
	sess := s.leases[q.Get("appId")]
	if sess == nil || sess.dead || sess.parts[p].expired || time.Now().After(sess.parts[p].expires) {
		apiError(w, http.StatusNotFound, "no active stream session for this appId and partition")
		return
	}
	sess.parts[p].expires = time.Now().Add(s.cfg.RefreshInterval)
	s.stats.Refreshes[p]++
	writeJSON(w, http.StatusOK, map[string]any{"meta": meta(), "errors": []any{}})
}

// EventAt returns the event at offset of partition p as streamed, or nil.
func (s *Server) EventAt(p int, offset int64) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p < 0 || p >= len(s.parts) || offset < 0 || offset >= int64(len(s.parts[p].events)) {
		return nil
	}
	return s.parts[p].events[offset]
}

// Partitions returns the number of partitions.
func (s *Server) Partitions() int { return len(s.parts) }
