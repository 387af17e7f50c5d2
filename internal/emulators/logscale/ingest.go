package logscale

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"
	"unsafe"

	"github.com/siemship/siemship/internal/emulators/faults"
)

// route is one ingest endpoint.
type route struct {
	name   string
	hec    bool // accepts "Authorization: Splunk <token>"
	decode func(in *decodeIn) error
	ok     string // success body
}

const hecOK = `{"text":"Success","code":0}`

var ingestRoutes = map[string]route{
	"/api/v1/ingest/humio-structured":   {name: "humio-structured", decode: decodeStructured, ok: "{}"},
	"/api/v1/ingest/humio-unstructured": {name: "humio-unstructured", decode: decodeUnstructured, ok: "{}"},
	"/api/v1/ingest/hec":                {name: "hec", hec: true, decode: decodeHEC, ok: hecOK},
	"/services/collector":               {name: "hec", hec: true, decode: decodeHEC, ok: hecOK},
	"/services/collector/event":         {name: "hec", hec: true, decode: decodeHEC, ok: hecOK},
	"/api/v1/ingest/hec/raw":            {name: "hec-raw", hec: true, decode: decodeLines, ok: hecOK},
	"/services/collector/raw":           {name: "hec-raw", hec: true, decode: decodeLines, ok: hecOK},
	"/api/v1/ingest/raw":                {name: "raw", decode: decodeRaw, ok: "{}"},
	"/api/v1/ingest/json":               {name: "json", decode: decodeJSON, ok: "{}"},
}

// decodeIn is what a route's decoder works on.
type decodeIn struct {
	body  string
	token Token
	now   int64 // receive time, Unix ms: @timestamp where no time was sent
	route string
	reqID uint64
	p     *pending
}

// event adds one event of the request to the pending set.
func (in *decodeIn) event(ts int64, tz, raw, attrs string, tags, extra map[string]string) {
	in.p.add(StoredEvent{
		Repo: in.token.Repo, Route: in.route, RequestID: in.reqID,
		Timestamp: ts, Timezone: tz, RawString: raw, Tags: tags, Attributes: attrs, Extra: extra,
	})
}

// parserTags is the tag set of events parsed by the token's parser (or by
// the parser the request names when the token has none): LogScale tags
// parsed events with #type = parser name.
func (in *decodeIn) parserTags(requested string) map[string]string {
	name := in.token.Parser
	if name == "" {
		name = requested
	}
	if name == "" {
		return nil
	}
	return map[string]string{"type": name}
}

func (s *Server) ingestHandler(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := RequestRecord{
			ID: s.reqID.Add(1), Time: time.Now(), Method: r.Method, Path: r.URL.Path, Route: rt.name,
			Headers: recordHeaders(r.Header), ContentEncoding: r.Header.Get("Content-Encoding"),
		}
		rec.Status, rec.Reason = s.ingest(w, r, rt, &rec)
		rec.Duration = time.Since(rec.Time)
		s.reqs.add(rec)
		s.store.request(rec.Status, rec.Fault, rec.CompressedBytes, rec.DecodedBytes)
		if rec.Status == StatusClientGone {
			// Nothing was stored and nothing may look like success: without
			// this, net/http would answer an implicit 200 to a client that is
			// still connected (e.g. while the server shuts down).
			panic(http.ErrAbortHandler)
		}
	})
}

// maxWire bounds what is read off the wire: the decoded limit plus room for
// incompressible data that gzip made slightly larger.
func (s *Server) maxWire() int64 { return s.cfg.MaxBodyBytes + s.cfg.MaxBodyBytes/64 + 64<<10 }

// ingest serves one ingest request and returns the status it answered.
// Order: auth, injected fault, body, decode, slow delay, commit, answer.
func (s *Server) ingest(w http.ResponseWriter, r *http.Request, rt route, rec *RequestRecord) (int, string) {
	tok, err := s.authIngest(r, rt)
	if err != nil {
		rec.CompressedBytes = drain(r, s.maxWire())
		var ae *authError
		errors.As(err, &ae)
		return fail(w, ae.status, ae.reason)
	}
	fl := s.faults.Decide()
	rec.Fault = fl.Kind
	if fl.FailsRequest() {
		rec.CompressedBytes = drain(r, s.maxWire())
		if fl.Status == 0 {
			if !faults.ResetConn(w) {
				return StatusClientGone, "injected connection reset (aborted)"
			}
			return 0, "injected connection reset"
		}
		if fl.RetryAfter != "" {
			w.Header().Set("Retry-After", fl.RetryAfter)
		}
		return fail(w, fl.Status, "injected fault "+string(fl.Kind))
	}
	b, err := readBody(r, s.cfg.MaxBodyBytes)
	rec.CompressedBytes = b.compressed
	if err != nil {
		var se *statusError
		if !errors.As(err, &se) {
			return StatusClientGone, err.Error()
		}
		return fail(w, se.status, se.reason)
	}
	rec.DecodedBytes = int64(b.buf.Len())
	keep := !s.cfg.Discard || s.cfg.OnEvent != nil
	in := &decodeIn{
		token: tok, now: time.Now().UnixMilli(), route: rt.name, reqID: rec.ID, p: &pending{keep: keep},
	}
	if keep {
		in.body = string(b.bytes()) // stored events point into it: copy
		b.release()
	} else {
		// Nothing outlives decoding: read the pooled buffer in place rather
		// than copying up to 32 MiB per request (this receiver runs inside
		// the agent's benchmark, whose memory it would inflate).
		in.body = unsafeString(b.bytes())
		defer b.release()
	}
	derr := rt.decode(in)
	if fl.Delay > 0 {
		sleepCtx(r.Context(), fl.Delay)
	}
	if derr != nil {
		var se *statusError
		if errors.As(derr, &se) {
			return fail(w, se.status, se.reason)
		}
		return fail(w, http.StatusBadRequest, derr.Error())
	}
	if err := s.store.commit(r.Context(), tok.Repo, in.p); err != nil {
		return StatusClientGone, "client went away before commit"
	}
	rec.Events = in.p.count
	if s.cfg.OnEvent != nil {
		for _, e := range in.p.events {
			s.cfg.OnEvent(e)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Emulator-Request-Id", strconv.FormatUint(rec.ID, 10))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(rt.ok))
	return http.StatusOK, ""
}

// fail answers with status and a short text reason.
func fail(w http.ResponseWriter, status int, reason string) (int, string) {
	http.Error(w, reason, status)
	return status, reason
}

// unsafeString views b as a string; b must not change while it is in use.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
