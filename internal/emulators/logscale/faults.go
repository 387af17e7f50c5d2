package logscale

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// FaultKind names an injected fault; the Stats count faults by kind.
type FaultKind string

const (
	Fault503      FaultKind = "503"             // 503 Service Unavailable (back-pressure)
	Fault429Retry FaultKind = "429-retry-after" // 429 with Retry-After in seconds
	Fault429      FaultKind = "429"             // 429 without Retry-After
	Fault500      FaultKind = "500"             // 500 Internal Server Error
	FaultSlow     FaultKind = "slow"            // answer normally after SlowDelay
	FaultReset    FaultKind = "reset"           // TCP reset, no answer
	FaultFailNext FaultKind = "fail-next"       // an answer set by FailNext
	faultNone     FaultKind = ""
)

const (
	defaultSlowDelay  = 2 * time.Second
	defaultRetryAfter = 1 // seconds
)

// allFaultKinds are the kinds of the random mix when Faults.Kinds is empty.
var allFaultKinds = []FaultKind{Fault503, Fault429Retry, Fault429, Fault500, FaultSlow, FaultReset}

// Faults configures the random fault mix.
type Faults struct {
	// Rate is the fraction of ingest requests that get a fault (0 disables).
	Rate float64 `json:"rate"`
	// Seed makes the sequence of faults reproducible.
	Seed int64 `json:"seed"`
	// SlowDelay is how long a slow answer waits (default 2 s).
	SlowDelay time.Duration `json:"slowDelay"`
	// RetryAfterSeconds is the Retry-After of Fault429Retry (default 1).
	RetryAfterSeconds int `json:"retryAfterSeconds"`
	// Kinds to draw from, uniformly (default: all kinds but FaultFailNext).
	Kinds []FaultKind `json:"kinds"`
}

// fault is the decision for one request.
type fault struct {
	kind       FaultKind
	status     int    // for status faults; 0 with kind FaultReset or FaultFailNext means reset
	retryAfter string // Retry-After header, if any
	delay      time.Duration
}

// failN is a FailNext call not used up yet.
type failN struct {
	n          int
	status     int
	retryAfter string
}

type faults struct {
	mu    sync.Mutex
	cfg   Faults
	rng   *rand.Rand
	queue []failN // FailNext answers, in order
}

func newFaults() *faults { return &faults{rng: rand.New(rand.NewPCG(0, 0))} }

func (f *faults) reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cfg, f.queue = Faults{}, nil
}

// SetFaults replaces the random fault mix. Safe to call while serving.
// It panics on an unknown kind.
func (s *Server) SetFaults(cfg Faults) {
	if err := validKinds(cfg.Kinds); err != nil {
		panic("logscale: " + err.Error()) // a test's programming error
	}
	f := s.faults
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cfg = cfg
	f.rng = rand.New(rand.NewPCG(uint64(cfg.Seed), uint64(cfg.Seed)^0x9e3779b97f4a7c15))
}

// FailNext answers the next n ingest requests (after auth) with status and,
// if retryAfter is not empty, a Retry-After header. Status 0 resets the
// connection instead of answering. Nothing of those requests is stored.
// Calls queue up: FailNext(2, 503, "") then FailNext(1, 0, "") fails two
// requests with 503, then resets the third.
// It panics on a status that is neither 0 nor an error (400-599): a success
// that stores nothing would fake data loss.
func (s *Server) FailNext(n int, status int, retryAfter string) {
	if err := validFailStatus(status); err != nil {
		panic("logscale: " + err.Error()) // a test's programming error
	}
	f := s.faults
	f.mu.Lock()
	defer f.mu.Unlock()
	if n > 0 {
		f.queue = append(f.queue, failN{n, status, retryAfter})
	}
}

func faultStatus(k FaultKind) (int, bool) {
	switch k {
	case Fault503:
		return http.StatusServiceUnavailable, true
	case Fault429Retry, Fault429:
		return http.StatusTooManyRequests, true
	case Fault500:
		return http.StatusInternalServerError, true
	}
	return 0, false
}

// decide picks the fault for one request: FailNext first, then the mix.
func (f *faults) decide() fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.queue) > 0 {
		q := &f.queue[0]
		fl := fault{kind: FaultFailNext, status: q.status, retryAfter: q.retryAfter}
		if q.n--; q.n == 0 {
			f.queue = f.queue[1:]
		}
		return fl
	}
	if f.cfg.Rate <= 0 || f.rng.Float64() >= f.cfg.Rate {
		return fault{}
	}
	kinds := f.cfg.Kinds
	if len(kinds) == 0 {
		kinds = allFaultKinds
	}
	k := kinds[f.rng.IntN(len(kinds))]
	fl := fault{kind: k}
	fl.status, _ = faultStatus(k)
	switch k {
	case Fault429Retry:
		ra := f.cfg.RetryAfterSeconds
		if ra <= 0 {
			ra = defaultRetryAfter
		}
		fl.retryAfter = strconv.Itoa(ra)
	case FaultSlow:
		fl.delay = f.cfg.SlowDelay
		if fl.delay <= 0 {
			fl.delay = defaultSlowDelay
		}
	}
	return fl
}

// failsRequest reports whether the fault replaces the normal answer.
func (fl fault) failsRequest() bool {
	return fl.kind != faultNone && fl.kind != FaultSlow
}

// resetConn drops the client's connection with a TCP RST (SO_LINGER 0), so
// the client sees "connection reset by peer" and no answer. It reports
// false when the connection cannot be taken over (HTTP/2); the caller then
// aborts the request instead.
func resetConn(w http.ResponseWriter) bool {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return false
	}
	if nc, ok := conn.(interface{ NetConn() net.Conn }); ok {
		conn = nc.NetConn()
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
	return true
}

func validFailStatus(status int) error {
	if status != 0 && (status < 400 || status > 599) {
		return fmt.Errorf("fail-next status %d is neither 0 (reset) nor 400-599", status)
	}
	return nil
}
