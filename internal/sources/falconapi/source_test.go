package falconapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/sync/semaphore"

	"github.com/siemship/siemship/internal/checkpoints"
	emu "github.com/siemship/siemship/internal/emulators/falcon"
	"github.com/siemship/siemship/internal/event"
)

var all = []string{"hosts", "alerts", "vulnerabilities", "filevantage", "incidents", "behaviors"}

// seed creates n records per resource in bursts that share timestamps
// (ties at the high-water mark), spread over a day.
func seed(e *env, n int, resources ...string) {
	base := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	for _, r := range resources {
		for i := 0; i < n; i += 50 {
			e.emu.AddRecords(r, min(50, n-i), base.Add(time.Duration(i)*time.Second))
		}
	}
}

// Updates injected while the source pages (after every query and details
// answer, 7 of the oldest records get a new version timestamped now, so
// they jump behind the cursor): the current version of every record of all
// six resources arrives, every version Falcon served was emitted, each
// typed falcon_<resource> and timed by its timestamp field, with more ids
// at one timestamp than one page holds (hosts: 50 per timestamp across
// 5000-id pages, vulnerabilities: 400-id after pages).
func TestUpdatesDuringPaging(t *testing.T) {
	e := newEnv(t)
	seed(e, 3000, all...)
	var updates atomic.Int64
	e.emu.DuringPage(func(res string) {
		if updates.Add(1) <= 120 {
			e.emu.UpdateRecords(res, 7)
		}
	})
	_, stop := e.run(e.config(all...), false)
	defer stop()
	e.waitAll(60*time.Second, all...)
	stop()
	dups := e.checkServed(all...)
	for _, r := range all {
		if !e.typs[EventType(r)] {
			t.Errorf("no event typed %s", EventType(r))
		}
	}
	st := e.emu.ResourceStats()
	t.Logf("updates injected %d; versions %v; details calls %v; duplicates %d", min(updates.Load(), 120)*7, st.Versions, st.Entities, dups)
	var saved State
	if ok, err := e.store.Load("falcon", &saved); !ok || err != nil {
		t.Fatalf("no checkpoint saved: %v", err)
	}
	for _, r := range all {
		if saved.Resources[r].Timestamp == "2025-01-01T00:00:00Z" {
			t.Errorf("%s: checkpoint did not advance: %+v", r, saved.Resources[r])
		}
	}
}

// A restart resumes at the acknowledged position: batches handed out but
// never acknowledged are fetched again; acknowledged ones are not.
func TestRestartResumesAtAcknowledged(t *testing.T) {
	e := newEnv(t)
	seed(e, 2000, "alerts", "filevantage")
	// First run: nothing acknowledged. The checkpoint must stay at start.
	_, stop := e.run(e.config("alerts", "filevantage"), true)
	waitFor(t, "batches handed out", 10*time.Second, func() bool { return e.missingFinal("alerts") < 2000 })
	stop()
	var saved State
	e.store.Load("falcon", &saved)
	if p := saved.Resources["alerts"]; p.Timestamp != "2025-01-01T00:00:00Z" || len(p.IDs) != 0 {
		t.Fatalf("unacknowledged batches moved the checkpoint: %+v", p)
	}
	e.got = map[string]map[string]int{}
	_, stop = e.run(e.config("alerts", "filevantage"), false)
	e.waitAll(30*time.Second, "alerts", "filevantage")
	stop()
	// Third run: everything was acknowledged; new records only.
	e.got = map[string]map[string]int{}
	e.emu.UpdateRecords("alerts", 10)
	_, stop = e.run(e.config("alerts", "filevantage"), false)
	waitFor(t, "the updated alerts", 30*time.Second, func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		return len(e.got["alerts"]) >= 10
	})
	time.Sleep(2500 * time.Millisecond) // polls past the settling margin
	stop()
	e.mu.Lock()
	defer e.mu.Unlock()
	if n := len(e.got["alerts"]); n != 10 {
		t.Errorf("after a clean restart %d alert versions arrived, want the 10 updated", n)
	}
	if n := len(e.got["filevantage"]); n != 0 {
		t.Errorf("after a clean restart %d filevantage versions arrived again, want 0", n)
	}
}

// Records too recent to raise the high-water mark (within settle of the
// server's clock) are remembered in the checkpoint once acknowledged: a
// restart right after them does not ship them again.
func TestRestartWithinTheSettlingMargin(t *testing.T) {
	e := newEnv(t)
	seed(e, 500, "alerts")
	_, stop := e.run(e.config("alerts"), false)
	e.waitAll(30*time.Second, "alerts")
	e.emu.UpdateRecords("alerts", 10) // timestamped now: ahead of the mark for settle
	waitFor(t, "the updated alerts", 30*time.Second, func() bool { return e.missingFinal("alerts") == 0 })
	stop()
	var saved State
	e.store.Load("falcon", &saved)
	if n := len(saved.Resources["alerts"].Ahead); n != 10 {
		t.Fatalf("checkpoint remembers %d delivered records above the mark, want the 10 updated: %+v", n, saved.Resources["alerts"])
	}
	e.got = map[string]map[string]int{}
	_, stop = e.run(e.config("alerts"), false)
	time.Sleep(3 * time.Second) // several polls, the last past the settling margin
	stop()
	e.mu.Lock()
	defer e.mu.Unlock()
	if n := len(e.got["alerts"]); n != 0 {
		t.Errorf("after a restart %d alert versions arrived again, want 0", n)
	}
	e.store.Load("falcon", &saved)
	if p := saved.Resources["alerts"]; len(p.Ahead) != 0 || len(p.IDs) == 0 {
		t.Errorf("once settled the records belong to the mark, not Ahead: %+v", p)
	}
}

