// Package syslog is the sink that ships events to syslog receivers (rsyslog,
// syslog-ng, QRadar, ALog-style collectors, Devo relays) as RFC 3164 or RFC
// 5424 messages over TCP, TLS or RELP.
//
// What "delivered" means, honestly:
//   - tcp/tls, ack: written — the message was written to the socket. It may
//     still sit in the kernel's send buffer; when the connection breaks,
//     what the kernel had not sent is lost without notice.
//   - tcp/tls, ack: peer — the peer's TCP stack acknowledged every byte of
//     the message (the socket's send queue drained past it, SIOCOUTQ). What
//     was not acknowledged when the connection broke is sent again on the
//     next one: duplicates are possible, loss on the sender's side is not.
//     The receiver can still lose what it had received but not processed.
//   - relp — the receiver answered "200 OK" for the message (RELP, rsyslog's
//     reliable event logging protocol). Unanswered messages are sent again
//     after a reconnect.
//
// The sink holds one connection. When the receiver is down or slow it stops
// taking batches (back-pressure to the source) and never drops an event.
package syslog

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/siemship/siemship/internal/event"
	"github.com/siemship/siemship/internal/pipeline"
	"github.com/siemship/siemship/internal/retry"
	"github.com/siemship/siemship/internal/validate"
)

var _ pipeline.Sink = (*Sink)(nil)

// logQuiet is how often a failure that goes on is logged at warn level.
const logQuiet = 30 * time.Second

// writeChunk bounds one write call: large enough to amortise the syscall,
// small enough that a write deadline means something.
const writeChunk = 256 << 10

// Sink ships events to one syslog receiver. Run may be called once; Ready,
// Verify and Status are safe to call concurrently with it.
type Sink struct {
	cfg     Config
	name    string
	log     *slog.Logger
	m       *metrics
	health  *health
	tls     *tls.Config // nil for plain TCP
	b       *builder    // Run goroutine only
	framing string
	peer    bool // ack: peer

	q    queue // Run goroutine only
	wbuf []byte

	streak int // connections dropped since a message was last acknowledged

	acked   atomic.Int64 // for Status
	pending atomic.Int64
}

