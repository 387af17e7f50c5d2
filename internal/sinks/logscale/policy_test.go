package logscale

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/siemship/siemship/internal/event"
)

// readDeadLetters parses the dead-letter file.
func readDeadLetters(t *testing.T, path string) []map[string]json.RawMessage {
	t.Helper()
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]json.RawMessage
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("dead-letter line is not JSON: %v\n%s", err, sc.Bytes())
		}
		out = append(out, m)
	}
	return out
}

// TestStatusPolicy sends one request of two events to a server that answers
// the first attempt (or every attempt) with a status, and checks what
// happened to the events.
func TestStatusPolicy(t *testing.T) {
	type outcome int
	const (
		delivered    outcome = iota // acked, not dead-lettered
		deadLettered                // acked after the dead-letter file
	)
	cases := []struct {
		code      int
		always    bool // answer every attempt with code, else only the first
		want      outcome
		requests  int  // requests the server saw
		slow      bool // retried after AuthRetry, not the quick backoff
		notReady  bool // readiness false while failing
		deadLines int
	}{
		{code: 200, want: delivered, requests: 1},
		{code: 204, want: delivered, requests: 1},
		{code: 408, want: delivered, requests: 2},
		{code: 429, want: delivered, requests: 2},
		{code: 500, want: delivered, requests: 2},
		{code: 502, want: delivered, requests: 2},
		{code: 503, want: delivered, requests: 2},
		{code: 504, want: delivered, requests: 2},
		{code: 401, want: delivered, requests: 2, slow: true, notReady: true},
		{code: 403, want: delivered, requests: 2, slow: true, notReady: true},
		{code: 404, want: delivered, requests: 2, slow: true, notReady: true},
		{code: 405, want: delivered, requests: 2, slow: true, notReady: true},
		{code: 501, want: delivered, requests: 2, slow: true, notReady: true},
		{code: 302, want: delivered, requests: 2, slow: true, notReady: true},
		{code: 413, always: true, want: deadLettered, requests: 3, deadLines: 2},
		{code: 400, always: true, want: deadLettered, requests: 3, deadLines: 2},
		{code: 422, always: true, want: deadLettered, requests: 1, deadLines: 2},
		{code: 400, want: delivered, requests: 3}, // bisect: both halves pass
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%d always=%v", c.code, c.always), func(t *testing.T) {
			var sink *Sink
			var readyWhileFailing atomic.Value
			fake := newFake(t, func(n int, _ recvRequest) (int, http.Header) {
				if n == 2 {
					ok, reason := sink.Ready()
					readyWhileFailing.Store(fmt.Sprint(ok, " ", reason))
				}
				if n == 1 || c.always {
					return c.code, http.Header{"Location": {"http://elsewhere/"}}
				}
				return 200, nil
			})
			cfg := testConfig(fake.srv.URL)
			cfg.MaxEvents = 2
			cfg.DeadLetterPath = filepath.Join(t.TempDir(), "dead.ndjson")
			cfg.AuthRetry = 150 * time.Millisecond
			sink = newTestSink(t, cfg, nil)
			acks := newAckRecorder()
			r := start(t, sink)
			r.in <- acks.batch(1, "tetragon", idEvent(1, ""), idEvent(2, ""))
			if err := r.finish(t); err != nil {
				t.Fatalf("Run: %v", err)
			}
			if acks.count(1) != 1 {
				t.Fatalf("batch acknowledged %d times, want once", acks.count(1))
			}
			reqs := fake.requests()
			if len(reqs) != c.requests {
				t.Errorf("server saw %d requests, want %d", len(reqs), c.requests)
			}
			if len(reqs) >= 2 {
				gap := reqs[1].At.Sub(reqs[0].At)
				if c.slow && gap < cfg.AuthRetry {
					t.Errorf("retried after %v, want the slow AuthRetry %v", gap, cfg.AuthRetry)
				}
				if !c.slow && gap > 100*time.Millisecond {
					t.Errorf("retried after %v, want a quick backoff", gap)
				}
			}
			if c.notReady {
				if got, _ := readyWhileFailing.Load().(string); !strings.HasPrefix(got, "false ") || !strings.Contains(got, fmt.Sprint(c.code)) {
					t.Errorf("while failing Ready() = %q, want false with the status in the reason", got)
				}
			}
			lines := readDeadLetters(t, cfg.DeadLetterPath)
			if len(lines) != c.deadLines {
				t.Errorf("%d dead-letter lines, want %d", len(lines), c.deadLines)
			}
			if c.want == delivered {
				if ok, reason := sink.Ready(); !ok {
					t.Errorf("not ready after success: %s", reason)
				}
				last := reqs[len(reqs)-1]
				if c.requests == 3 { // bisected: the halves carry one event each
					last = reqs[1]
					last.Events = append(last.Events, reqs[2].Events...)
				}
				if len(last.Events) != 2 || last.Events[0].id() != 1 || last.Events[1].id() != 2 {
					t.Errorf("delivered events %v, want ids 1 and 2", last.Events)
				}
			}
		})
	}
}

