package agent

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// health tracks the agent's loops for /healthz: a loop that returned while
// the agent runs is dead, and the process should be restarted.
type health struct {
	mu      sync.Mutex
	running map[string]bool
	stopped map[string]string
}

func newHealth() *health {
	return &health{running: map[string]bool{}, stopped: map[string]string{}}
}

// loop wraps a loop's body so its liveness is tracked.
func (h *health) loop(name string, body func() error) func() {
	h.mu.Lock()
	h.running[name] = true
	h.mu.Unlock()
	return func() {
		err := body()
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(h.running, name)
		reason := "returned"
		if err != nil {
			reason = err.Error()
		}
		h.stopped[name] = reason
	}
}

func (h *health) dead() map[string]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.stopped) == 0 {
		return nil
	}
	out := make(map[string]string, len(h.stopped))
	for k, v := range h.stopped {
		out[k] = v
	}
	return out
}

// check is one line of /readyz.
type check struct {
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
	// Gating checks decide readiness; the others are informational.
	Gating bool `json:"gating"`
}

func (a *Agent) readiness() (bool, map[string]check) {
	checks := map[string]check{}
	ok, detail := a.source.Ready()
	checks["tetragon_source"] = check{OK: ok, Detail: detail, Gating: true}
	ok, detail = a.sink.Ready()
	checks["logscale_sink"] = check{OK: ok, Detail: detail, Gating: true}
	if a.enricher != nil {
		// Shipping continues without metadata, so this never gates readiness.
		ok, detail = a.enricher.Ready()
		checks["kubernetes_metadata"] = check{OK: ok, Detail: detail}
	}
	ready := true
	for _, c := range checks {
		if c.Gating && !c.OK {
			ready = false
		}
	}
	return ready, checks
}

func (a *Agent) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{Registry: a.reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if dead := a.health.dead(); dead != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"ok": false, "stopped_loops": dead})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"ok": true})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		ready, checks := a.readiness()
		code := http.StatusOK
		if !ready {
			code = http.StatusServiceUnavailable
		}
		writeJSON(w, code, map[string]any{"ready": ready, "checks": checks})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v) // the client went away: nothing to do
}

// startHTTP serves metrics and health until ctx is done.
func (a *Agent) startHTTP(ctx context.Context, wg *sync.WaitGroup) {
	if a.listener == nil {
		return
	}
	srv := &http.Server{Handler: a.handler(), ReadHeaderTimeout: 5 * time.Second}
	wg.Go(func() {
		if err := srv.Serve(a.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("metrics and health endpoint stopped", "error", err)
		}
	})
	wg.Go(func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx) // best effort: the process is exiting
	})
}
