package k8smeta

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// health tracks whether the caches are synced and which API calls fail.
// Informer failures make enrichment unavailable (Enrich stops waiting for
// pods); owner lookup failures (replicasets, jobs) only make Ready report
// them.
type health struct {
	log     *slog.Logger
	metrics *metrics

	mu         sync.Mutex
	synced     bool
	syncedOnce sync.Once
	syncedCh   chan struct{}      // closed when the caches first synced
	failures   map[string]failure // by resource: "pods", "namespaces", "nodes", "replicasets", "jobs"
	usable     atomic.Bool        // synced and no informer failure
}

type failure struct {
	verb  string
	since time.Time
	err   error
}

// informed are the resources watched by informers; the others are looked up.
var informed = map[string]bool{"pods": true, "namespaces": true, "nodes": true}

func newHealth(log *slog.Logger, m *metrics) *health {
	return &health{log: log, metrics: m, failures: make(map[string]failure), syncedCh: make(chan struct{})}
}

// observe records the result of an API call (verb "list", "watch" or "get")
// for what ("pods", "owners", ...). A success clears an earlier failure of
// the same verb; a successful watch clears any, as it means the informer is
// streaming again. (A list alone must not: with watch forbidden, list
// succeeds and the following watch fails, over and over.)
func (h *health) observe(what, verb string, err error) {
	if errors.Is(err, context.Canceled) {
		return // shutting down, not an API problem
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	prev, failing := h.failures[what]
	switch {
	case err == nil && failing && (verb == prev.verb || verb == "watch"):
		delete(h.failures, what)
		h.log.Info("kubernetes API calls succeed again", "resource", what, "failing_since", prev.since)
	case err != nil && !failing:
		h.failures[what] = failure{verb: verb, since: time.Now(), err: err}
		h.log.Warn("kubernetes API call failed; enriching from the cache as it is", "resource", what, "err", err)
	case err != nil:
		h.failures[what] = failure{verb: verb, since: prev.since, err: err}
	}
	if err != nil {
		h.metrics.apiErrors.WithLabelValues(what).Inc()
	}
	h.update()
}

func (h *health) setSynced() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.synced = true
	h.syncedOnce.Do(func() { close(h.syncedCh) })
	h.log.Info("kubernetes metadata caches synced")
	h.update()
}

// update recomputes usable; h.mu must be held.
func (h *health) update() {
	usable := h.synced
	for what := range h.failures {
		if informed[what] {
			usable = false
		}
	}
	h.usable.Store(usable)
	if usable {
		h.metrics.available.Set(1)
	} else {
		h.metrics.available.Set(0)
	}
}

// ready reports whether enrichment fully works, and if not, why, naming the
// failing calls with the API server's own error (which names a missing
// permission).
func (h *health) ready() (bool, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.failures) == 0 {
		if !h.synced {
			return false, "waiting for kubernetes metadata caches to sync"
		}
		return true, "kubernetes metadata caches synced"
	}
	whats := make([]string, 0, len(h.failures))
	for what := range h.failures {
		whats = append(whats, what)
	}
	sort.Strings(whats)
	first := h.failures[whats[0]]
	parts := make([]string, 0, len(whats))
	for _, what := range whats {
		f := h.failures[what]
		if f.since.Before(first.since) {
			first = f
		}
		parts = append(parts, fmt.Sprintf("%s: %v", what, f.err))
	}
	state := "unreachable"
	if apierrors.IsForbidden(first.err) || apierrors.IsUnauthorized(first.err) {
		state = "access denied"
	}
	return false, fmt.Sprintf("kubernetes API %s since %s: %s",
		state, first.since.UTC().Format(time.RFC3339), strings.Join(parts, "; "))
}
