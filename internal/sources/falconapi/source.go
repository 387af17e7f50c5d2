// Package falconapi polls CrowdStrike Falcon's REST API resources (hosts,
// alerts, vulnerabilities, FileVantage changes, incidents, behaviors) and
// emits each record version as an event of type falcon_<resource>, timed by
// the record's timestamp field.
//
// Per resource: list ids with the incremental filter <field>:>='<mark>'
// sorted ascending, fetch their details in chunks within the endpoint's
// limit (one chunk is one batch), and keep as position the high-water
// timestamp exactly as returned plus the ids already delivered at it;
// records at the mark that were delivered are dropped. A position is saved
// only when every batch before it was acknowledged by every sink (one
// ordered tracker per resource). All resources share one API client and so
// one rate limiter.
package falconapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/siemship/siemship/internal/checkpoints"
	"github.com/siemship/siemship/internal/event"
	"github.com/siemship/siemship/internal/falcon"
	"github.com/siemship/siemship/internal/pipeline"
)

var _ pipeline.Source = (*Source)(nil)

// Source is a falcon_api source. Run, Close and the Component methods may be
// called concurrently.
type Source struct {
	name    string
	cfg     Config
	client  *falcon.Client
	at      checkpoints.Location
	log     *slog.Logger
	m       *metrics
	pollers []*poller
	saveErr atomic.Pointer[string] // the last save's error, nil once a save worked

	saveMu    sync.Mutex
	loaded    bool
	kept      map[string]Position // the checkpoint as loaded, resources not configured included
	saved     map[string]uint64   // resource → tracker version saved
	closeOnce sync.Once
	closeErr  error
}

// New builds the source named name from cfg (ClientID and ClientSecret
// filled in), keeping its checkpoint at at. It contacts nothing: the
// checkpoint is read when Run starts (a standby must not read it early).
func New(name string, cfg Config, at checkpoints.Location, reg prometheus.Registerer, log *slog.Logger) (*Source, error) {
	client, err := falcon.New(falcon.Config{Cloud: cfg.Cloud, BaseURL: cfg.BaseURL, ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret,
		MemberCID: cfg.MemberCID, Metrics: falcon.NewMetrics(reg, name), Log: log})
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", name, err)
	}
	if _, err := cfg.start(time.Now()); err != nil {
		return nil, fmt.Errorf("source %s: start_from: %w", name, err)
	}
	s := &Source{name: name, cfg: cfg, at: at, log: log, client: client, m: newMetrics(reg, name), saved: map[string]uint64{}}
	for _, r := range cfg.Resources {
		sp, ok := specOf(r)
		if !ok {
			return nil, fmt.Errorf("source %s: unknown resource %q", name, r)
		}
		s.pollers = append(s.pollers, newPoller(s, sp))
	}
	return s, nil
}

// Run loads the checkpoint, then polls every resource until ctx ends,
// saving acknowledged positions.
func (s *Source) Run(ctx context.Context, out chan<- *event.Batch) error {
	if err := s.load(ctx); err != nil {
		return err
	}
	var wg sync.WaitGroup
	for _, p := range s.pollers {
		wg.Go(func() { p.run(ctx, out) })
	}
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return nil
		case <-t.C:
			s.trySave(ctx)
		}
	}
}

// trySave saves, and on failure keeps the positions in memory for the
// next tick: polling goes on (a restart then repeats, never skips),
// readiness and a counter say so, and the log says it once per new error.
// A conflict in the leader's ConfigMap makes the elector stop the source.
func (s *Source) trySave(ctx context.Context) {
	err := s.save(ctx)
	if err == nil {
		s.saveErr.Store(nil)
		return
	}
	s.m.saveFails.Inc()
	msg := err.Error()
	if last := s.saveErr.Swap(&msg); last == nil || *last != msg {
		s.log.Error("checkpoint not saved; positions stay in memory, retrying", "error", err)
	}
}

