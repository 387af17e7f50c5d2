package k8smeta

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	rbacv1 "k8s.io/api/rbac/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"

	"github.com/siemship/siemship/internal/testenv/kube"
)

// The real etcd and kube-apiserver shared by this package's tests, started
// by the first test that needs them (unit tests and fuzz workers do not).
var (
	kenvOnce sync.Once
	kenv     *kube.Env
	kenvErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if bench != nil {
		bench.stop()
	}
	if kenv != nil {
		kenv.Close()
	}
	os.Exit(code)
}

// startKube returns the shared API server, starting it on first use.
func startKube(t testing.TB) *kube.Env {
	t.Helper()
	kenvOnce.Do(func() { kenv, kenvErr = kube.Start() })
	if kenvErr != nil {
		t.Fatalf("start kube-apiserver: %v", kenvErr)
	}
	return kenv
}

// repoClusterRole reads the repository's ClusterRole, the one the chart and
// manifests install.
func repoClusterRole(t testing.TB) *rbacv1.ClusterRole {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for !fileExists(filepath.Join(dir, "go.mod")) {
		dir = filepath.Dir(dir)
	}
	f, err := os.Open(filepath.Join(dir, "chart", "siemship", "files", "clusterrole.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var role rbacv1.ClusterRole
	if err := utilyaml.NewYAMLOrJSONDecoder(f, 4096).Decode(&role); err != nil {
		t.Fatalf("decode clusterrole.yaml: %v", err)
	}
	if role.Kind != "ClusterRole" || role.Name != "siemship" || len(role.Rules) == 0 {
		t.Fatalf("clusterrole.yaml: got kind %q name %q with %d rules", role.Kind, role.Name, len(role.Rules))
	}
	return &role
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

var (
	agentOnce sync.Once
	agentCfg  *rest.Config
	agentErr  error
)

// agentConfig authenticates as a ServiceAccount bound to the repository's
// ClusterRole, as the agent does in a cluster.
func agentConfig(t testing.TB) *rest.Config {
	t.Helper()
	env := startKube(t)
	agentOnce.Do(func() {
		agentCfg, agentErr = env.ServiceAccountConfig(context.Background(), "siemship-agent", repoClusterRole(t))
	})
	if agentErr != nil {
		t.Fatal(agentErr)
	}
	return agentCfg
}

// startEnricher runs an enricher with cfg, authenticated by restCfg through
// a kubeconfig file, until the test ends.
func startEnricher(t testing.TB, cfg Config, restCfg *rest.Config) (*Enricher, *prometheus.Registry) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	e, reg, stop := runEnricher(t, cfg, restCfg, log)
	t.Cleanup(stop)
	return e, reg
}

// runEnricher starts an enricher; stop cancels Run and waits for it.
func runEnricher(t testing.TB, cfg Config, restCfg *rest.Config, log *slog.Logger) (*Enricher, *prometheus.Registry, func()) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := kube.WriteKubeconfig(path, restCfg); err != nil {
		t.Fatal(err)
	}
	cfg.Kubeconfig = path
	reg := prometheus.NewRegistry()
	e, err := New(cfg, reg, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	stop := func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	return e, reg, stop
}

// waitReady waits until the enricher reports ready and has looked up the
// owners of every pod it holds.
func waitReady(t testing.TB, e *Enricher) {
	t.Helper()
	eventually(t, 60*time.Second, "enricher ready", func() (bool, string) {
		if ok, msg := e.Ready(); !ok {
			return false, msg
		}
		// Owner lookups run after the sync; on a loaded machine they can
		// take longer than a test's WaitForPod.
		if n := ownersPending(e); n > 0 {
			return false, fmt.Sprintf("owners of %d pods not looked up yet", n)
		}
		return true, ""
	})
}

func ownersPending(e *Enricher) int {
	e.store.mu.RLock()
	defer e.store.mu.RUnlock()
	n := 0
	for _, p := range e.store.byUID {
		if !p.ownersDone {
			n++
		}
	}
	return n
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v; last: %s", what, timeout, detail)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// metricValue returns the value of the metric name whose labels include
// the given pairs, or -1 when there is none.
func metricValue(t testing.TB, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if hasLabels(m, labels) {
				switch {
				case m.Counter != nil:
					return m.Counter.GetValue()
				case m.Gauge != nil:
					return m.Gauge.GetValue()
				case m.Histogram != nil:
					return float64(m.Histogram.GetSampleCount())
				}
			}
		}
	}
	return -1
}

func hasLabels(m *dto.Metric, pairs []string) bool {
	for i := 0; i+1 < len(pairs); i += 2 {
		found := false
		for _, l := range m.GetLabel() {
			if l.GetName() == pairs[i] && l.GetValue() == pairs[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// testName turns a test name into a DNS label for object names.
func testName(t testing.TB) string {
	n := strings.ToLower(t.Name())
	n = strings.NewReplacer("/", "-", "_", "-").Replace(n)
	if len(n) > 40 {
		n = n[:40]
	}
	return strings.Trim(n, "-")
}