// Batches hold their answer's bytes from the agent's buffer budget until
// delivered: with the sinks stuck, the source stops fetching once the
// budget is taken, and goes on once batches are delivered.
func TestBatchesHoldTheBufferBudget(t *testing.T) {
	e := newEnv(t)
	seed(e, 3000, "hosts")
	cfg := e.config("hosts")
	cfg.MaxBatchEvents = 100 // ~40 KiB answers
	cfg.BudgetBytes = 200 << 10
	cfg.Budget = semaphore.NewWeighted(cfg.BudgetBytes)
	_, stop := e.run(cfg, true)
	defer stop()
	waitFor(t, "batches handed out", 10*time.Second, func() bool { return e.missingFinal("hosts") < 3000 })
	time.Sleep(time.Second) // polls enough to take everything, were it not held back
	e.mu.Lock()
	held, bytes := len(e.held), 0
	for _, b := range e.held {
		for _, ev := range b.Events {
			bytes += len(ev.Raw)
		}
	}
	e.mu.Unlock()
	if held == 0 || bytes > int(cfg.BudgetBytes) {
		t.Fatalf("%d batches of %d bytes handed out unacknowledged, want them within the %d-byte budget", held, bytes, cfg.BudgetBytes)
	}
	e.deliver()
	e.waitAll(30*time.Second, "hosts")
	waitFor(t, "the budget given back once everything was delivered", 10*time.Second, func() bool { return cfg.Budget.TryAcquire(cfg.BudgetBytes) })
}

// failingAt refuses to save while failing is set, as a full disk or an
// unreachable API server would.
type failingAt struct {
	checkpoints.Location
	failing atomic.Bool
}

func (f *failingAt) Save(ctx context.Context, v any) error {
	if f.failing.Load() {
		return errors.New("no space left on device")
	}
	return f.Location.Save(ctx, v)
}

// A checkpoint that cannot be saved stops neither polling nor the save
// loop: readiness names the cause, a counter and one log line say so, and
// once saving works again the position is written.
func TestCheckpointSaveFailureIsRetried(t *testing.T) {
	e := newEnv(t)
	seed(e, 1000, "alerts")
	fa := &failingAt{Location: e.store.At("falcon")}
	fa.failing.Store(true)
	e.at = fa
	src, stop := e.run(e.config("alerts"), false)
	defer stop()
	e.waitAll(30*time.Second, "alerts")
	waitFor(t, "readiness naming the failed save", 5*time.Second, func() bool {
		ok, why := src.Ready()
		return !ok && strings.Contains(why, "save checkpoint: no space left on device")
	})
	time.Sleep(300 * time.Millisecond) // several more failed tries
	if n := strings.Count(e.logs.String(), "checkpoint not saved"); n != 1 {
		t.Errorf("the failure was logged %d times, want once", n)
	}
	if n := testutil.ToFloat64(src.m.saveFails); n < 2 {
		t.Errorf("checkpoint_failures_total = %v, want every failed try counted", n)
	}
	fa.failing.Store(false)
	waitFor(t, "the checkpoint saved once saving works", 5*time.Second, func() bool {
		var st State
		ok, _ := e.store.Load("falcon", &st)
		return ok && st.Resources["alerts"].Timestamp != "2025-01-01T00:00:00Z"
	})
	waitFor(t, "ready again", 5*time.Second, func() bool { ok, _ := src.Ready(); return ok })
}

