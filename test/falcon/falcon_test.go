// Package falcon runs the real agent binary against the Falcon emulator
// and the strict LogScale receiver, killing it with SIGKILL again and
// again while events flow, then accounts for every offset of every
// partition.
package falcon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	falconemu "github.com/siemship/siemship/internal/emulators/falcon"
	emulator "github.com/siemship/siemship/internal/emulators/logscale"
	"github.com/siemship/siemship/internal/testkit"
	"github.com/siemship/siemship/test/internal/agentproc"
)

const (
	partitions = 3
	token      = "falcon-test-token"
	kills      = 6
)

type key struct {
	p   int
	off int64
}

// recorder files every event LogScale stored by partition and offset,
// with the agent session that sent it.
type recorder struct {
	emu     *falconemu.Server
	mu      sync.Mutex
	session int
	by      map[key][]int // sessions that delivered the offset
	bad     []string
	types   map[string]int
	api     map[apiKey][]int // falcon_api record versions: sessions that delivered them
}

// apiKey is one version of a Falcon API record.
type apiKey struct {
	resource, id string
	version      int64
	at           time.Time // its timestamp field
}

// apiResources are the falcon_api resources the tests poll.
var apiResources = []string{"hosts", "alerts"}

func (r *recorder) onEvent(e emulator.StoredEvent) {
	raw := []byte(e.RawString)
	if res, ok := strings.CutPrefix(e.Tags["event_type"], "falcon_"); ok {
		r.onRecord(res, raw)
		return
	}
	off := gjson.GetBytes(raw, "metadata.offset").Int()
	p := -1
	for i := range partitions {
		if bytes.Equal(r.emu.EventAt(i, off), raw) {
			p = i
			break
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if p < 0 {
		r.bad = append(r.bad, fmt.Sprintf("event matches no partition's bytes: %.100s", raw))
		return
	}
	r.by[key{p, off}] = append(r.by[key{p, off}], r.session)
	r.types[e.Tags["event_type"]]++
}

func (r *recorder) onRecord(resource string, raw []byte) {
	spec, _ := falconemu.Spec(resource)
	k := apiKey{resource: resource, id: gjson.GetBytes(raw, falconemu.IDField(resource)).String(),
		version: gjson.GetBytes(raw, "siemship_version").Int()}
	at, err := time.Parse(time.RFC3339Nano, gjson.GetBytes(raw, spec.TimeField).String())
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil || k.id == "" || k.version == 0 {
		r.bad = append(r.bad, fmt.Sprintf("%s record without id, version or time (%v): %.100s", resource, err, raw))
		return
	}
	k.at = at
	r.api[k] = append(r.api[k], r.session)
}

// missingVersions counts the current versions of the emulator's records
// that LogScale does not have (earlier versions may have been replaced
// before any poll could see them).
func missingVersions(r *recorder, emu *falconemu.Server) (int, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	have := map[string]bool{}
	for k := range r.api {
		have[k.resource+" "+falconemu.VersionKey(k.id, int(k.version))] = true
	}
	missing, first := 0, ""
	for _, res := range apiResources {
		for _, rec := range emu.Records(res) {
			if v := res + " " + falconemu.VersionKey(rec.ID, rec.Version); !have[v] {
				missing++
				if first == "" {
					first = v
				}
			}
		}
	}
	return missing, first
}

// produceEvery calls f every d until the returned stop (idempotent) is
// called; stop returns once f is no longer running.
func produceEvery(d time.Duration, f func()) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(d)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				f()
			}
		}
	})
	return func() { cancel(); wg.Wait() }
}

