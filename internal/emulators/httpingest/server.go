// Package httpingest is a strict receiver in the manner of Secureworks Taegis
// XDR's HTTP ingest (and similar SIEM endpoints that take Cloudflare's
// pushes): POST of NDJSON, gzip or plain, authenticated with
// "Authorization: Bearer <integration key>". It is strict where such
// endpoints are: the key, the encoding, one JSON object per line and a body
// limit, so that a sink passing it has shipped what a real one accepts. It
// injects the same faults as the LogScale emulator (package faults).
package httpingest

import (
	"bufio"
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/siemship/siemship/internal/emulators/faults"
)

// Config configures a receiver.
type Config struct {
	// Keys are the accepted integration keys.
	Keys []string
	// Path is the only path that ingests; empty: any path.
	Path string
	// MaxBodyBytes bounds a request body after decompression (default 8 MiB);
	// the wire size is bounded by the same number.
	MaxBodyBytes int64
	// AcceptStatus is the success answer (default 202: any 2xx must do).
	AcceptStatus int
	// OnEvent, if set, is called with every accepted line (a copy), in order,
	// before the answer is sent.
	OnEvent func(line []byte)
	// Discard keeps counters only (benchmarks): Events stays empty.
	Discard bool
}

// Stats are the receiver's counters.
type Stats struct {
	Requests map[int]int // by status answered; 0 is an injected reset
	Events   int         // accepted lines
	Faults   map[faults.Kind]int
}

// Server is the receiver. Safe for concurrent use.
type Server struct {
	cfg    Config
	faults *faults.Injector

	mu     sync.Mutex
	events [][]byte
	stats  Stats
}

// New returns a receiver.
func New(cfg Config) *Server {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 8 << 20
	}
	if cfg.AcceptStatus == 0 {
		cfg.AcceptStatus = http.StatusAccepted
	}
	return &Server{cfg: cfg, faults: faults.New(),
		stats: Stats{Requests: map[int]int{}, Faults: map[faults.Kind]int{}}}
}

// Faults is the receiver's fault injection, to set a mix or FailNext.
func (s *Server) Faults() *faults.Injector { return s.faults }

// Events returns copies of the accepted lines, in order of acceptance.
func (s *Server) Events() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.events...)
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := Stats{Requests: map[int]int{}, Faults: map[faults.Kind]int{}, Events: s.stats.Events}
	for k, v := range s.stats.Requests {
		out.Requests[k] = v
	}
	for k, v := range s.stats.Faults {
		out.Faults[k] = v
	}
	return out
}

func (s *Server) count(status int, fault faults.Kind) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Requests[status]++
	if fault != "" {
		s.stats.Faults[fault]++
	}
}

// ServeHTTP answers one request. Order: method and path, auth, injected
// fault, body, lines, slow delay, commit, answer.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	status, fault := s.serve(w, r)
	s.count(status, fault)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) (int, faults.Kind) {
	defer func() { _, _ = io.Copy(io.Discard, io.LimitReader(r.Body, s.cfg.MaxBodyBytes)) }()
	switch {
	case r.Method != http.MethodPost:
		w.Header().Set("Allow", http.MethodPost)
		return fail(w, http.StatusMethodNotAllowed, "POST only"), ""
	case s.cfg.Path != "" && r.URL.Path != s.cfg.Path:
		return fail(w, http.StatusNotFound, "no integration at "+r.URL.Path), ""
	case !s.authorized(r.Header.Get("Authorization")):
		return fail(w, http.StatusUnauthorized, "missing or unknown integration key"), ""
	}
	fl := s.faults.Decide()
	if fl.FailsRequest() {
		if fl.Status == 0 {
			faults.ResetConn(w)
			return 0, fl.Kind
		}
		if fl.RetryAfter != "" {
			w.Header().Set("Retry-After", fl.RetryAfter)
		}
		return fail(w, fl.Status, "injected fault "+string(fl.Kind)), fl.Kind
	}
	lines, status, reason := s.readLines(r)
	if status != 0 {
		return fail(w, status, reason), fl.Kind
	}
	if fl.Delay > 0 {
		t := time.NewTimer(fl.Delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return 0, fl.Kind // the client gave up: nothing is stored
		}
	}
	s.mu.Lock()
	for _, l := range lines {
		if s.cfg.OnEvent != nil {
			s.cfg.OnEvent(l)
		}
	}
	if !s.cfg.Discard {
		s.events = append(s.events, lines...)
	}
	s.stats.Events += len(lines)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(s.cfg.AcceptStatus)
	fmt.Fprintf(w, `{"accepted":%d}`, len(lines))
	return s.cfg.AcceptStatus, fl.Kind
}

