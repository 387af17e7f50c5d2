// Package falconstream reads CrowdStrike Falcon event streams (the
// "Streaming API"): it discovers the partitions of an appId, streams every
// partition concurrently, refreshes each partition's session on its own
// timer at 90 % of refreshActiveSessionInterval whatever the event flow,
// and after an EOF, an error, a 401, silence or a failed refresh discovers
// again (never reusing a session token or URL) and reopens every partition
// after the last offset it read. Each partition has its own ordered ack
// tracker; offsets are persisted only when every sink delivered them.
//
// A discovery makes one session covering every partition, and Falcon lets
// an appId hold one session: when one partition's stream ends, the whole
// session ends and is rediscovered.
package falconstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"

	"github.com/siemship/siemship/internal/ack"
	"github.com/siemship/siemship/internal/event"
	"github.com/siemship/siemship/internal/falcon"
	"github.com/siemship/siemship/internal/pipeline"
	"github.com/siemship/siemship/internal/retry"
	"github.com/siemship/siemship/internal/validate"
)

var _ pipeline.Source = (*Source)(nil)

// streamScope is the API scope discovery and refresh need.
const streamScope = "Event streams: read"

// Source is one Falcon event streams consumer. Run may be called once.
type Source struct {
	cfg    Config
	name   string
	log    *slog.Logger
	m      *metrics
	client *falcon.Client
	store  OffsetStore
	budget *semaphore.Weighted
	pool   sync.Pool // *[]byte batch buffers

	mu     sync.Mutex
	parts  map[string]*partState
	loaded bool

	saveMu       sync.Mutex
	savedVersion uint64

	status atomic.Pointer[string] // session-level problem; "" when streaming
}

// partState is what survives a session: the offsets of one partition.
// next and lastTime belong to the partition's stream goroutine (one per
// session, sessions one after another).
type partState struct {
	id      string
	tracker ack.Tracker[int64]
	next    int64 // next offset to read; -1: none read or committed yet
	// lastTime dates events without a usable eventCreationTime.
	lastTime  int64
	streaming atomic.Bool
	problem   atomic.Pointer[string]
	types     map[string]string // interned event types

	seen, committedG prometheus.Gauge
	eventsC, ackedC  prometheus.Counter
}

// New prepares a source named name; it contacts nothing. cfg must carry
// the credentials (see CredentialRefs). store keeps the offsets; budget
// bounds the bytes of batches not yet delivered; reg gets the metrics; log
// already names the source.
func New(cfg Config, name string, store OffsetStore, budget *semaphore.Weighted, reg prometheus.Registerer, log *slog.Logger) (*Source, error) {
	v := validate.New("sources." + name + ".")
	cfg.Validate(v)
	if err := v.Err(); err != nil {
		return nil, err
	}
	client, err := falcon.New(falcon.Config{
		Cloud: cfg.Cloud, BaseURL: cfg.BaseURL, ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret,
		MemberCID: cfg.MemberCID, Metrics: falcon.NewMetrics(reg, name), Log: log,
	})
	if err != nil {
		return nil, fmt.Errorf("falcon_stream source %s: %w", name, err)
	}
	return newWithClient(cfg, name, client, store, budget, reg, log), nil
}

func newWithClient(cfg Config, name string, client *falcon.Client, store OffsetStore, budget *semaphore.Weighted, reg prometheus.Registerer, log *slog.Logger) *Source {
	s := &Source{cfg: cfg, name: name, log: log, m: newMetrics(reg, name), client: client, store: store, budget: budget,
		parts: map[string]*partState{}}
	s.pool.New = func() any { b := make([]byte, 0, int(cfg.BatchBytes)); return &b }
	s.setStatus("starting")
	return s
}