// TestSplit413DownToOneEvent: a server that takes at most 3 events per
// request and never the "huge" one gets everything else, in halves, and the
// huge one lands in the dead-letter file.
func TestSplit413DownToOneEvent(t *testing.T) {
	fake := newFake(t, func(_ int, req recvRequest) (int, http.Header) {
		if len(req.Events) > 3 || strings.Contains(string(req.Body), `"huge"`) {
			return http.StatusRequestEntityTooLarge, nil
		}
		return 200, nil
	})
	cfg := testConfig(fake.srv.URL)
	cfg.DeadLetterPath = filepath.Join(t.TempDir(), "dead.ndjson")
	cfg.Linger = time.Hour
	s := newTestSink(t, cfg, nil)
	acks := newAckRecorder()
	r := start(t, s)
	var raws [][]byte
	for i := range 16 {
		extra := ""
		if i == 11 {
			extra = `,"huge":true`
		}
		raws = append(raws, idEvent(i, extra))
	}
	r.in <- acks.batch(1, "tetragon", raws...)
	if err := r.finish(t); err != nil {
		t.Fatal(err)
	}
	if acks.count(1) != 1 {
		t.Fatalf("batch acknowledged %d times", acks.count(1))
	}
	got := map[int]int{}
	for _, req := range fake.requests() {
		if len(req.Events) <= 3 && !strings.Contains(string(req.Body), `"huge"`) {
			for _, e := range req.Events {
				got[e.id()]++
			}
		}
	}
	for i := range 16 {
		want := 1
		if i == 11 {
			want = 0
		}
		if got[i] != want {
			t.Errorf("event %d accepted %d times, want %d", i, got[i], want)
		}
	}
	lines := readDeadLetters(t, cfg.DeadLetterPath)
	if len(lines) != 1 || !strings.Contains(string(lines[0]["event"]), `"huge":true`) || string(lines[0]["status"]) != "413" {
		t.Errorf("dead letters %v, want the huge event with status 413", lines)
	}
	if n := metric(t, s, "events_dead_lettered_total", "status", "413"); n != 1 {
		t.Errorf("dead-lettered metric %v, want 1", n)
	}
}