// load reads the checkpoint and places every poller at its resource's
// position, or at start_from.
func (s *Source) load(ctx context.Context) error {
	var st State
	ok, err := s.at.Load(ctx, &st)
	if err != nil {
		return fmt.Errorf("source %s: load checkpoint: %w", s.name, err)
	}
	if ok && st.Version != stateVersion {
		return fmt.Errorf("source %s: checkpoint %s has version %d, this build reads %d", s.name, s.at, st.Version, stateVersion)
	}
	start, err := s.cfg.start(time.Now())
	if err != nil {
		return fmt.Errorf("source %s: start_from: %w", s.name, err)
	}
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	s.kept = map[string]Position{}
	for r, pos := range st.Resources {
		s.kept[r] = pos
	}
	for _, p := range s.pollers {
		pos, ok := st.Resources[p.spec.name]
		if !ok {
			pos = Position{Timestamp: start.UTC().Format(time.RFC3339Nano)}
			s.log.Info("no checkpoint for resource, starting from start_from", "resource", p.spec.name, "timestamp", pos.Timestamp)
		}
		p.start(pos)
	}
	s.loaded = true
	return nil
}

// save writes the checkpoint when a committed position changed.
func (s *Source) save(ctx context.Context) error {
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	if !s.loaded {
		return nil
	}
	// Resources in the checkpoint that are not configured keep their place.
	st := State{Version: stateVersion, Resources: maps.Clone(s.kept)}
	changed := false
	versions := map[string]uint64{}
	for _, p := range s.pollers {
		pos, ok, v := p.tracker.Committed()
		if !ok {
			continue
		}
		st.Resources[p.spec.name] = pos
		versions[p.spec.name] = v
		changed = changed || s.saved[p.spec.name] != v
	}
	if !changed {
		return nil
	}
	if err := s.at.Save(ctx, st); err != nil {
		return fmt.Errorf("source %s: save checkpoint: %w", s.name, err)
	}
	s.saved = versions
	return nil
}

// Close saves the final positions. Idempotent; saves nothing without Run.
func (s *Source) Close() error {
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.closeErr = s.save(ctx)
	})
	return s.closeErr
}

// Ready reports false while the checkpoint cannot be saved or a resource
// cannot be polled for a reason an operator must fix (a missing scope, a
// removed API).
func (s *Source) Ready() (bool, string) {
	if e := s.saveErr.Load(); e != nil {
		return false, *e
	}
	for _, p := range s.pollers {
		if e := p.lastErr.Load(); e != nil {
			return false, p.spec.name + ": " + *e
		}
	}
	return true, ""
}

// Verify obtains an access token: the credentials and cloud work.
func (s *Source) Verify(ctx context.Context) error {
	if _, err := s.client.Token(ctx); err != nil {
		return fmt.Errorf("falcon API: %w", err)
	}
	return nil
}

// Status reports records per resource and the resources disabled.
func (s *Source) Status() []any {
	var kv []any
	var disabled []string
	for _, p := range s.pollers {
		kv = append(kv, p.spec.name, p.records.Load())
		if p.disabled.Load() {
			disabled = append(disabled, p.spec.name)
		}
	}
	if len(disabled) > 0 {
		kv = append(kv, "disabled", disabled)
	}
	return kv
}

// hold takes n bytes (at most the whole budget) from the agent's buffer
// budget, waiting while batches in flight hold it; release gives them back.
func (s *Source) hold(ctx context.Context, n int) (release func(), err error) {
	if s.cfg.Budget == nil {
		return func() {}, nil
	}
	w := min(int64(n), s.cfg.BudgetBytes)
	if err := s.cfg.Budget.Acquire(ctx, w); err != nil {
		return nil, err
	}
	return func() { s.cfg.Budget.Release(w) }, nil
}

// ErrGone reports whether err says Falcon removed a resource's API.
func ErrGone(err error) bool { return errors.Is(err, errGone) }
