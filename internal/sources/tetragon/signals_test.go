package tetragon

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// checkHandler records log records and flags what an operator's log
// pipeline chokes on: a key given twice (slog's JSON handler repeats it) and
// durations (they render as integers of nanoseconds).
type checkHandler struct {
	st    *checkState
	attrs []slog.Attr
}

type checkState struct {
	mu       sync.Mutex
	records  []map[string]any
	problems []string
}

func newCheckLogger() (*slog.Logger, *checkState) {
	st := &checkState{}
	return slog.New(&checkHandler{st: st}), st
}

func (h *checkHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *checkHandler) Handle(_ context.Context, r slog.Record) error {
	rec := map[string]any{"msg": r.Message, "level": r.Level.String()}
	var problems []string
	add := func(a slog.Attr) {
		if _, dup := rec[a.Key]; dup {
			problems = append(problems, fmt.Sprintf("%q: key %q given twice", r.Message, a.Key))
		}
		if a.Value.Kind() == slog.KindDuration {
			problems = append(problems, fmt.Sprintf("%q: %q is a duration (logged as nanoseconds)", r.Message, a.Key))
		}
		rec[a.Key] = a.Value.Any()
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(func(a slog.Attr) bool { add(a); return true })
	h.st.mu.Lock()
	defer h.st.mu.Unlock()
	h.st.records = append(h.st.records, rec)
	h.st.problems = append(h.st.problems, problems...)
	return nil
}

func (h *checkHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &checkHandler{st: h.st, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}

func (h *checkHandler) WithGroup(string) slog.Handler { return h }

func (st *checkState) find(msg string) []map[string]any {
	st.mu.Lock()
	defer st.mu.Unlock()
	var out []map[string]any
	for _, r := range st.records {
		if strings.Contains(r["msg"].(string), msg) {
			out = append(out, r)
		}
	}
	return out
}

func (st *checkState) check(t *testing.T) {
	t.Helper()
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, p := range st.problems {
		t.Error(p)
	}
}

// gauge returns the value of the source's gauge called name, checking it
// carries the source's name as label.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		m := mf.GetMetric()[0]
		if l := m.GetLabel(); len(l) != 1 || l[0].GetName() != "source" || l[0].GetValue() != "tetragon" {
			t.Fatalf("%s labels %v, want source=tetragon", name, l)
		}
		return m.GetGauge().GetValue()
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// Nothing was ever delivered (the sink rejects everything): the lag in
// seconds is the age of the oldest unacknowledged data, not 0.
func TestLagSecondsIsTheAgeOfTheOldestUnacknowledgedData(t *testing.T) {
	h := newHarness(t)
	h.drop = true
	appendLines(t, h.path, lines(0, 10))
	h.start()
	h.waitLines(10)
	read := time.Now() // the lines were read before this
	within(t, 5*time.Second, "lag_seconds > 0", func() bool { return gauge(t, h.reg, "siemship_source_lag_seconds") > 0 })
	least := time.Since(read).Seconds()
	if lag := gauge(t, h.reg, "siemship_source_lag_seconds"); lag < least {
		t.Errorf("lag_seconds = %v, want at least %v (the lines were read before)", lag, least)
	}
	h.stop()

	// Once everything is delivered, the lag is 0.
	h.events, h.drop = nil, false
	h.start()
	h.waitLines(10)
	within(t, 5*time.Second, "lag_seconds = 0 once delivered", func() bool { return gauge(t, h.reg, "siemship_source_lag_seconds") == 0 })
	h.stop()
}

// The logger handed to New already names the source: the source adds only
// the path, and logs durations as text.
func TestSourceLogsHaveNoRepeatedKeysNorNanosecondDurations(t *testing.T) {
	h := newHarness(t)
	log, st := newCheckLogger()
	h.logger = log.With("source", "tetragon")
	appendLines(t, h.path, lines(0, 3))
	h.start()
	h.waitLines(3)
	h.stop()
	if len(st.find("no checkpoint, starting")) != 1 {
		t.Fatalf("no start-up log line: %v", st.records)
	}
	st.check(t)
}

// A wrong path (a hostPath DirectoryOrCreate creates an empty directory on
// every node) is warned about once it lasts, then periodically, counted and
// shown in the readiness detail.
func TestEmptyExportDirectoryIsWarnedAboutPeriodically(t *testing.T) {
	h := newHarness(t)
	log, st := newCheckLogger()
	h.logger = log.With("source", "tetragon")
	h.missingWarnAfter, h.missingWarnEvery = 50*time.Millisecond, 100*time.Millisecond
	h.start()
	waitUntil(t, "two warnings", func() bool { return testutil.ToFloat64(h.src.m.exportMissingWarnings) >= 2 })
	ok, why := h.src.Ready()
	if ok || !strings.Contains(why, "sources.tetragon.path") {
		t.Errorf("Ready() = %v %q, want not ready, pointing at the path setting", ok, why)
	}
	warns := st.find("export directory has no export file")
	if len(warns) < 2 {
		t.Fatalf("%d warnings logged, want at least 2", len(warns))
	}
	if d, ok := warns[0]["for"].(string); !ok || d == "" {
		t.Errorf("warning's \"for\" = %#v, want a duration as text", warns[0]["for"])
	}
	// Files appear: reading starts, no more warnings.
	appendLines(t, h.path, lines(0, 3))
	h.waitLines(3)
	n := testutil.ToFloat64(h.src.m.exportMissingWarnings)
	h.waitIdle(3)
	h.stop()
	if m := testutil.ToFloat64(h.src.m.exportMissingWarnings); m != n {
		t.Errorf("%v more warnings after the file appeared", m-n)
	}
	st.check(t)
}

// After a restart at a checkpoint, before anything new is read or
// acknowledged, the backlog is what lies after the checkpoint: 0 here, not
// the whole file (the commit point was unknown until the first ack).
func TestLagAfterARestartStartsAtTheCheckpoint(t *testing.T) {
	h := newHarness(t)
	appendLines(t, h.path, lines(0, 200))
	h.start()
	h.waitLines(200)
	h.stop()

	h.events = nil
	h.start()
	defer h.stop()
	h.waitIdle(1) // resumed and at the end of the file
	waitUntil(t, "the directory scanned", func() bool { return h.src.Stats().RetainedBytes > 0 })
	if lag := gauge(t, h.reg, "siemship_source_lag_bytes"); lag != 0 {
		t.Errorf("lag_bytes = %v after resuming at the end of the file, want 0", lag)
	}
	if lag := gauge(t, h.reg, "siemship_source_lag_seconds"); lag != 0 {
		t.Errorf("lag_seconds = %v after resuming at the end of the file, want 0", lag)
	}
}
