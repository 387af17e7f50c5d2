package logscale

import (
	"net/http"
	"sync"
	"time"
)

// RequestRecord describes one ingest request as the receiver saw it.
type RequestRecord struct {
	ID              uint64        `json:"id"`
	Time            time.Time     `json:"time"`
	Method          string        `json:"method"`
	Path            string        `json:"path"`
	Route           string        `json:"route"`
	Headers         http.Header   `json:"headers"` // Authorization redacted
	ContentEncoding string        `json:"contentEncoding,omitempty"`
	CompressedBytes int64         `json:"compressedBytes"` // read off the wire
	DecodedBytes    int64         `json:"decodedBytes"`
	Events          int64         `json:"events"` // events stored (0 unless committed)
	Status          int           `json:"status"` // 0: connection reset, no answer
	Fault           FaultKind     `json:"fault,omitempty"`
	Reason          string        `json:"reason,omitempty"` // why it was not a 200
	Duration        time.Duration `json:"duration"`
}

// StatusClientGone is recorded when the client went away before the answer
// (as nginx logs it); nothing was stored.
const StatusClientGone = 499

// requestLog keeps the most recent records in a ring.
type requestLog struct {
	mu   sync.Mutex
	max  int
	ring []RequestRecord
	next int // index of the oldest record once the ring is full
}

func newRequestLog(max int) *requestLog { return &requestLog{max: max} }

func (l *requestLog) add(r RequestRecord) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.ring) < l.max {
		l.ring = append(l.ring, r)
		return
	}
	l.ring[l.next] = r
	l.next = (l.next + 1) % l.max
}

func (l *requestLog) all() []RequestRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]RequestRecord, 0, len(l.ring))
	out = append(out, l.ring[l.next:]...)
	return append(out, l.ring[:l.next]...)
}

func (l *requestLog) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ring, l.next = nil, 0
}

// Requests returns the recorded ingest requests, oldest first (at most
// Config.MaxRequestLog of the most recent).
func (s *Server) Requests() []RequestRecord { return s.reqs.all() }

// recordHeaders copies h with the Authorization secret hidden.
func recordHeaders(h http.Header) http.Header {
	c := h.Clone()
	if v := c.Get("Authorization"); v != "" {
		c.Set("Authorization", redactAuth(v))
	}
	return c
}