// New builds a sink named name (the "sink" label of its metrics; log
// already carries it). It validates cfg and loads the TLS files.
func New(cfg Config, name string, reg prometheus.Registerer, log *slog.Logger) (*Sink, error) {
	v := validate.New("")
	cfg.Validate(v)
	if err := v.Err(); err != nil {
		return nil, fmt.Errorf("syslog sink %s: %w", name, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(reg, name)
	if err != nil {
		return nil, fmt.Errorf("syslog sink %s: %w", name, err)
	}
	s := &Sink{cfg: cfg, name: name, log: log, m: m, health: newHealth(logQuiet, m.ready)}
	if cfg.Transport != TransportRELP {
		s.framing = cfg.framing()
		s.peer = cfg.ack() == AckPeer
	}
	if cfg.useTLS() {
		if s.tls, err = tlsConfig(&cfg); err != nil {
			return nil, fmt.Errorf("syslog sink %s: %w", name, err)
		}
	}
	if s.b, err = newBuilder(&cfg, s.framing); err != nil {
		return nil, fmt.Errorf("syslog sink %s: %w", name, err)
	}
	return s, nil
}

// Ready reports whether the sink is connected and delivering; when not,
// why.
func (s *Sink) Ready() (bool, string) { return s.health.state() }

// Verify connects (TLS handshake and RELP open included) and disconnects,
// moving no events.
func (s *Sink) Verify(ctx context.Context) error {
	c, err := s.open(ctx)
	if err != nil {
		return err
	}
	if s.cfg.Transport == TransportRELP {
		s.relpClose(c)
	}
	c.close()
	return nil
}

// Status returns the counts for the periodic status line.
func (s *Sink) Status() []any {
	return []any{"events_acked", s.acked.Load(), "unacked", s.pending.Load()}
}

// Run delivers the batches from in until in is closed and everything taken
// is acknowledged, then returns nil. When ctx ends it returns at once;
// unacknowledged events stay so.
func (s *Sink) Run(ctx context.Context, in <-chan *event.Batch) error {
	if s.cfg.Transport == TransportRELP {
		return s.runRELP(ctx, in)
	}
	return s.runStream(ctx, in)
}

// enqueue builds the messages of b into the queue.
func (s *Sink) enqueue(b *event.Batch) {
	q := &s.q
	for i := range b.Events {
		ev := &b.Events[i]
		off := len(q.arena)
		var cut bool
		q.arena, cut = s.b.frame(q.arena, b.Source, ev)
		if cut {
			s.m.truncated.Inc()
		}
		q.ents = append(q.ents, entry{ev: ev, off: off, n: len(q.arena) - off})
	}
	s.pending.Store(int64(q.len()))
}

// delivered acknowledges the first n queued messages.
func (s *Sink) delivered(n int) {
	if n == 0 {
		return
	}
	s.q.pop(n)
	s.streak = 0
	s.m.messagesAcked.Add(float64(n))
	s.acked.Add(int64(n))
	s.pending.Store(int64(s.q.len()))
}

// open dials and, for RELP, opens the session.
func (s *Sink) open(ctx context.Context) (*conn, error) {
	c, err := dial(ctx, s.cfg.Address, s.tls, s.cfg.DialTimeout)
	if err != nil {
		return nil, err
	}
	if s.cfg.Transport == TransportRELP {
		if err := s.relpOpen(c); err != nil {
			c.close()
			return nil, err
		}
	}
	return c, nil
}

// connect opens a connection, retrying with backoff until it succeeds or
// ctx ends (then it returns ctx's error).
func (s *Sink) connect(ctx context.Context, reconnect bool) (*conn, error) {
	// A receiver that accepts connections and then fails every one must
	// not be hammered: the backoff keeps growing until a message passes.
	if s.streak > 0 && !retry.Sleep(ctx, retry.Backoff(s.streak-1, s.cfg.RetryInitial, s.cfg.RetryMax)) {
		return nil, ctx.Err()
	}
	for attempt := s.streak; ; attempt++ {
		c, err := s.open(ctx)
		if err == nil {
			s.m.connects.Inc()
			s.m.connections.Set(1)
			if reconnect {
				s.m.reconnects.Inc()
			}
			if p := s.health.ok(); p != "" {
				s.log.Info("syslog receiver reachable again", "address", s.cfg.Address, "after", p)
			}
			return c, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// Refused, unreachable, timed out or a failed handshake: the
		// receiver may be back any moment, and nothing is lost by waiting.
		s.failed("dial", err)
		if !retry.Sleep(ctx, retry.Backoff(attempt, s.cfg.RetryInitial, s.cfg.RetryMax)) {
			return nil, ctx.Err()
		}
	}
}

// failed records and logs (rate-limited) a failure at stage.
func (s *Sink) failed(stage string, err error) {
	s.m.failures.WithLabelValues(stage).Inc()
	level := slog.LevelDebug
	if s.health.fail(stage, fmt.Sprintf("syslog receiver %s: %s failed: %v", s.cfg.Address, stage, err)) {
		level = slog.LevelWarn
	}
	s.log.Log(context.Background(), level, "syslog delivery failing; holding events and retrying",
		"address", s.cfg.Address, "stage", stage, "err", err, "unacked", s.q.len())
}

// drop closes c after a failure at stage; the caller sends what was not
// acknowledged again on the next connection.
func (s *Sink) drop(c *conn, stage string, err error) {
	c.close()
	s.streak++
	s.m.connections.Set(0)
	s.m.unacked.Set(0)
	s.failed(stage, err)
	if n := s.q.rewind(); n > 0 {
		s.m.resent.Add(float64(n))
	}
}

// errClosed is the reader's error when the receiver closed the connection.
var errClosed = errors.New("the receiver closed the connection")
