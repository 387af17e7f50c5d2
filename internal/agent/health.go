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

// check is one line of /readyz.
type check struct {
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
	// Gating checks decide readiness; the others are informational.
	Gating bool `json:"gating"`
}

// readiness gates on the sources (a source that cannot read is a pod that
// does not do its job) and, when readiness.require_sinks is set, on the
// sinks; Kubernetes metadata never gates (shipping goes on without it).
func (a *Agent) readiness() (bool, map[string]check) {
	checks := map[string]check{}
	for _, in := range a.inputs {
		ok, detail := in.Source.Ready()
		checks["source "+in.Name] = check{OK: ok, Detail: detail, Gating: true}
	}
	for _, out := range a.outputs {
		ok, detail := out.Sink.Ready()
		checks["sink "+out.Name] = check{OK: ok, Detail: detail, Gating: a.cfg.Readiness.RequireSinks}
	}
	if a.enricher != nil {
		ok, detail := a.enricher.Ready()
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
		if dead := a.loops.Dead(); dead != nil {
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
