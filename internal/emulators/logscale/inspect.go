package logscale

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/siemship/siemship/internal/emulators/faults"
)

// inspectRoutes registers the inspection API. It needs no auth: it is for
// tests and the local demo (Config.DisableInspection turns it off).
//
//	GET  /_emulator/stats                         counters (Stats)
//	GET  /_emulator/events?repo=&limit=&offset=   stored events, oldest first
//	GET  /_emulator/requests?limit=               request log, most recent last
//	POST /_emulator/faults                        set the fault mix / fail-next
//	POST /_emulator/reset                         forget events, requests, counters, faults
func (s *Server) inspectRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /_emulator/stats", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Stats())
	})
	mux.HandleFunc("GET /_emulator/events", s.serveEvents)
	mux.HandleFunc("GET /_emulator/requests", func(w http.ResponseWriter, r *http.Request) {
		reqs := s.Requests()
		if n, err := strconv.Atoi(r.URL.Query().Get("limit")); err == nil && n >= 0 && n < len(reqs) {
			reqs = reqs[len(reqs)-n:]
		}
		writeJSON(w, http.StatusOK, reqs)
	})
	mux.HandleFunc("POST /_emulator/faults", s.serveFaults)
	mux.HandleFunc("POST /_emulator/reset", func(w http.ResponseWriter, _ *http.Request) {
		s.Reset()
		writeJSON(w, http.StatusOK, map[string]bool{"reset": true})
	})
}

func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, offset := 100, 0
	var err error
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 0 {
			http.Error(w, "limit must be a non-negative integer", http.StatusBadRequest)
			return
		}
	}
	if v := q.Get("offset"); v != "" {
		if offset, err = strconv.Atoi(v); err != nil || offset < 0 {
			http.Error(w, "offset must be a non-negative integer", http.StatusBadRequest)
			return
		}
	}
	events := s.Events(q.Get("repo"))
	total := len(events)
	events = events[min(offset, total):min(offset+limit, total)]
	writeJSON(w, http.StatusOK, map[string]any{"total": total, "offset": offset, "events": events})
}

// faultsRequest is the body of POST /_emulator/faults. Absent parts are
// left unchanged.
type faultsRequest struct {
	Mix *struct {
		Rate              float64     `json:"rate"`
		Seed              int64       `json:"seed"`
		SlowDelay         string      `json:"slowDelay"` // Go duration, e.g. "1.5s"
		RetryAfterSeconds int         `json:"retryAfterSeconds"`
		Kinds             []FaultKind `json:"kinds"`
	} `json:"mix"`
	FailNext *struct {
		N          int    `json:"n"`
		Status     int    `json:"status"` // 0: connection reset
		RetryAfter string `json:"retryAfter"`
	} `json:"failNext"`
}

func (s *Server) serveFaults(w http.ResponseWriter, r *http.Request) {
	var req faultsRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		http.Error(w, "invalid faults request: "+err.Error(), http.StatusBadRequest)
		return
	}
	// Validate everything before changing anything.
	var mix Faults
	if m := req.Mix; m != nil {
		mix = Faults{Rate: m.Rate, Seed: m.Seed, RetryAfterSeconds: m.RetryAfterSeconds, Kinds: m.Kinds}
		if m.SlowDelay != "" {
			d, err := time.ParseDuration(m.SlowDelay)
			if err != nil {
				http.Error(w, "invalid slowDelay: "+err.Error(), http.StatusBadRequest)
				return
			}
			mix.SlowDelay = d
		}
		if err := faults.ValidKinds(mix.Kinds); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	}
	if fn := req.FailNext; fn != nil {
		if err := faults.ValidFailStatus(fn.Status); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	}
	if req.Mix != nil {
		s.SetFaults(mix)
	}
	if fn := req.FailNext; fn != nil {
		s.FailNext(fn.N, fn.Status, fn.RetryAfter)
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}