func (s *Server) authorized(header string) bool {
	key, ok := strings.CutPrefix(header, "Bearer ")
	if !ok || key == "" {
		return false
	}
	for _, k := range s.cfg.Keys {
		if subtle.ConstantTimeCompare([]byte(k), []byte(key)) == 1 {
			return true
		}
	}
	return false
}

// readLines reads the body and checks every line; status is 0 when the
// body is acceptable.
func (s *Server) readLines(r *http.Request) (lines [][]byte, status int, reason string) {
	wire, err := io.ReadAll(io.LimitReader(r.Body, s.cfg.MaxBodyBytes+1))
	if err != nil {
		return nil, http.StatusBadRequest, "reading body: " + err.Error()
	}
	if int64(len(wire)) > s.cfg.MaxBodyBytes {
		return nil, http.StatusRequestEntityTooLarge, "body over " + strconv.FormatInt(s.cfg.MaxBodyBytes, 10) + " bytes"
	}
	body := wire
	gz := bytes.HasPrefix(wire, []byte{0x1f, 0x8b})
	switch enc := r.Header.Get("Content-Encoding"); {
	case enc == "gzip":
		if body, err = gunzip(wire, s.cfg.MaxBodyBytes); err != nil {
			var tooLarge *bodyTooLarge
			if errors.As(err, &tooLarge) {
				return nil, http.StatusRequestEntityTooLarge, err.Error()
			}
			return nil, http.StatusBadRequest, "corrupt gzip: " + err.Error()
		}
	case enc != "" && enc != "identity":
		return nil, http.StatusUnsupportedMediaType, "unsupported Content-Encoding " + enc
	case gz:
		return nil, http.StatusBadRequest, "gzip body without Content-Encoding: gzip"
	}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 0, 64<<10), int(s.cfg.MaxBodyBytes)+1)
	for n := 1; sc.Scan(); n++ {
		line := sc.Bytes()
		if !isObject(line) {
			return nil, http.StatusBadRequest, fmt.Sprintf("line %d is not one JSON object", n)
		}
		lines = append(lines, bytes.Clone(line))
	}
	if err := sc.Err(); err != nil {
		return nil, http.StatusBadRequest, "reading lines: " + err.Error()
	}
	return lines, 0, ""
}

func isObject(line []byte) bool {
	line = bytes.TrimSpace(line)
	return len(line) > 1 && line[0] == '{' && json.Valid(line)
}

type bodyTooLarge struct{ limit int64 }

func (e *bodyTooLarge) Error() string {
	return "decompressed body over " + strconv.FormatInt(e.limit, 10) + " bytes"
}

// gunzip decompresses at most limit bytes: a gzip bomb costs no more.
func gunzip(wire []byte, limit int64) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(wire))
	if err != nil {
		return nil, err
	}
	out, err := io.ReadAll(io.LimitReader(zr, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(out)) > limit {
		return nil, &bodyTooLarge{limit}
	}
	return out, nil
}

func fail(w http.ResponseWriter, status int, reason string) int {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	msg, _ := json.Marshal(reason)
	fmt.Fprintf(w, `{"error":%s}`, msg)
	return status
}
