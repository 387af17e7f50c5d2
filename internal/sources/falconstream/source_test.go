package falconstream

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	emulator "github.com/siemship/siemship/internal/emulators/falcon"
	"github.com/siemship/siemship/internal/falcon"
)

// Two hours of a busy stream compressed into 12 s: Falcon's 1800 s refresh
// interval becomes 3 s and the 1799 s token lifetime 2 s, so a refresh
// missed (or one late by 0.3 s) kills the partition's session. Every offset
// of every partition arrives once, in order, with its bytes untouched and
// its time and type; no session dies; every partition is refreshed on its
// own timer; tokens are renewed before they expire.
func TestTwoHoursCompressed(t *testing.T) {
	emu, srv := newEmulator(emulator.Config{Partitions: 3, RefreshInterval: 3 * time.Second, TokenTTL: 2 * time.Second,
		KeepAlive: 200 * time.Millisecond, LeaseLinger: 200 * time.Millisecond, StreamStarted: true, Seed: 1})
	t.Cleanup(srv.Close)
	for p := range 3 {
		emu.Append(p, 500) // a backlog
	}
	h := start(t, emu, srv, &memOffsets{}, 20*time.Millisecond, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	produce(ctx, emu, 10, 50*time.Millisecond, 12*time.Second) // 200 events/s per partition
	h.waitAll(10 * time.Second)
	h.waitCommitted(5 * time.Second)
	h.checkClean()
	st := emu.Stats()
	if st.Expired != 0 || st.Stale401 != 0 || st.StreamsOpened != 3 || st.Discoveries != 1 {
		t.Fatalf("sessions did not survive: %+v", st)
	}
	if rc := h.reconnects(); sum(rc) != 0 {
		t.Fatalf("reconnects %v", rc)
	}
	for p := range 3 {
		if st.Refreshes[p] < 3 {
			t.Errorf("partition %d refreshed %d times in 12 s at a 3 s interval", p, st.Refreshes[p])
		}
	}
	if st.TokensIssued < 5 {
		t.Errorf("%d tokens issued in 12 s with a 2 s lifetime", st.TokensIssued)
	}
	_, dups := h.rec.have()
	if dups != 0 {
		t.Errorf("%d duplicates", dups)
	}
	h.rec.mu.Lock()
	defer h.rec.mu.Unlock()
	userActivity := 0
	for typ := range h.rec.types {
		if strings.HasPrefix(typ, "UserActivityAuditEvent_") {
			userActivity++
		}
		if typ == "UserActivityAuditEvent" {
			t.Errorf("UserActivityAuditEvent not typed by its ServiceName")
		}
	}
	if userActivity < 3 || h.rec.types["AuthActivityAuditEvent"] == 0 || h.rec.types["EPPDetectionSummaryEvent"] == 0 {
		t.Errorf("types %v", h.rec.types)
	}
	t.Logf("emulator %+v; source refreshes %v", st, testutil.ToFloat64(h.src.m.refreshes.WithLabelValues("0")))
}

// A quiet stream: no event for 3.5 refresh intervals, only keep-alives.
// The refresh timers alone keep the sessions alive: the events that come
// at last arrive on the first streams, with no reconnect.
func TestQuietStreamKeptAliveByRefresh(t *testing.T) {
	emu, srv := newEmulator(emulator.Config{Partitions: 2, RefreshInterval: 2 * time.Second, KeepAlive: 300 * time.Millisecond, Seed: 2})
	t.Cleanup(srv.Close)
	h := start(t, emu, srv, &memOffsets{}, 0, nil)
	deadline := time.Now().Add(5 * time.Second)
	for ok, _ := h.src.Ready(); !ok; ok, _ = h.src.Ready() {
		if time.Now().After(deadline) {
			_, why := h.src.Ready()
			t.Fatalf("not ready: %s", why)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(7 * time.Second)
	for p := range 2 {
		emu.Append(p, 5)
	}
	h.waitAll(5 * time.Second)
	h.checkClean()
	st := emu.Stats()
	if st.Expired != 0 || st.StreamsOpened != 2 || sum(h.reconnects()) != 0 {
		t.Fatalf("quiet sessions died: %+v, reconnects %v", st, h.reconnects())
	}
	if st.Refreshes[0] < 3 || st.Refreshes[1] < 3 {
		t.Fatalf("refreshes %v", st.Refreshes)
	}
}

// Reconnect storms: streams closed cleanly and mid-line, 401 on stream
// open, empty discovery answers, 429s and an appId lease that outlives
// each disconnect, with acknowledgements out of order. Every offset of
// every partition arrives exactly once and in order (the next session
// continues after the last event read).
func TestReconnectStorm(t *testing.T) {
	emu, srv := newEmulator(emulator.Config{Partitions: 4, KeepAlive: 100 * time.Millisecond, LeaseLinger: 50 * time.Millisecond,
		StreamStarted: true, Seed: 3, Faults: emulator.Faults{CloseAfterEvent: 0.003, EmptyDiscovery: 0.15, Stale401: 0.05,
			RateLimit: 0.05, RetryAfter: 100 * time.Millisecond, RetryAfterMillis: true}})
	t.Cleanup(srv.Close)
	for p := range 4 {
		emu.Append(p, 4000)
	}
	h := start(t, emu, srv, &memOffsets{}, 30*time.Millisecond, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	produce(ctx, emu, 20, 100*time.Millisecond, 3*time.Second)
	h.waitAll(30 * time.Second)
	h.waitCommitted(5 * time.Second)
	h.checkClean()
	_, dups := h.rec.have()
	rc := h.reconnects()
	st := emu.Stats()
	t.Logf("reconnects %v; emulator %+v", rc, st)
	if dups != 0 {
		t.Errorf("%d duplicates", dups)
	}
	if rc[causeEOF]+rc[causeError] < 10 || rc[causeUnauthorized] < 1 || st.InUse < 1 || st.EmptyBodies < 1 || st.RateLimited < 1 {
		t.Errorf("storm too mild: reconnects %v, emulator %+v", rc, st)
	}
	if w := testutil.ToFloat64(h.src.client.Metrics().RateLimitWaits); w < 1 {
		t.Errorf("rate-limit waits %v", w)
	}
}

// A stream that sends nothing, not even keep-alives, for read_timeout is
// reopened at the next offset.
func TestSilenceReconnects(t *testing.T) {
	emu, srv := newEmulator(emulator.Config{KeepAlive: time.Hour, Seed: 4})
	t.Cleanup(srv.Close)
	emu.Append(0, 10)
	h := start(t, emu, srv, &memOffsets{}, 0, func(c *Config) { c.ReadTimeout = time.Second })
	h.waitAll(5 * time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for h.reconnects()[causeSilence] < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("no reconnect after silence: %v", h.reconnects())
		}
		time.Sleep(50 * time.Millisecond)
	}
	emu.Append(0, 10)
	h.waitAll(5 * time.Second)
	h.checkClean()
}

// A restart resumes after the committed offsets: the second run gets the
// rest, and repeats at most what was not acknowledged.
func TestResumeAfterCommitted(t *testing.T) {
	emu, srv := newEmulator(emulator.Config{Partitions: 2, KeepAlive: 100 * time.Millisecond, LeaseLinger: 100 * time.Millisecond, Seed: 5})
	t.Cleanup(srv.Close)
	for p := range 2 {
		emu.Append(p, 300)
	}
	store := &memOffsets{}
	h := start(t, emu, srv, store, 0, nil)
	h.waitAll(5 * time.Second)
	h.waitCommitted(5 * time.Second)
	h.stop()
	saved, _, _ := store.Load(context.Background())
	if saved["0"] != 299 || saved["1"] != 299 {
		t.Fatalf("saved %v", saved)
	}
	for p := range 2 {
		emu.Append(p, 100)
	}
	h2 := start(t, emu, srv, store, 0, nil)
	h2.waitAll2(t, 300, 5*time.Second)
	have, dups := h2.rec.have()
	if dups != 0 || len(have["0"]) != 100 || !have["0"][300] || have["0"][299] {
		t.Fatalf("second run got %d of partition 0 (dups %d)", len(have["0"]), dups)
	}
}

// waitAll2 waits for offsets from..head of every partition.
func (h *harness) waitAll2(t *testing.T, from int64, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for {
		have, _ := h.rec.have()
		ok := true
		for p := range h.emu.Partitions() {
			for off := from; off < h.emu.Head(p); off++ {
				ok = ok && have[strconv.Itoa(p)][off]
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("offsets from %d missing", from)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Readiness and errors name the cause: a missing scope, then an appId in
// use (with the fallback appId taking over after app_id_wait).
func TestReadinessNamesTheCause(t *testing.T) {
	emu, srv := newEmulator(emulator.Config{NoStreamScope: true})
	t.Cleanup(srv.Close)
	h := start(t, emu, srv, &memOffsets{}, 0, nil)
	waitReady(t, h.src, false, `lacks the scope "Event streams: read"`)
	h.stop()

	emu2, srv2 := newEmulator(emulator.Config{Partitions: 2, KeepAlive: 100 * time.Millisecond, LeaseLinger: time.Hour})
	t.Cleanup(srv2.Close)
	// Another consumer holds the appId.
	other, _ := falcon.New(falcon.Config{BaseURL: srv2.URL, ClientID: "id", ClientSecret: "secret"})
	holder := &Source{client: other}
	if res, err := holder.discover(context.Background(), "siemshiptest"); err != nil || len(res) != 2 {
		t.Fatalf("holder: %v %d", err, len(res))
	}
	h2 := start(t, emu2, srv2, &memOffsets{}, 0, func(c *Config) { c.FallbackAppID = "siemshiptest2"; c.AppIDWait = 500 * time.Millisecond })
	waitReady(t, h2.src, false, "appId siemshiptest is in use")
	waitReady(t, h2.src, true, "")
	emu2.Append(1, 3)
	h2.waitAll(5 * time.Second)
}

func waitReady(t *testing.T, s *Source, want bool, reason string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, why := s.Ready()
		if ok == want && strings.Contains(why, reason) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("ready %v %q, want %v with %q", ok, why, want, reason)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var _ = errors.Is