// TestBisect400: bad events among good ones are isolated; the good ones are
// delivered once each, the bad ones dead-lettered with their exact bytes.
func TestBisect400(t *testing.T) {
	fake := newFake(t, func(_ int, req recvRequest) (int, http.Header) {
		if strings.Contains(string(req.Body), `"bad"`) {
			return http.StatusBadRequest, nil
		}
		return 200, nil
	})
	cfg := testConfig(fake.srv.URL)
	cfg.DeadLetterPath = filepath.Join(t.TempDir(), "sub", "dead.ndjson")
	cfg.Linger = time.Hour
	logs := &logBuffer{}
	s := newTestSink(t, cfg, logs)
	acks := newAckRecorder()
	r := start(t, s)
	bad := map[int]bool{3: true, 4: true, 17: true}
	for b := range 4 { // 4 batches of 5 events in one request
		var raws [][]byte
		for i := b * 5; i < b*5+5; i++ {
			extra := ""
			if bad[i] {
				extra = `,"bad":"\u00e9 \"x\""`
			}
			raws = append(raws, idEvent(i, extra))
		}
		r.in <- acks.batch(b, "tetragon", raws...)
	}
	if err := r.finish(t); err != nil {
		t.Fatal(err)
	}
	for b := range 4 {
		if acks.count(b) != 1 {
			t.Errorf("batch %d acknowledged %d times", b, acks.count(b))
		}
	}
	got := map[int]int{}
	for _, req := range fake.requests() {
		if !strings.Contains(string(req.Body), `"bad"`) {
			for _, e := range req.Events {
				got[e.id()]++
			}
		}
	}
	for i := range 20 {
		if want := map[bool]int{false: 1, true: 0}[bad[i]]; got[i] != want {
			t.Errorf("event %d accepted %d times, want %d", i, got[i], want)
		}
	}

	lines := readDeadLetters(t, cfg.DeadLetterPath)
	if len(lines) != 3 {
		t.Fatalf("%d dead-letter lines, want 3", len(lines))
	}
	for _, l := range lines {
		var ts, sinkName, reason string
		_ = json.Unmarshal(l["time"], &ts)
		_ = json.Unmarshal(l["sink"], &sinkName)
		_ = json.Unmarshal(l["reason"], &reason)
		if _, err := time.Parse(time.RFC3339, ts); err != nil {
			t.Errorf("time %q: %v", ts, err)
		}
		var id struct{ ID int }
		_ = json.Unmarshal(l["event"], &id)
		var evTime int64
		_ = json.Unmarshal(l["event_time"], &evTime)
		wantRaw := idEvent(id.ID, `,"bad":"\u00e9 \"x\""`)
		if sinkName != "test" || string(l["status"]) != "400" || reason == "" || !bad[id.ID] ||
			string(l["event"]) != string(wantRaw) || evTime != 1700000000000+int64(id.ID/5*1000+id.ID%5) {
			t.Errorf("dead-letter line %v", l)
		}
	}
	if !strings.Contains(logs.String(), "dead-letter") {
		t.Errorf("no log line about the dead-letter file:\n%s", logs.String())
	}
}

// TestDeadLetterFlaggedEventIsString: a truncated event is dead-lettered as
// a JSON string, so the file stays valid NDJSON.
func TestDeadLetterFlaggedEventIsString(t *testing.T) {
	fake := newFake(t, func(int, recvRequest) (int, http.Header) { return http.StatusUnprocessableEntity, nil })
	cfg := testConfig(fake.srv.URL)
	cfg.DeadLetterPath = filepath.Join(t.TempDir(), "dead.ndjson")
	s := newTestSink(t, cfg, nil)
	acks := newAckRecorder()
	r := start(t, s)
	raw := []byte(`{"process_exec":{"process":{"binary":"/bin/sh","argu`)
	r.in <- acks.wrap(1, "tetragon", []event.Event{{Raw: raw, Time: 42, Type: "unknown", Size: 9000, Flags: event.Truncated}})
	if err := r.finish(t); err != nil {
		t.Fatal(err)
	}
	lines := readDeadLetters(t, cfg.DeadLetterPath)
	if len(lines) != 1 {
		t.Fatalf("%d lines", len(lines))
	}
	var ev string
	if err := json.Unmarshal(lines[0]["event"], &ev); err != nil || ev != string(raw) {
		t.Errorf("event %s, want the raw line as a string", lines[0]["event"])
	}
	if string(lines[0]["status"]) != "422" || acks.count(1) != 1 {
		t.Errorf("status %s, acked %d", lines[0]["status"], acks.count(1))
	}
}