// Run streams until ctx ends. It never closes out.
func (s *Source) Run(ctx context.Context, out chan<- *event.Batch) error {
	if err := s.load(ctx); err != nil {
		s.setStatus(err.Error())
		return err
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	saveCtx, stopSaving := context.WithCancel(context.Background())
	defer stopSaving()
	wg.Go(func() { s.saveLoop(saveCtx) })

	appID := s.cfg.AppID
	var inUseSince time.Time
	attempt := 0
	for ctx.Err() == nil {
		if attempt > 0 && !retry.Sleep(ctx, s.backoff(attempt)) {
			break
		}
		attempt++
		res, err := s.discover(ctx, appID)
		switch {
		case ctx.Err() != nil:
		case err != nil:
			s.setStatus("discovery failed: " + err.Error())
			lvl := slog.LevelWarn
			if falcon.Permanent(err) {
				lvl = slog.LevelError
			}
			s.log.Log(ctx, lvl, "Falcon stream discovery failed, retrying", "error", err, "app_id", appID, "retry_in", s.backoff(attempt).String())
		case len(res) == 0:
			s.m.inUse.Inc()
			if inUseSince.IsZero() {
				inUseSince = time.Now()
			}
			s.setStatus(fmt.Sprintf("appId %s is in use (discovery returned no partitions)", appID))
			s.log.Warn("Falcon returned no stream partitions: the appId is in use by another session — most likely this source's "+
				"previous session, which Falcon holds for a while after a restart or disconnect, else another replica or tool "+
				"with the same app_id; retrying", "app_id", appID, "in_use_for", time.Since(inUseSince).Round(time.Second).String(),
				"retry_in", s.backoff(attempt).String())
			if s.cfg.FallbackAppID != "" && appID == s.cfg.AppID && time.Since(inUseSince) >= s.cfg.AppIDWait {
				s.log.Warn("switching to fallback_app_id", "app_id", s.cfg.FallbackAppID, "after", s.cfg.AppIDWait.String())
				appID = s.cfg.FallbackAppID
			}
		default:
			inUseSince = time.Time{}
			s.setStatus("")
			progressed, part, cause := s.runSession(ctx, out, res)
			if ctx.Err() != nil {
				break
			}
			s.m.reconnects.WithLabelValues(part, cause.kind).Inc()
			s.log.Info("Falcon stream session ended, discovering again", "partition", part, "cause", cause.kind, "error", cause.err)
			if progressed {
				attempt = 0 // reconnect at once after a session that moved data
			}
		}
	}
	s.setStatus("stopped")
	return nil
}

// backoff is full jitter between retry_initial and retry_max.
func (s *Source) backoff(attempt int) time.Duration {
	d := s.cfg.RetryInitial << min(attempt-1, 20)
	if d > s.cfg.RetryMax || d <= 0 {
		d = s.cfg.RetryMax
	}
	return s.cfg.RetryInitial/2 + rand.N(d)
}

// load reads the committed offsets once.
func (s *Source) load(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.loaded {
		return nil
	}
	offsets, ok, err := s.store.Load(ctx)
	if err != nil {
		return fmt.Errorf("falcon_stream source %s: load offsets: %w", s.name, err)
	}
	for id, off := range offsets {
		p := s.partLocked(id)
		p.tracker.Start(off)
		p.next = off + 1
		s.m.committed.WithLabelValues(id).Set(float64(off))
	}
	s.loaded = true
	if ok {
		s.log.Info("resuming Falcon streams after the committed offsets", "offsets", fmt.Sprint(offsets))
	}
	return nil
}

func (s *Source) part(id string) *partState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.partLocked(id)
}

func (s *Source) partLocked(id string) *partState {
	p := s.parts[id]
	if p == nil {
		p = &partState{id: id, next: -1, types: map[string]string{},
			seen: s.m.seen.WithLabelValues(id), committedG: s.m.committed.WithLabelValues(id),
			eventsC: s.m.events.WithLabelValues(id), ackedC: s.m.acked.WithLabelValues(id)}
		s.parts[id] = p
		s.m.streaming.WithLabelValues(id).Set(0)
	}
	return p
}

// Committed returns the committed offset of every partition that has one.
func (s *Source) Committed() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int64{}
	for id, p := range s.parts {
		if off, ok, _ := p.tracker.Committed(); ok {
			out[id] = off
		}
	}
	return out
}

// committedVersion sums the trackers' versions: it changes whenever an
// offset does.
func (s *Source) committedVersion() (map[string]int64, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int64{}
	var version uint64
	for id, p := range s.parts {
		off, ok, v := p.tracker.Committed()
		version += v
		if ok {
			out[id] = off
		}
	}
	return out, version
}

func (s *Source) saveLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.CheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.save(ctx); err != nil {
				// The offsets stay in memory; the next tick tries again.
				s.log.Error("offsets not saved", "error", err)
			}
		}
	}
}

func (s *Source) save(ctx context.Context) error {
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	offsets, version := s.committedVersion()
	if version == s.savedVersion || len(offsets) == 0 {
		return nil
	}
	if err := s.store.Save(ctx, offsets); err != nil {
		s.m.saveFails.Inc()
		return fmt.Errorf("save offsets of source %s: %w", s.name, err)
	}
	s.savedVersion = version
	return nil
}

// Close persists the offsets delivered so far. Idempotent; safe without Run.
func (s *Source) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.save(ctx)
}

func (s *Source) setStatus(st string) { s.status.Store(&st) }

// Ready reports whether every partition streams, naming the first that
// does not and why.
func (s *Source) Ready() (bool, string) {
	if st := *s.status.Load(); st != "" {
		return false, st
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := slices.Sorted(maps.Keys(s.parts))
	var down []string
	for _, id := range ids {
		p := s.parts[id]
		if !p.streaming.Load() {
			why := "connecting"
			if w := p.problem.Load(); w != nil && *w != "" {
				why = *w
			}
			down = append(down, fmt.Sprintf("partition %s not streaming: %s", id, why))
		}
	}
	if len(ids) == 0 {
		return false, "no partition discovered yet"
	}
	if len(down) > 0 {
		return false, strings.Join(down, "; ")
	}
	return true, ""
}

// Verify obtains an access token, which proves the credentials, the cloud
// and the IP allowlist. It does not discover: a discovery would take the
// appId's session from the running agent.
func (s *Source) Verify(ctx context.Context) error {
	_, err := s.client.Token(ctx)
	return err
}

// Status returns the status-line fields.
func (s *Source) Status() []any {
	s.mu.Lock()
	n, streaming, pending := len(s.parts), 0, 0
	for _, p := range s.parts {
		if p.streaming.Load() {
			streaming++
		}
		pending += p.tracker.Pending()
	}
	s.mu.Unlock()
	return []any{"partitions", n, "streaming", streaming, "batches_in_flight", pending}
}

// errCause is why a session ended.
type errCause struct {
	kind string
	err  error
}

func (c *errCause) Error() string { return c.kind + ": " + fmt.Sprint(c.err) }

func sessionEnd(kind string, err error) error { return &errCause{kind: kind, err: err} }

func causeOf(err error) *errCause {
	var c *errCause
	if errors.As(err, &c) {
		return c
	}
	return &errCause{kind: causeError, err: err}
}
