package falcon

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	falconemu "github.com/siemship/siemship/internal/emulators/falcon"
	emulator "github.com/siemship/siemship/internal/emulators/logscale"
	"github.com/siemship/siemship/internal/sources/falconapi"
	"github.com/siemship/siemship/internal/testenv/kube"
	"github.com/siemship/siemship/internal/testkit"
	"github.com/siemship/siemship/test/internal/agentproc"
)

const (
	haNamespace   = "siemship-falcon"
	leaseDuration = 3 * time.Second
	retryPeriod   = 500 * time.Millisecond
)

// Two agent processes share one Lease and one offsets ConfigMap on the real
// kube-apiserver, as the chart's Deployment does, authenticated as a
// ServiceAccount bound to the chart's Role. The leader is SIGKILLed while
// Falcon produces on three partitions: the standby leads within the lease
// duration (plus the standby's polling, about two retry periods),
// resumes after the offsets committed at the kill, and every offset of every
// partition reaches the strict LogScale receiver; the only repeats are
// offsets above the committed ones (batches in flight at the kill). The same
// agents poll Falcon's API (falcon_api, hosts and alerts, records added and
// updated all along): only the leader polls, its high-water marks are in
// the same ConfigMap, and the standby resumes at them, so every record
// version reaches LogScale and the only repeats are versions not behind
// the mark committed at the kill.
func TestLeaderFailoverResumesAtCommittedOffsets(t *testing.T) {
	bin := agentproc.Binary(t, testkit.RepoRoot(t))
	dir := testkit.KeptDir(t)
	env, err := kube.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rc, err := env.RoleServiceAccountConfig(ctx, "siemship-falcon", haNamespace, chartRole(t).Rules)
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := kube.WriteKubeconfig(kubeconfig, rc); err != nil {
		t.Fatal(err)
	}

	emu := falconemu.New(falconemu.Config{ClientID: "test-client", ClientSecret: "test-secret", Partitions: partitions,
		RefreshInterval: 4 * time.Second, TokenTTL: 3 * time.Second, KeepAlive: 200 * time.Millisecond,
		LeaseLinger: 300 * time.Millisecond, StreamStarted: true, Seed: 17})
	fsrv := httptest.NewServer(emu)
	defer fsrv.Close()
	rec := &recorder{emu: emu, by: map[key][]int{}, types: map[string]int{}, session: 1, api: map[apiKey][]int{}}
	recv := emulator.New(emulator.Config{Tokens: map[string]emulator.Token{token: {Name: "falcon", Repo: "falcon"}}, OnEvent: rec.onEvent})
	recv.SetFaults(emulator.Faults{Rate: 0.02, Seed: 4, SlowDelay: 200 * time.Millisecond})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go recv.Serve(ctx, ln)

	config := func(name string) string {
		path := filepath.Join(dir, name+".yaml")
		body := fmt.Sprintf(`state_dir: %s
listen: ""
log:
  format: text
leader_election:
  enabled: true
  namespace: %s
  kubeconfig: %s
  lease_duration: %s
  renew_deadline: 2s
  retry_period: %s
sources:
  falcon:
    type: falcon_stream
    base_url: %s
    app_id: siemshipha
    retry_initial: 50ms
    retry_max: 500ms
    linger: 100ms
    read_timeout: 3s
    checkpoint_interval: 200ms
  api:
    type: falcon_api
    base_url: %s
    resources: [hosts, alerts]
    interval: 200ms
    start_from: 1h
sinks:
  logscale:
    url: http://%s
    linger: 100ms
    retry_initial: 50ms
    retry_max: 1s
`, filepath.Join(dir, name+"-state"), haNamespace, kubeconfig, leaseDuration, retryPeriod, fsrv.URL, fsrv.URL, ln.Addr())
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	envVars := []string{"SIEMSHIP_LOGSCALE_TOKEN=" + token, "SIEMSHIP_SOURCES_FALCON_CLIENT_ID=test-client", "SIEMSHIP_SOURCES_FALCON_CLIENT_SECRET=test-secret",
		"SIEMSHIP_SOURCES_API_CLIENT_ID=test-client", "SIEMSHIP_SOURCES_API_CLIENT_SECRET=test-secret"}

	for p := range partitions {
		emu.Append(p, 2000)
	}
	for _, r := range apiResources {
		emu.AddRecords(r, 500, time.Now().Add(-10*time.Minute))
	}
	stopProducing := produceEvery(50*time.Millisecond, func() {
		for p := range partitions {
			emu.Append(p, 15)
		}
		for _, r := range apiResources {
			emu.AddRecords(r, 3, time.Now())
			emu.UpdateRecords(r, 1)
		}
	})
	defer stopProducing()

	const leading = "leading: starting the leader-only sources"
	a := agentproc.Start(t, bin, config("a"), filepath.Join(dir, "a.log"), envVars...)
	a.WaitForLog(t, leading, time.Minute)
	b := agentproc.Start(t, bin, config("b"), filepath.Join(dir, "b.log"), envVars...)
	b.WaitForLog(t, "campaigning for the lease", time.Minute)
	time.Sleep(3 * time.Second)
	if exited, err := b.Exited(); exited {
		t.Fatalf("standby exited: %v", err)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "b.log"))
	if contains(data, leading) {
		t.Fatal("the standby leads while the leader runs")
	}

	a.Kill(t)
	killed := time.Now()
	rec.mu.Lock()
	rec.session = 2
	rec.mu.Unlock()
	committed := configMapOffsets(t, env)
	if len(committed) != partitions {
		t.Fatalf("offsets committed at the kill: %v", committed)
	}
	marks := configMapMarks(t, env)
	if len(marks) != len(apiResources) {
		t.Fatalf("falcon_api marks committed at the kill: %v", marks)
	}
	b.WaitForLog(t, leading, 2*leaseDuration)
	failover := time.Since(killed)
	// client-go: the standby sees the last renewal up to one (jittered)
	// retry period late and checks the Lease every retry period, so it
	// leads within lease_duration plus about two retry periods.
	if max := leaseDuration + 3*retryPeriod; failover > max {
		t.Errorf("standby led %v after the kill, want within %v", failover, max)
	}

	time.Sleep(2 * time.Second)
	stopProducing()
	deadline := time.Now().Add(60 * time.Second)
	for {
		missing, first := missingOffsets(rec, emu)
		missingAPI, firstAPI := missingVersions(rec, emu)
		if missing == 0 && missingAPI == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d offsets never arrived, first %v; %d record versions never arrived, first %v; emulator %+v %+v",
				missing, first, missingAPI, firstAPI, emu.Stats(), emu.ResourceStats())
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.Terminate(t, 30*time.Second)

	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.bad) > 0 {
		t.Fatalf("%d events altered on the way, first %s", len(rec.bad), rec.bad[0])
	}
	dups, total := 0, 0
	perPart := map[int]int{}
	for k, sessions := range rec.by {
		total++
		for i := 1; i < len(sessions); i++ {
			dups++
			perPart[k.p]++
			if sessions[i] == sessions[i-1] {
				t.Errorf("partition %d offset %d delivered twice by one leader", k.p, k.off)
			}
			if c := committed[fmt.Sprint(k.p)]; k.off <= c {
				t.Errorf("partition %d offset %d sent again though committed (%d) at the kill", k.p, k.off, c)
			}
		}
	}
	apiDups := 0
	for k, sessions := range rec.api {
		for i := 1; i < len(sessions); i++ {
			apiDups++
			if sessions[i] == sessions[i-1] {
				t.Errorf("%s %s version %d delivered twice by one leader", k.resource, k.id, k.version)
			}
			if pos := marks[k.resource]; covered(pos, k) {
				t.Errorf("%s %s version %d (%s) sent again though the checkpoint committed at the kill has it: mark %s", k.resource, k.id, k.version, k.at, pos.Timestamp)
			}
		}
	}
	if log, _ := os.ReadFile(filepath.Join(dir, "b.log")); contains(log, "no checkpoint for resource") {
		t.Error("the new leader did not find the falcon_api marks in the ConfigMap")
	}
	t.Logf("falcon_api: %d record versions delivered, %d duplicates at failover, none of them in the checkpoint committed at the kill", len(rec.api), apiDups)
	t.Logf("failover %v after SIGKILL (lease_duration %v, retry_period %v); committed at the kill %v; %d offsets of %d partitions delivered, %d duplicates at failover (per partition %v), all above the committed offsets",
		failover.Round(time.Millisecond), leaseDuration, retryPeriod, committed, total, partitions, dups, perPart)
}

