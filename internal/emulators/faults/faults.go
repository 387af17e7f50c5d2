// Package faults is the fault injection the emulators share: a reproducible
// random mix of 503, 429 (with and without Retry-After), 500, slow answers
// and TCP resets, plus queued FailNext answers.
package faults

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Kind names an injected fault.
type Kind string

const (
	Fault503      Kind = "503"             // 503 Service Unavailable (back-pressure)
	Fault429Retry Kind = "429-retry-after" // 429 with Retry-After in seconds
	Fault429      Kind = "429"             // 429 without Retry-After
	Fault500      Kind = "500"             // 500 Internal Server Error
	FaultSlow     Kind = "slow"            // answer normally after SlowDelay
	FaultReset    Kind = "reset"           // TCP reset, no answer
	FaultFailNext Kind = "fail-next"       // an answer set by FailNext
	faultNone     Kind = ""
)

const (
	DefaultSlowDelay  = 2 * time.Second
	defaultRetryAfter = 1 // seconds
)

// AllKinds are the kinds of the random mix when Faults.Kinds is empty.
var AllKinds = []Kind{Fault503, Fault429Retry, Fault429, Fault500, FaultSlow, FaultReset}

// Config configures the random fault mix.
type Config struct {
	// Rate is the fraction of ingest requests that get a fault (0 disables).
	Rate float64 `json:"rate"`
	// Seed makes the sequence of faults reproducible.
	Seed int64 `json:"seed"`
	// SlowDelay is how long a slow answer waits (default 2 s).
	SlowDelay time.Duration `json:"slowDelay"`
	// RetryAfterSeconds is the Retry-After of Fault429Retry (default 1).
	RetryAfterSeconds int `json:"retryAfterSeconds"`
	// Kinds to draw from, uniformly (default: all kinds but FaultFailNext).
	Kinds []Kind `json:"kinds"`
}

// Fault is the decision for one request.
type Fault struct {
	Kind       Kind
	Status     int    // for status faults; 0 with kind FaultReset or FaultFailNext means reset
	RetryAfter string // Retry-After header, if any
	Delay      time.Duration
}

// failN is a FailNext call not used up yet.
type failN struct {
	n          int
	status     int
	retryAfter string
}

// Injector decides the fault of each request. Safe for concurrent use.
type Injector struct {
	mu    sync.Mutex
	cfg   Config
	rng   *rand.Rand
	queue []failN // FailNext answers, in order
}

// New returns an injector without faults.
func New() *Injector { return &Injector{rng: rand.New(rand.NewPCG(0, 0))} }

// Reset removes every fault.
func (f *Injector) Reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cfg, f.queue = Config{}, nil
}

// Set replaces the random fault mix. It panics on an unknown kind.
func (f *Injector) Set(cfg Config) {
	if err := ValidKinds(cfg.Kinds); err != nil {
		panic("faults: " + err.Error()) // a test's programming error
	}
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
func (f *Injector) FailNext(n int, status int, retryAfter string) {
	if err := ValidFailStatus(status); err != nil {
		panic("faults: " + err.Error()) // a test's programming error
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if n > 0 {
		f.queue = append(f.queue, failN{n, status, retryAfter})
	}
}

func faultStatus(k Kind) (int, bool) {
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

// Decide picks the fault for one request: FailNext first, then the mix.
func (f *Injector) Decide() Fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.queue) > 0 {
		q := &f.queue[0]
		fl := Fault{Kind: FaultFailNext, Status: q.status, RetryAfter: q.retryAfter}
		if q.n--; q.n == 0 {
			f.queue = f.queue[1:]
		}
		return fl
	}
	if f.cfg.Rate <= 0 || f.rng.Float64() >= f.cfg.Rate {
		return Fault{}
	}
	kinds := f.cfg.Kinds
	if len(kinds) == 0 {
		kinds = AllKinds
	}
	k := kinds[f.rng.IntN(len(kinds))]
	fl := Fault{Kind: k}
	fl.Status, _ = faultStatus(k)
	switch k {
	case Fault429Retry:
		ra := f.cfg.RetryAfterSeconds
		if ra <= 0 {
			ra = defaultRetryAfter
		}
		fl.RetryAfter = strconv.Itoa(ra)
	case FaultSlow:
		fl.Delay = f.cfg.SlowDelay
		if fl.Delay <= 0 {
			fl.Delay = DefaultSlowDelay
		}
	}
	return fl
}

// FailsRequest reports whether the fault replaces the normal answer.
func (fl Fault) FailsRequest() bool {
	return fl.Kind != faultNone && fl.Kind != FaultSlow
}

// ResetConn drops the client's connection with a TCP RST (SO_LINGER 0), so
// the client sees "connection reset by peer" and no answer. It reports
// false when the connection cannot be taken over (HTTP/2); the caller then
// aborts the request instead.
func ResetConn(w http.ResponseWriter) bool {
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

// ValidFailStatus checks a FailNext status.
func ValidFailStatus(status int) error {
	if status != 0 && (status < 400 || status > 599) {
		return fmt.Errorf("fail-next status %d is neither 0 (reset) nor 400-599", status)
	}
	return nil
}

// ValidKinds checks that every kind is one of the random mix's.
func ValidKinds(kinds []Kind) error {
	for _, k := range kinds {
		if _, ok := faultStatus(k); !ok && k != FaultSlow && k != FaultReset {
			return fmt.Errorf("unknown fault kind %q", k)
		}
	}
	return nil
}
