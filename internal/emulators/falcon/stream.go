package falcon

import (
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"
)

// roll draws a fault with probability p.
func (s *Server) roll(p float64) bool {
	if p <= 0 {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.chance(p)
}

// stream serves GET <dataFeedURL>&offset=N[&eventType=A,B] (or whence=2):
// newline-delimited events from offset N inclusive, blank keep-alive lines
// while idle, until the client leaves, a fault closes it or the partition's
// session expires unrefreshed.
func (s *Server) stream(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	p, ok := s.partitionOf(w, r)
	if !ok {
		s.mu.Unlock()
		return
	}
	q := r.URL.Query()
	tok, scheme := strings.CutPrefix(r.Header.Get("Authorization"), "Token ")
	ps := s.sessions[tok]
	now := time.Now()
	if !scheme || ps == nil || ps.partition != p || ps.s.appID != q.Get("appId") || ps.used || ps.expired || ps.s.dead ||
		now.After(ps.expires) || s.chance(s.cfg.Faults.Stale401) {
		if ps != nil {
			ps.expired = true
		}
		s.stats.Stale401++
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"errors":[{"code":401,"message":"access denied, authorization failed"}]}`))
		return
	}
	if s.rateLimited(w) {
		s.mu.Unlock()
		return
	}
	part := s.parts[p]
	var next int64
	switch {
	case q.Get("whence") == "2":
		next = int64(len(part.events))
	case q.Has("offset"):
		n, err := strconv.ParseInt(q.Get("offset"), 10, 64)
		if err != nil || n < 0 {
			s.stats.BadRequests++
			s.mu.Unlock()
			apiError(w, http.StatusBadRequest, "offset must be a non-negative integer")
			return
		}
		next = n
	}
	var types []string
	if v := q.Get("eventType"); v != "" {
		types = strings.Split(v, ",")
	}
	ps.used = true
	sess := ps.s
	sess.streams++
	s.stats.StreamsOpened++
	if s.cfg.StreamStarted {
		r := rand.New(rand.NewPCG(s.cfg.Seed^uint64(p+1)<<40, uint64(len(part.events))))
		s.appendLocked(p, eventOf(r, "AuthActivityAuditEvent", int64(len(part.events)), now, "streamStarted"))
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		sess.streams--
		if sess.streams == 0 {
			sess.idle = time.Now()
		}
		s.mu.Unlock()
	}()

	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	flush := func() {
		if flusher != nil {
			flusher.Flush()
		}
	}
	flush()
	keepAlive := time.NewTimer(s.cfg.KeepAlive)
	defer keepAlive.Stop()
	buf := make([]byte, 0, 64<<10)
	for {
		s.mu.Lock()
		end := min(int64(len(part.events)), next+256)
		var lines [][]byte
		if next < end {
			lines = part.events[next:end]
		}
		changed, expires, dead := part.changed, ps.expires, sess.dead
		s.mu.Unlock()
		if dead {
			return
		}
		if time.Now().After(expires) {
			s.mu.Lock()
			ps.expired = true
			s.stats.Expired++
			s.mu.Unlock()
			return
		}
		if len(lines) > 0 {
			buf = buf[:0]
			for _, line := range lines {
				next++
				if types != nil && !slices.Contains(types, gjson.GetBytes(line, "metadata.eventType").String()) {
					continue
				}
				buf = append(append(buf, line...), '\n')
				if s.roll(s.cfg.Faults.CloseAfterEvent) {
					s.mu.Lock()
					s.stats.Closes++
					clean := s.rng.IntN(2) == 0
					s.mu.Unlock()
					if clean {
						w.Write(buf)
						return
					}
					// An abrupt end in the middle of a line.
					if next < end {
						nl := lines[len(lines)-int(end-next)]
						buf = append(buf, nl[:len(nl)/2]...)
					}
					w.Write(buf)
					flush()
					panic(http.ErrAbortHandler)
				}
			}
			if _, err := w.Write(buf); err != nil {
				return
			}
			flush()
			if !keepAlive.Stop() {
				select {
				case <-keepAlive.C:
				default:
				}
			}
			keepAlive.Reset(s.cfg.KeepAlive)
			continue
		}
		untilExpiry := time.NewTimer(time.Until(expires) + time.Millisecond)
		select {
		case <-r.Context().Done():
			untilExpiry.Stop()
			return
		case <-changed:
		case <-untilExpiry.C:
		case <-keepAlive.C:
			if _, err := w.Write([]byte("\n")); err != nil {
				untilExpiry.Stop()
				return
			}
			flush()
			keepAlive.Reset(s.cfg.KeepAlive)
		}
		untilExpiry.Stop()
	}
}