func contains(data []byte, s string) bool { return strings.Contains(string(data), s) }

// configMapOffsets reads the offsets the leader committed to the ConfigMap.
func configMapOffsets(t *testing.T, env *kube.Env) map[string]int64 {
	t.Helper()
	cm, err := env.Client.CoreV1().ConfigMaps(haNamespace).Get(context.Background(), "siemship-falcon-offsets", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("offsets ConfigMap: %v", err)
	}
	var st struct {
		Offsets map[string]int64 `json:"offsets"`
	}
	if err := json.Unmarshal([]byte(cm.Data["falcon"]), &st); err != nil {
		t.Fatalf("offsets in the ConfigMap: %v", err)
	}
	return st.Offsets
}

// configMapMarks reads the falcon_api positions the leader committed to
// the ConfigMap.
func configMapMarks(t *testing.T, env *kube.Env) map[string]falconapi.Position {
	t.Helper()
	cm, err := env.Client.CoreV1().ConfigMaps(haNamespace).Get(context.Background(), "siemship-falcon-offsets", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("offsets ConfigMap: %v", err)
	}
	var st falconapi.State
	if err := json.Unmarshal([]byte(cm.Data["api"]), &st); err != nil {
		t.Fatalf("falcon_api checkpoint in the ConfigMap: %v (%q)", err, cm.Data["api"])
	}
	return st.Resources
}

// covered reports whether pos says version k was delivered: behind the
// mark, at it among its ids, or above it among the delivered ones.
func covered(pos falconapi.Position, k apiKey) bool {
	mark, _ := time.Parse(time.RFC3339Nano, pos.Timestamp)
	ahead, _ := time.Parse(time.RFC3339Nano, pos.Ahead[k.id])
	return k.at.Before(mark) || k.at.Equal(mark) && slices.Contains(pos.IDs, k.id) || k.at.Equal(ahead)
}

func chartRole(t *testing.T) *rbacv1.Role {
	t.Helper()
	f, err := os.Open(filepath.Join(testkit.RepoRoot(t), "chart", "siemship", "files", "falcon-role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var role rbacv1.Role
	if err := utilyaml.NewYAMLOrJSONDecoder(f, 4096).Decode(&role); err != nil {
		t.Fatal(err)
	}
	return &role
}