// TestDeadLetterWriteFailureKeepsEvents: while the file cannot be written
// the events stay unacknowledged; once it can, they are written and acked.
func TestDeadLetterWriteFailureKeepsEvents(t *testing.T) {
	fake := newFake(t, func(int, recvRequest) (int, http.Header) { return http.StatusUnprocessableEntity, nil })
	dir := t.TempDir()
	blocker := filepath.Join(dir, "state")
	if err := os.WriteFile(blocker, []byte("a file where a directory should be"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(fake.srv.URL)
	cfg.DeadLetterPath = filepath.Join(blocker, "dead.ndjson")
	s := newTestSink(t, cfg, nil)
	acks := newAckRecorder()
	r := start(t, s)
	r.in <- acks.batch(1, "tetragon", idEvent(1, ""))
	waitFor(t, "the rejection", func() bool { return len(fake.requests()) >= 1 })
	time.Sleep(100 * time.Millisecond) // several failed writes
	if acks.count(1) != 0 {
		t.Fatal("acknowledged although the dead-letter file could not be written")
	}
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the ack", func() bool { return acks.count(1) == 1 })
	if len(readDeadLetters(t, cfg.DeadLetterPath)) != 1 {
		t.Error("event not in the dead-letter file")
	}
	if len(fake.requests()) != 1 {
		t.Errorf("%d requests: a dead-letter failure must not resend", len(fake.requests()))
	}
	if err := r.finish(t); err != nil {
		t.Fatal(err)
	}
}

// TestRetryAfter: both forms of Retry-After set the wait, even above RetryMax.
func TestRetryAfter(t *testing.T) {
	for _, form := range []string{"seconds", "date"} {
		t.Run(form, func(t *testing.T) {
			fake := newFake(t, func(n int, _ recvRequest) (int, http.Header) {
				if n > 1 {
					return 200, nil
				}
				v := "1"
				if form == "date" {
					v = time.Now().Add(2 * time.Second).UTC().Format(http.TimeFormat)
				}
				return http.StatusTooManyRequests, http.Header{"Retry-After": {v}}
			})
			s := newTestSink(t, testConfig(fake.srv.URL), nil) // RetryMax 10ms
			acks := newAckRecorder()
			r := start(t, s)
			r.in <- acks.batch(1, "tetragon", idEvent(1, ""))
			if err := r.finish(t); err != nil {
				t.Fatal(err)
			}
			reqs := fake.requests()
			if len(reqs) != 2 {
				t.Fatalf("%d requests", len(reqs))
			}
			// An HTTP date has whole seconds: now+2s rounds down to ≥1s.
			if gap := reqs[1].At.Sub(reqs[0].At); gap < 900*time.Millisecond || gap > 10*time.Second { // upper bound with slack for a loaded machine
				t.Errorf("retried after %v, want about 1–2 s from Retry-After", gap)
			}
		})
	}
}

// TestUnreachableNotReady: a refused connection keeps the data, makes the
// sink unready, and delivery resumes when the server comes back.
func TestUnreachableNotReady(t *testing.T) {
	var up atomic.Bool
	fake := newFake(t, func(int, recvRequest) (int, http.Header) { return 200, nil })
	// A proxy handler that drops the connection while "down".
	down := newFake(t, nil)
	down.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if !up.Load() {
			hj, _ := w.(http.Hijacker)
			conn, _, _ := hj.Hijack()
			_ = conn.Close()
			return
		}
		fake.srv.Config.Handler.ServeHTTP(w, req)
	})
	s := newTestSink(t, testConfig(down.srv.URL), nil)
	acks := newAckRecorder()
	r := start(t, s)
	r.in <- acks.batch(1, "tetragon", idEvent(1, ""))
	waitFor(t, "unreadiness", func() bool {
		ok, reason := s.Ready()
		return !ok && strings.Contains(reason, "unreachable")
	})
	if acks.count(1) != 0 {
		t.Fatal("acknowledged while unreachable")
	}
	up.Store(true)
	waitFor(t, "delivery", func() bool { return acks.count(1) == 1 })
	if ok, _ := s.Ready(); !ok {
		t.Error("not ready after delivery")
	}
	if metric(t, s, "requests_total", "status", "network_error") == 0 {
		t.Error("no network_error counted")
	}
	if err := r.finish(t); err != nil {
		t.Fatal(err)
	}
}
