package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/siemship/siemship/internal/config"
	emulator "github.com/siemship/siemship/internal/emulators/logscale"
	"github.com/siemship/siemship/internal/tetragongen"
)

const testToken = "agent-test-token"

type rig struct {
	t        *testing.T
	dir      string
	path     string
	recv     *emulator.Server
	recvAddr string
	agent    *Agent
	stop     context.CancelFunc
	done     chan error
	gen      *tetragongen.Generator
	seq      int
}

func newRig(t *testing.T, extra ...string) *rig {
	t.Helper()
	r := &rig{t: t, dir: t.TempDir(), gen: tetragongen.New(3, "agent-test")}
	r.path = filepath.Join(r.dir, "export", "tetragon.log")
	os.MkdirAll(filepath.Dir(r.path), 0o755)
	r.recv = emulator.New(emulator.Config{Tokens: map[string]emulator.Token{testToken: {Name: "t", Repo: "tetragon"}}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go r.recv.Serve(ctx, ln)
	r.recvAddr = ln.Addr().String()
	r.agent = r.newAgentWith(strings.Join(extra, ""))
	return r
}

// newAgentWith builds the agent from the rig's configuration plus extra YAML.
func (r *rig) newAgentWith(extra string) *Agent {
	t := r.t
	cfgPath := filepath.Join(r.dir, "siemship.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`state_dir: %s
listen: 127.0.0.1:0
status_interval: 100ms
shutdown_grace: 5s
sources:
  tetragon:
    path: %s
    poll_interval: 20ms
sinks:
  logscale:
    url: http://%s
    token_file: %s
    linger: 50ms
    auth_retry: 200ms
    retry_initial: 20ms
    retry_max: 200ms
`, filepath.Join(r.dir, "state"), r.path, r.recvAddr, r.tokenFile())+extra), 0o600)
	cfg, _, err := config.Load(cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	a, err := New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func (r *rig) start() {
	ctx, cancel := context.WithCancel(context.Background())
	r.stop, r.done = cancel, make(chan error, 1)
	go func() { r.done <- r.agent.Run(ctx) }()
}

func (r *rig) write(n int) {
	f, err := os.OpenFile(r.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		r.t.Fatal(err)
	}
	defer f.Close()
	for range n {
		f.Write(append(r.gen.Line(nil, r.seq), '\n'))
		r.seq++
	}
}

func (r *rig) waitEvents(n int) {
	r.t.Helper()
	r.eventually(func() bool { return r.recv.Stats().Events >= int64(n) }, "receiver has %d events", n)
}

func (r *rig) eventually(cond func() bool, what string, args ...any) {
	r.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			r.t.Fatalf("timed out waiting: "+what, args...)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// lazy is a value printed as what f returns at the time of printing.
type lazy func() any

func (l lazy) String() string { return fmt.Sprint(l()) }

func (r *rig) get(path string) (int, string) {
	r.t.Helper()
	resp, err := http.Get("http://" + r.agent.Addr().String() + path)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestAgentShipsReportsHealthAndStopsAtTheCheckpoint(t *testing.T) {
	r := newRig(t)
	r.write(200)
	r.start()
	r.waitEvents(200)

	r.eventually(func() bool { code, _ := r.get("/readyz"); return code == 200 }, "ready")
	if code, body := r.get("/healthz"); code != 200 {
		t.Fatalf("/healthz = %d %s", code, body)
	}
	// The receiver counts the events before its answer reaches the sink,
	// which counts the request and its events only then: wait for them.
	names := []string{
		"siemship_source_bytes_read_total", "siemship_source_events_read_total", "siemship_source_events_acked_total",
		"siemship_source_lag_bytes", "siemship_source_lag_seconds", "siemship_source_files_behind",
		"siemship_source_rotations_before_loss", "siemship_source_lost_bytes_total", "siemship_source_checkpoint_age_seconds",
		"siemship_sink_requests_total", "siemship_sink_events_acked_total", "siemship_sink_events_retried_total",
		"siemship_sink_events_dead_lettered_total", "siemship_sink_request_duration_seconds",
		"siemship_tetragon_events_total", "siemship_tetragon_rate_limit_info_total", "process_resident_memory_bytes",
	}
	var missing []string
	r.eventually(func() bool {
		_, metrics := r.get("/metrics")
		missing = slices.DeleteFunc(slices.Clone(names), func(n string) bool { return strings.Contains(metrics, n) })
		return len(missing) == 0
	}, "/metrics to have every metric; it lacks %v", lazy(func() any { return missing }))

	// A blocked token: /readyz says why, but the pod stays ready (a SIEM
	// outage must not stall DaemonSet rollouts); nothing is lost.
	r.recv.BlockToken(testToken, true)
	r.write(50)
	r.eventually(func() bool {
		code, body := r.get("/readyz")
		return code == http.StatusOK && strings.Contains(body, `"sink logscale":{"ok":false,"detail":"LogScale rejected the ingest token: token blocked (403)","gating":false}`)
	}, "/readyz to report the rejected token")
	r.recv.BlockToken(testToken, false)
	r.waitEvents(250)
	r.eventually(func() bool { code, _ := r.get("/readyz"); return code == 200 }, "ready again")

	r.stop()
	if err := <-r.done; err != nil {
		t.Fatalf("Run after a graceful stop: %v", err)
	}
	var st struct {
		Position struct{ Offset int64 } `json:"position"`
	}
	data, err := os.ReadFile(filepath.Join(r.dir, "state", "tetragon.json"))
	if err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(data, &st)
	fi, _ := os.Stat(r.path)
	if st.Position.Offset != fi.Size() {
		t.Fatalf("checkpoint at %d after a graceful stop, want the end of the file (%d)", st.Position.Offset, fi.Size())
	}
	if n := r.recv.Stats().Events; n != 250 {
		t.Fatalf("receiver stored %d events, want exactly 250", n)
	}
}

// With readiness.require_sinks, a sink that rejects the token makes the
// pod NotReady.
func TestReadinessCanRequireSinks(t *testing.T) {
	r := newRig(t, "readiness:\n  require_sinks: true\n")
	r.recv.BlockToken(testToken, true)
	r.write(5)
	r.start()
	r.eventually(func() bool {
		code, body := r.get("/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "token blocked (403)")
	}, "/readyz to fail on the rejected token")
	r.recv.BlockToken(testToken, false)
	r.waitEvents(5)
	r.eventually(func() bool { code, _ := r.get("/readyz"); return code == 200 }, "ready again")
	r.stop()
	if err := <-r.done; err != nil {
		t.Fatal(err)
	}
}

func TestAgentKeepsDataWhileLogScaleIsDown(t *testing.T) {
	r := newRig(t)
	r.recv.FailNext(20, http.StatusServiceUnavailable, "")
	r.write(100)
	r.start()
	r.waitEvents(100)
	r.stop()
	if err := <-r.done; err != nil {
		t.Fatal(err)
	}
	if n := r.recv.Stats().Events; n != 100 {
		t.Fatalf("stored %d, want 100 exactly once", n)
	}
}

// tokenFile writes the ingest token where the config names it.
func (r *rig) tokenFile() string {
	p := filepath.Join(r.dir, "token")
	if err := os.WriteFile(p, []byte(testToken+"\n"), 0o600); err != nil {
		r.t.Fatal(err)
	}
	return p
}
