// Package falconapi runs the real agent binary against the Falcon
// emulator's API resources and the strict LogScale receiver. All six
// resources keep changing (new records, new versions of records, some while
// the agent pages) while the agent is SIGKILLed again and again; then every
// record version Falcon ever held is accounted for, and `siemship checkpoint
// reset` makes one resource re-ingest from a given time.
package falconapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	falconemu "github.com/siemship/siemship/internal/emulators/falcon"
	emulator "github.com/siemship/siemship/internal/emulators/logscale"
	"github.com/siemship/siemship/internal/testkit"
	"github.com/siemship/siemship/test/internal/agentproc"
)

const (
	token  = "falconapi-test-token"
	source = "falcon"
	// Sessions while Falcon changes: each ends with a SIGKILL but one.
	sessions = 6
	// This session ends with SIGTERM: a clean stop repeats nothing.
	terminated = 4
	kills      = sessions - 1
	// LogScale is down from the middle of this session until after the
	// SIGKILL of the next one; Falcon's bulk change comes when it starts.
	outageFrom = 2
)

var resources = []string{"hosts", "alerts", "vulnerabilities", "filevantage", "incidents", "behaviors"}

// version is one record version: resource, id and its timestamp field.
type version struct{ res, id, ts string }

func versionOf(res string, r falconemu.Record) version {
	return version{res, r.ID, r.Time.Format(falconemu.TimeLayout)}
}

// recorder files every event LogScale stored by record version, with the
// agent session that sent it (the sink's static tag "session").
type recorder struct {
	emu *falconemu.Server
	mu  sync.Mutex
	by  map[version][]int
	bad []string
}

// onEvent checks an event against the version the emulator held (it never
// calls the emulator with r.mu held: the emulator calls delivered with its
// own lock held).
func (r *recorder) onEvent(e emulator.StoredEvent) {
	raw := e.RawString
	res, typed := strings.CutPrefix(e.Tags["event_type"], "falcon_")
	spec, known := falconemu.Spec(res)
	session, _ := strconv.Atoi(e.Tags["session"])
	var v version
	var problem string
	if !typed || !known || session == 0 {
		problem = fmt.Sprintf("event tagged %v: %.120s", e.Tags, raw)
	} else {
		id := gjson.Get(raw, falconemu.IDField(res)).String()
		v = version{res, id, gjson.Get(raw, spec.TimeField).String()}
		held, ok := r.emu.Version(res, id, int(gjson.Get(raw, "siemship_version").Int()))
		switch {
		case !ok:
			problem = fmt.Sprintf("%s: a version Falcon never held: %.120s", res, raw)
		case string(falconemu.RecordJSON(res, held)) != raw:
			problem = fmt.Sprintf("%s: bytes differ from what Falcon served:\n got %s\nwant %s", res, raw, falconemu.RecordJSON(res, held))
		case e.Timestamp != held.Time.UnixMilli():
			problem = fmt.Sprintf("%s: @timestamp %d is not the record's %s: %.120s", res, e.Timestamp, spec.TimeField, raw)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if problem != "" {
		r.bad = append(r.bad, problem)
		return
	}
	r.by[v] = append(r.by[v], session)
}

// delivered accepts the records of res whose current version reached
// LogScale: only those get a new version, so no version is replaced before
// the agent could have delivered it and every version ever held is owed.
func (r *recorder) delivered(res string) func(falconemu.Record) bool {
	return func(rec falconemu.Record) bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.by[versionOf(res, rec)]) > 0
	}
}

// sessions returns the sessions that delivered v, in order.
func (r *recorder) sessions(v version) []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := slices.Clone(r.by[v])
	slices.Sort(s)
	return s
}

// missing returns the versions of vs not delivered by session (any
// session when 0).
func (r *recorder) missing(vs []version, session int) []version {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []version
	for _, v := range vs {
		if s := r.by[v]; len(s) == 0 || (session > 0 && !slices.Contains(s, session)) {
			out = append(out, v)
		}
	}
	return out
}

// checkpoint is the falcon_api checkpoint file: a position per resource.
type checkpoint struct {
	Resources map[string]position `json:"resources"`
}

type position struct {
	Timestamp string            `json:"timestamp"`
	IDs       []string          `json:"ids"`
	Ahead     map[string]string `json:"ahead"` // delivered above the mark: id → timestamp
}