// A checkpoint of another format version is refused, naming it, rather
// than read as if it were this one's.
func TestCheckpointOfAnotherVersionIsRefused(t *testing.T) {
	e := newEnv(t)
	if err := e.store.Save("falcon", State{Version: stateVersion + 1, Resources: map[string]Position{"alerts": {Timestamp: "2025-06-01T00:00:00Z"}}}); err != nil {
		t.Fatal(err)
	}
	src, err := New("falcon", e.config("alerts"), e.store.At("falcon"), prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	err = src.Run(context.Background(), make(chan *event.Batch))
	if err == nil || !strings.Contains(err.Error(), "has version 2, this build reads 1") {
		t.Fatalf("Run with a version-2 checkpoint: %v", err)
	}
}

// An after token that expires mid-listing restarts the query from the
// high-water mark: nothing is skipped.
func TestExpiredAfterToken(t *testing.T) {
	e := newEnv(t)
	seed(e, 2000, "vulnerabilities")
	var pages atomic.Int64
	e.emu.DuringPage(func(res string) {
		if n := pages.Add(1); n == 2 || n == 7 {
			e.emu.ExpireAfterTokens(0)
		}
	})
	_, stop := e.run(e.config("vulnerabilities"), false)
	e.waitAll(30*time.Second, "vulnerabilities")
	stop()
	e.checkServed("vulnerabilities")
	if st := e.emu.ResourceStats(); st.ExpiredAfter == 0 {
		t.Error("no after token was refused as expired")
	}
	if !strings.Contains(e.logs.String(), "after token expired, restarting the query from the high-water mark") {
		t.Error("the restart was not logged")
	}
}

// A missing scope answers 403 on that resource only: the error names the
// scope, readiness says so, the other resources flow, and once the scope
// is granted the resource catches up.
func TestMissingScope(t *testing.T) {
	e := newEnv(t)
	seed(e, 300, "hosts", "alerts")
	e.emu.DenyScope("Alerts: read", true)
	src, stop := e.run(e.config("hosts", "alerts"), false)
	defer stop()
	e.waitAll(20*time.Second, "hosts")
	waitFor(t, "not ready", 10*time.Second, func() bool { ok, _ := src.Ready(); return !ok })
	if _, why := src.Ready(); !strings.Contains(why, `"Alerts: read"`) {
		t.Errorf("readiness reason does not name the scope: %s", why)
	}
	if !strings.Contains(e.logs.String(), `enable the API scope \"Alerts: read\"`) {
		t.Errorf("the log does not name the scope:\n%s", e.logs.String())
	}
	e.emu.DenyScope("Alerts: read", false)
	e.waitAll(20*time.Second, "alerts")
	waitFor(t, "ready again", 10*time.Second, func() bool { ok, _ := src.Ready(); return ok })
}

// incidents and behaviors answered 410 and 404 (removed by Falcon): each
// is disabled after one query with one error and the gauge at 1; the
// source keeps running and the other resources flow.
func TestRemovedResourcesDisabled(t *testing.T) {
	e := newEnv(t)
	seed(e, 300, "hosts", "incidents", "behaviors")
	e.emu.Remove("incidents", http.StatusGone)
	e.emu.Remove("behaviors", http.StatusNotFound)
	src, stop := e.run(e.config("hosts", "incidents", "behaviors"), false)
	defer stop()
	e.waitAll(20*time.Second, "hosts")
	waitFor(t, "both disabled", 10*time.Second, func() bool {
		return strings.Count(e.logs.String(), "disabled until restart") == 2
	})
	time.Sleep(500 * time.Millisecond) // five intervals: no retries
	if n := e.emu.ResourceStats().Gone; n != 2 {
		t.Errorf("removed resources were called %d times, want 2 (one each)", n)
	}
	if n := strings.Count(e.logs.String(), "level=ERROR"); n != 2 {
		t.Errorf("%d errors logged, want 2", n)
	}
	kv := src.Status()
	if got := kv[len(kv)-1].([]string); strings.Join(got, ",") != "incidents,behaviors" {
		t.Errorf("status disabled: %v", got)
	}
	for _, r := range []string{"incidents", "behaviors"} {
		if g := gaugeValue(t, src, r); g != 1 {
			t.Errorf("%s: resource_disabled = %v", r, g)
		}
	}
}

// 429 answers with X-Ratelimit-Retryafter (in milliseconds here, so the
// test is quick) hold every resource back through the shared limiter, and
// everything still arrives.
func TestRateLimited(t *testing.T) {
	e := newEnv(t)
	seed(e, 1500, "hosts", "alerts", "vulnerabilities")
	e.emu.SetFaults(emu.Faults{RateLimit: 0.3, RetryAfter: 50 * time.Millisecond, RetryAfterMillis: true})
	_, stop := e.run(e.config("hosts", "alerts", "vulnerabilities"), false)
	e.waitAll(30*time.Second, "hosts", "alerts", "vulnerabilities")
	stop()
	e.checkServed("hosts", "alerts", "vulnerabilities")
	if e.emu.Stats().RateLimited == 0 {
		t.Error("no 429 was answered")
	}
}

// The extra FQL of filter is ANDed to the incremental filter.
func TestExtraFilter(t *testing.T) {
	e := newEnv(t)
	seed(e, 100, "alerts")
	cfg := e.config("alerts")
	cfg.Filter = map[string]string{"alerts": "status:'closed'"}
	_, stop := e.run(cfg, false)
	time.Sleep(500 * time.Millisecond)
	stop()
	if n := len(e.got["alerts"]); n != 0 {
		t.Errorf("%d alerts arrived through a filter none matches", n)
	}
	if e.emu.ResourceStats().Queries["alerts"] == 0 {
		t.Error("alerts were not queried")
	}
}