// Every offset of every partition reaches LogScale at least once across
// SIGKILL restarts; the only duplicates are offsets not yet committed at
// the kill (batches in flight), which the next session sends again.
func TestSIGKILLRestartsLoseNothing(t *testing.T) {
	bin := agentproc.Binary(t, testkit.RepoRoot(t))
	dir := testkit.KeptDir(t)

	emu := falconemu.New(falconemu.Config{ClientID: "test-client", ClientSecret: "test-secret", Partitions: partitions,
		RefreshInterval: 4 * time.Second, TokenTTL: 3 * time.Second, KeepAlive: 200 * time.Millisecond,
		LeaseLinger: 300 * time.Millisecond, StreamStarted: true, Seed: 11,
		Faults: falconemu.Faults{CloseAfterEvent: 0.0005, Stale401: 0.02, EmptyDiscovery: 0.05}})
	fsrv := httptest.NewServer(emu)
	defer fsrv.Close()
	rec := &recorder{emu: emu, by: map[key][]int{}, types: map[string]int{}}
	recv := emulator.New(emulator.Config{Tokens: map[string]emulator.Token{token: {Name: "falcon", Repo: "falcon"}}, OnEvent: rec.onEvent})
	recv.SetFaults(emulator.Faults{Rate: 0.05, Seed: 3, SlowDelay: 200 * time.Millisecond})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go recv.Serve(ctx, ln)

	stateDir := filepath.Join(dir, "state")
	cfg := filepath.Join(dir, "siemship.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`state_dir: %s
listen: ""
log:
  format: text
sources:
  falcon:
    type: falcon_stream
    base_url: %s
    app_id: siemshipbb
    retry_initial: 50ms
    retry_max: 500ms
    linger: 100ms
    read_timeout: 3s
sinks:
  logscale:
    url: http://%s
    linger: 100ms
    retry_initial: 50ms
    retry_max: 1s
`, stateDir, fsrv.URL, ln.Addr())), 0o600)
	env := []string{"SIEMSHIP_LOGSCALE_TOKEN=" + token, "SIEMSHIP_SOURCES_FALCON_CLIENT_ID=test-client", "SIEMSHIP_SOURCES_FALCON_CLIENT_SECRET=test-secret"}

	// Falcon keeps producing while the agent is killed and restarted.
	for p := range partitions {
		emu.Append(p, 2000)
	}
	stopProducing := produceEvery(50*time.Millisecond, func() {
		for p := range partitions {
			emu.Append(p, 15) // 300 events/s per partition
		}
	})
	defer stopProducing()

	logPath := filepath.Join(dir, "agent.log")
	rng := rand.New(rand.NewPCG(5, 6))
	committedAtKill := map[int]map[string]int64{}
	for session := 1; session <= kills; session++ {
		rec.mu.Lock()
		rec.session = session
		rec.mu.Unlock()
		proc := agentproc.Start(t, bin, cfg, logPath, env...)
		proc.WaitForLog(t, "siemship started", time.Minute)
		time.Sleep(time.Duration(1500+rng.IntN(2000)) * time.Millisecond)
		if exited, err := proc.Exited(); exited {
			t.Fatalf("agent exited on its own: %v (log %s)", err, logPath)
		}
		proc.Kill(t)
		committedAtKill[session] = readOffsets(t, stateDir)
		time.Sleep(50 * time.Millisecond)
	}
	stopProducing()

	rec.mu.Lock()
	rec.session = kills + 1
	rec.mu.Unlock()
	proc := agentproc.Start(t, bin, cfg, logPath, env...)
	deadline := time.Now().Add(60 * time.Second)
	for {
		missing, first := missingOffsets(rec, emu)
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d offsets never arrived, first %v (log %s); emulator %+v", missing, first, logPath, emu.Stats())
		}
		time.Sleep(100 * time.Millisecond)
	}
	proc.Terminate(t, 30*time.Second)

	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.bad) > 0 {
		t.Fatalf("%d events altered on the way, first %s", len(rec.bad), rec.bad[0])
	}
	dups, total := 0, 0
	for k, sessions := range rec.by {
		total++
		for i := 1; i < len(sessions); i++ {
			dups++
			// A repeat comes from a later session and is an offset the
			// checkpoint had not covered when the previous one was killed.
			prev := sessions[i-1]
			if c, ok := committedAtKill[prev][fmt.Sprint(k.p)]; ok && k.off <= c {
				t.Errorf("partition %d offset %d sent again by session %d though committed (%d) at the kill of session %d", k.p, k.off, sessions[i], c, prev)
			}
			if sessions[i] == prev {
				t.Errorf("partition %d offset %d delivered twice within session %d", k.p, k.off, prev)
			}
		}
	}
	st := emu.Stats()
	t.Logf("%d offsets of %d partitions delivered, %d duplicates over %d SIGKILLs (%.0f per kill); emulator: discoveries %d, appId in use %d, streams %d, 401 %d, closes %d, refreshes %v, tokens %d",
		total, partitions, dups, kills, float64(dups)/kills, st.Discoveries, st.InUse, st.StreamsOpened, st.Stale401, st.Closes, st.Refreshes, st.TokensIssued)
	if st.InUse == 0 {
		t.Errorf("no restart met the appId lease of the killed session: the lease path went untested")
	}
	if len(rec.types) < 8 {
		t.Errorf("event_type tags %v", rec.types)
	}
}

func readOffsets(t *testing.T, stateDir string) map[string]int64 {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(stateDir, "falcon.json"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Offsets map[string]int64 `json:"offsets"`
	}
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatalf("checkpoint after SIGKILL unreadable: %v", err)
	}
	return st.Offsets
}

func missingOffsets(rec *recorder, emu *falconemu.Server) (int, key) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	n, first := 0, key{}
	for p := range partitions {
		for off := range emu.Head(p) {
			if len(rec.by[key{p, off}]) == 0 {
				if n == 0 {
					first = key{p, off}
				}
				n++
			}
		}
	}
	return n, first
}