// covers reports whether p says v was delivered: older than the mark, at
// it and among its ids, or among the records delivered above it.
func (p position) covers(v version) bool {
	mark, err1 := time.Parse(time.RFC3339Nano, p.Timestamp)
	t, err2 := time.Parse(time.RFC3339Nano, v.ts)
	if err1 != nil || err2 != nil {
		return false
	}
	if a, err := time.Parse(time.RFC3339Nano, p.Ahead[v.id]); err == nil && a.Equal(t) {
		return true
	}
	return t.Before(mark) || (t.Equal(mark) && slices.Contains(p.IDs, v.id))
}

func readCheckpoint(path string) (checkpoint, error) {
	var c checkpoint
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("read checkpoint: %w", err)
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return c, fmt.Errorf("checkpoint %s unreadable: %w", path, err)
	}
	return c, nil
}

// current returns the current version of every record of the resources.
func current(emu *falconemu.Server, res ...string) []version {
	var out []version
	for _, r := range res {
		for _, rec := range emu.Records(r) {
			out = append(out, versionOf(r, rec))
		}
	}
	return out
}

// deliveredRecords returns the records of res whose current version
// reached LogScale.
func deliveredRecords(emu *falconemu.Server, rec *recorder, res string) []falconemu.Record {
	ok := rec.delivered(res)
	var out []falconemu.Record
	for _, r := range emu.Records(res) {
		if ok(r) {
			out = append(out, r)
		}
	}
	return out
}

// everHeld returns every version of every resource Falcon ever held.
func everHeld(emu *falconemu.Server) []version {
	var out []version
	for _, r := range resources {
		for _, rec := range emu.Versions(r) {
			out = append(out, versionOf(r, rec))
		}
	}
	return out
}

// Every record version of all six resources reaches LogScale at least
// once, byte for byte, typed falcon_<resource> and timed by its timestamp
// field, while Falcon keeps creating records and updating delivered ones
// (some while the agent pages, once 600 at one instant) and the agent is
// SIGKILLed five times at random moments of its polling, once across a
// LogScale outage that spans a restart, and stopped with SIGTERM once. A
// version arrives twice only when the session that first sent it was
// killed before its checkpoint covered the version. After a clean stop,
// `siemship checkpoint reset --resource hosts --to T` makes the next
// session send exactly the hosts at or after T again, and nothing else.
func TestSIGKILLRestartsAndCheckpointReset(t *testing.T) {
	bin := agentproc.Binary(t, testkit.RepoRoot(t))
	dir := testkit.KeptDir(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	emu := falconemu.New(falconemu.Config{ClientID: "test-client", ClientSecret: "test-secret", TokenTTL: 3 * time.Second, Seed: 21,
		Faults: falconemu.Faults{RateLimit: 0.02, RetryAfter: 100 * time.Millisecond, RetryAfterMillis: true}})
	fsrv := httptest.NewServer(emu)
	defer fsrv.Close()
	rec := &recorder{emu: emu, by: map[version][]int{}}
	recv := emulator.New(emulator.Config{Tokens: map[string]emulator.Token{token: {Name: "falconapi", Repo: "falcon"}}, OnEvent: rec.onEvent})
	faults := emulator.Faults{Rate: 0.05, Seed: 7, SlowDelay: 200 * time.Millisecond}
	recv.SetFaults(faults)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen for the LogScale receiver: %v", err)
	}
	go recv.Serve(ctx, ln)

	stateDir := filepath.Join(dir, "state")
	ckptPath := filepath.Join(stateDir, source+".json")
	cfg := filepath.Join(dir, "siemship.yaml")
	for name, v := range map[string]string{"client_id": "test-client", "client_secret": "test-secret"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v+"\n"), 0o600); err != nil {
			t.Fatalf("write %s: %v", name, err)
		}
	}
	// Each session tags what it sends, so every event names its sender.
	writeConfig := func(session int) {
		t.Helper()
		body := fmt.Sprintf(`state_dir: %s
listen: ""
log:
  format: text
sources:
  %s:
    type: falcon_api
    base_url: %s
    client_id_file: %s
    client_secret_file: %s
    resources: [%s]
    interval: 300ms
    start_from: 2h
sinks:
  logscale:
    url: http://%s
    linger: 100ms
    retry_initial: 50ms
    retry_max: 1s
    tags:
      session: "%d"
`, stateDir, source, fsrv.URL, filepath.Join(dir, "client_id"), filepath.Join(dir, "client_secret"), strings.Join(resources, ", "), ln.Addr(), session)
		if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
			t.Fatalf("write config: %v", err)
		}
	}
	env := []string{"SIEMSHIP_LOGSCALE_TOKEN=" + token}
	logPath := filepath.Join(dir, "agent.log")

	// The backlog of the last hour: bursts of 50 records at one timestamp,
	// and for filevantage and incidents 600 at one timestamp, more than
	// one page of theirs (500): paged by offset at the high-water mark.
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	backlog := map[string]int{"hosts": 600, "alerts": 600, "vulnerabilities": 900, "filevantage": 400, "incidents": 200, "behaviors": 300}
	for _, r := range resources {
		if r == "filevantage" || r == "incidents" {
			emu.AddRecords(r, 600, base)
		}
		for i := 0; i < backlog[r]; i += 50 {
			emu.AddRecords(r, 50, base.Add(time.Duration(i+1)*time.Second))
		}
	}

	// Falcon changes while the agent runs, is killed and restarts: every
	// 100 ms, each resource gets new records and new versions of delivered
	// ones (oldest first, or the newest delivered: records the agent is
	// still listing); and after a query or details answer, before it is
	// written, more of both (updates during paging). Each resource's first
	// answers are slow, and the oldest delivered records change meanwhile:
	// the backlog's first batch is delivered while the agent pages on at
	// the mark, and its records move behind the agent's offset.
	var midPage, bulk atomic.Int64
	var bulkNow atomic.Bool
	var hookMu sync.Mutex // guards changing, slow and hookRng; held while the hook changes Falcon
	changing := true
	slow := map[string]int{}
	for _, r := range resources {
		slow[r] = 4
	}
	hookRng := rand.New(rand.NewPCG(1, 2))
	emu.DuringPage(func(res string) {
		hookMu.Lock()
		defer hookMu.Unlock()
		if changing && slow[res] > 0 {
			slow[res]--
			hookMu.Unlock()
			time.Sleep(300 * time.Millisecond)
			hookMu.Lock()
			if changing {
				midPage.Add(int64(len(emu.UpdateWhere(res, 3, false, rec.delivered(res)))))
			}
			return
		}
		if !changing {
			return
		}
		if hit, n, newest, add := hookRng.IntN(10) < 3, 1+hookRng.IntN(3), hookRng.IntN(2) == 0, 1+hookRng.IntN(2); hit {
			// New records the answer cannot list, then (a moment later)
			// new versions of delivered ones, maybe listed in it: a mark
			// raised to those would pass the new records unseen.
			emu.AddRecords(res, add, time.Now())
			time.Sleep(2 * time.Millisecond)
			n = len(emu.UpdateWhere(res, n, newest, rec.delivered(res)))
			midPage.Add(int64(n + add))
		}
	})
	prodCtx, stopProducing := context.WithCancel(ctx)
	var prod sync.WaitGroup
	prod.Go(func() {
		rng := rand.New(rand.NewPCG(3, 4))
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for n := 0; ; n++ {
			select {
			case <-prodCtx.Done():
				return
			case <-tick.C:
			}
			for _, r := range resources {
				emu.AddRecords(r, 1+rng.IntN(3), time.Now())
				emu.UpdateWhere(r, 1+rng.IntN(3), rng.IntN(3) == 0, rec.delivered(r))
			}
			if bulkNow.Load() && bulk.Load() == 0 && len(deliveredRecords(emu, rec, "filevantage")) >= 650 {
				// A bulk change: 600 filevantage versions at one instant.
				bulk.Add(int64(len(emu.UpdateWhere("filevantage", 600, false, rec.delivered("filevantage")))))
			}
		}
	})

	rng := rand.New(rand.NewPCG(5, 6))
	committedAtKill := map[int]checkpoint{} // the checkpoint when the session ended
	for session := 1; session <= sessions; session++ {
		writeConfig(session)
		proc := agentproc.Start(t, bin, cfg, logPath, env...)
		proc.WaitForLog(t, "siemship started", time.Minute)
		bulkNow.Store(session >= outageFrom)
		wait := time.Duration(200+rng.IntN(1800)) * time.Millisecond
		if session == 1 {
			wait += 2500 * time.Millisecond // through the slow start
		}
		time.Sleep(wait)
		if session == outageFrom {
			// LogScale goes down until after the next SIGKILL, and the agent
			// stays down for 3.5 s: the next session catches up on records
			// already settled when it first lists them (the mark moves at
			// once), none of them acknowledged when it is killed.
			recv.SetFaults(emulator.Faults{Rate: 1, Kinds: []emulator.FaultKind{emulator.Fault503}})
			time.Sleep(time.Duration(500+rng.IntN(1000)) * time.Millisecond)
		}
		if exited, err := proc.Exited(); exited {
			t.Fatalf("agent session %d exited on its own: %v (log %s)", session, err, logPath)
		}
		if session == terminated {
			proc.Terminate(t, 30*time.Second)
		} else {
			proc.Kill(t)
		}
		switch session {
		case outageFrom:
			time.Sleep(3500 * time.Millisecond)
		case outageFrom + 1:
			recv.SetFaults(faults)
		}
		c, err := readCheckpoint(ckptPath)
		if err != nil {
			t.Fatalf("after the end of session %d: %v", session, err)
		}
		committedAtKill[session] = c
	}
	stopProducing()
	prod.Wait()
	hookMu.Lock()
	changing = false
	hookMu.Unlock()

	// The last session catches up with a Falcon that no longer changes; it
	// is stopped cleanly once its checkpoint covers every current version.
	final := sessions + 1
	sigterm := func(session int) bool { return session == terminated || session == final }
	writeConfig(final)
	proc := agentproc.Start(t, bin, cfg, logPath, env...)
	held := everHeld(emu)
	waitFor(t, 60*time.Second, func() string {
		if m := rec.missing(held, 0); len(m) > 0 {
			return fmt.Sprintf("%d of %d versions Falcon held never reached LogScale, first %v (log %s)", len(m), len(held), m[0], logPath)
		}
		return ""
	})
	all := current(emu, resources...)
	uncovered := func() string {
		c, err := readCheckpoint(ckptPath)
		if err != nil {
			return err.Error()
		}
		for _, v := range all {
			if !c.Resources[v.res].covers(v) {
				return fmt.Sprintf("the checkpoint %+v does not cover %v", c.Resources[v.res], v)
			}
		}
		return ""
	}
	waitFor(t, 30*time.Second, uncovered)
	proc.Terminate(t, 30*time.Second)
	if why := uncovered(); why != "" {
		t.Fatalf("after SIGTERM: %s", why)
	}

	checkBad := func() {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		for _, b := range rec.bad {
			t.Error(b)
		}
		rec.bad = nil
	}
	checkBad()
	lost := len(rec.missing(held, 0))
	// exposed: delivered by a killed session but not yet in its checkpoint,
	// so sent again if still current when the next session lists it.
	dupsByKill, exposed := map[int]int{}, map[int]int{}
	deliveries := 0
	for _, v := range held {
		s := rec.sessions(v)
		deliveries += len(s)
		if len(s) > 0 && s[0] <= sessions && !sigterm(s[0]) && !committedAtKill[s[0]].Resources[v.res].covers(v) {
			exposed[s[0]]++
		}
		for i := 1; i < len(s); i++ {
			prev := s[i-1]
			switch {
			case s[i] == prev:
				t.Errorf("%v delivered twice by session %d", v, prev)
			case sigterm(prev):
				t.Errorf("%v sent again by session %d after session %d, which ended with SIGTERM", v, s[i], prev)
			case committedAtKill[s[i]-1].Resources[v.res].covers(v):
				// (Not the checkpoint at prev's kill: the sessions between
				// may keep fewer of the records above the mark.)
				t.Errorf("%v sent again by session %d though the checkpoint it started from covered it: %+v", v, s[i], committedAtKill[s[i]-1].Resources[v.res])
			default:
				dupsByKill[prev]++
			}
		}
	}
	perRes := map[string]int{}
	for _, v := range held {
		perRes[v.res]++
	}
	dups := 0
	for _, n := range dupsByKill {
		dups += n
	}
	st := emu.ResourceStats()
	t.Logf("%d versions Falcon held (%v; %d current records), %d lost; %d deliveries, %d duplicates over %d SIGKILLs (by killed session %v, %.0f per kill; delivered but not yet checkpointed at the kill %v), none after the SIGTERM of session %d while Falcon changed; changes during paging %d, bulk %d; API calls: queries %v, details %v; 429 %d",
		len(held), perRes, len(all), lost, deliveries, dups, kills, dupsByKill, float64(dups)/kills, exposed, terminated, midPage.Load(), bulk.Load(), st.Queries, st.Entities, emu.Stats().RateLimited)
	if midPage.Load() == 0 || bulk.Load() < 500 {
		t.Errorf("changes during paging %d, bulk %d: the workload did not happen", midPage.Load(), bulk.Load())
	}

	// Reset hosts to a time in the middle of their timestamps.
	hosts := emu.Records("hosts")
	at := hosts[len(hosts)/2].Time
	out := run(t, bin, "checkpoint", "reset", "--source", source, "--resource", "hosts", "--to", at.Format(time.RFC3339Nano), "--config", cfg)
	t.Logf("checkpoint reset: %s", strings.TrimSpace(out))
	show := run(t, bin, "checkpoint", "show", "--config", cfg)
	if !mentions(show, "hosts", at) {
		t.Errorf("checkpoint show does not give hosts the reset time %s:\n%s", at.Format(time.RFC3339Nano), show)
	}
	var again []version
	for _, r := range hosts {
		if !r.Time.Before(at) {
			again = append(again, versionOf("hosts", r))
		}
	}

	reset := final + 1
	writeConfig(reset)
	proc = agentproc.Start(t, bin, cfg, logPath, env...)
	waitFor(t, 60*time.Second, func() string {
		if m := rec.missing(again, reset); len(m) > 0 {
			return fmt.Sprintf("%d of the %d hosts at or after %s not sent again after the reset, first %v (log %s)", len(m), len(again), at.Format(time.RFC3339Nano), m[0], logPath)
		}
		return ""
	})
	waitFor(t, 30*time.Second, uncovered)
	time.Sleep(time.Second) // more polls: whatever else would be sent again, is
	proc.Terminate(t, 30*time.Second)

	checkBad()
	resent := 0
	for _, v := range held {
		n := 0
		for _, s := range rec.sessions(v) {
			if s == reset {
				n++
			}
		}
		resent += n
		switch {
		case n == 0:
		case v.res != "hosts":
			t.Errorf("%v sent again after resetting hosts only", v)
		case mustTime(t, v.ts).Before(at):
			t.Errorf("%v, older than the reset time %s, sent again", v, at.Format(time.RFC3339Nano))
		case n > 1:
			t.Errorf("%v sent %d times after the reset", v, n)
		}
	}
	if resent != len(again) {
		t.Errorf("%d versions sent after the reset, want the %d current hosts at or after %s", resent, len(again), at.Format(time.RFC3339Nano))
	}
	t.Logf("reset hosts to %s (%d of %d hosts at or after it): %d versions sent again, all of them hosts at or after it",
		at.Format(time.RFC3339Nano), len(again), len(hosts), resent)
}

func mustTime(t *testing.T, ts string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		t.Fatalf("timestamp field %q: %v", ts, err)
	}
	return tm
}

// run runs the agent binary with args and returns its output; it fails the
// test unless the command succeeds.
func run(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("siemship %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// mentions reports whether a line of text naming what holds a time equal
// to at, however it is written.
func mentions(text, what string, at time.Time) bool {
	for _, line := range strings.Split(text, "\n") {
		if !strings.Contains(line, what) {
			continue
		}
		for _, f := range strings.FieldsFunc(line, func(r rune) bool { return r == ' ' || r == '(' || r == ')' || r == ',' }) {
			if ts, err := time.Parse(time.RFC3339Nano, f); err == nil && ts.Equal(at) {
				return true
			}
		}
	}
	return false
}

// waitFor polls cond until it returns "" and fails the test with its last
// answer at the timeout.
func waitFor(t *testing.T, timeout time.Duration, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		why := cond()
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", timeout, why)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
