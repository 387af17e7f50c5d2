package cli

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/siemship/siemship/internal/leader"
	"github.com/siemship/siemship/internal/sources/falconapi"
	"github.com/siemship/siemship/internal/testenv/kube"
)

// Under leader election the falcon sources' checkpoints are in the
// leader's ConfigMap (real kube-apiserver): show reads them there; reset
// refuses while an agent holds the Lease, naming it, and otherwise takes the
// Lease for its write and releases it at once, so the next agent leads
// without waiting for lease_duration. Run from outside the pod, it needs no
// state_dir.
func TestCheckpointInTheLeadersConfigMap(t *testing.T) {
	env, err := kube.Start()
	if err != nil {
		t.Fatalf("start kube-apiserver: %v", err)
	}
	t.Cleanup(env.Close)
	ctx := context.Background()
	const ns = "falcon"
	if _, err := env.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := kube.WriteKubeconfig(kubeconfig, env.Admin); err != nil {
		t.Fatal(err)
	}
	// The pod's state_dir, which a workstation does not have: the command
	// must not need it when every checkpoint is in the ConfigMap.
	os.WriteFile(filepath.Join(dir, "not-a-dir"), nil, 0o600)
	cfgPath := filepath.Join(dir, "siemship.yaml")
	os.WriteFile(cfgPath, []byte("state_dir: "+filepath.Join(dir, "not-a-dir", "state")+`
leader_election:
  enabled: true
  namespace: `+ns+`
  lease_duration: 3s
  renew_deadline: 2s
  retry_period: 500ms
sources:
  stream:
    type: falcon_stream
    base_url: http://127.0.0.1:1
  api:
    type: falcon_api
    base_url: http://127.0.0.1:1
    resources: [hosts, alerts]
sinks:
  logscale:
    url: https://cloud.community.humio.com
`), 0o644)
	cli := func(args ...string) (string, error) {
		return runCheckpointCLI(t, append(args, "--config", cfgPath, "--kubeconfig", kubeconfig)...)
	}

	out, err := cli("checkpoint", "show")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"source api (falcon_api, ConfigMap falcon/siemship-falcon-offsets key api): no checkpoint",
		"source stream (falcon_stream, ConfigMap falcon/siemship-falcon-offsets key stream): no committed offset"} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}

	// An agent leads: the reset refuses and names it.
	agent := elect(t, kubeconfig, ns, "agent-pod-1")
	stopAgent := campaignFor(t, agent)
	select {
	case <-agent.Leading():
	case <-time.After(10 * time.Second):
		t.Fatal("the agent's elector did not lead")
	}
	_, err = cli("checkpoint", "reset", "--source", "api", "--resource", "hosts", "--to", "2025-05-01T00:00:00Z")
	if err == nil || !strings.Contains(err.Error(), "held by agent-pod-1") || !strings.Contains(err.Error(), "scale the Deployment to zero") {
		t.Fatalf("reset while an agent leads: %v", err)
	}
	stopAgent() // releases the Lease, as an agent does when it stops

	if _, err := cli("checkpoint", "reset", "--source", "api", "--resource", "hosts", "--to", "2025-05-01T00:00:00Z"); err != nil {
		t.Fatal(err)
	}
	cm, err := env.Client.CoreV1().ConfigMaps(ns).Get(ctx, "siemship-falcon-offsets", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var st falconapi.State
	if err := json.Unmarshal([]byte(cm.Data["api"]), &st); err != nil || st.Resources["hosts"].Timestamp != "2025-05-01T00:00:00Z" {
		t.Fatalf("ConfigMap key api after reset: %q (%v)", cm.Data["api"], err)
	}
	out, _ = cli("checkpoint", "show")
	if !strings.Contains(out, "hosts: delivered up to 2025-05-01T00:00:00Z") {
		t.Errorf("show after reset:\n%s", out)
	}

	// The reset released the Lease: the next agent leads at once, not after
	// lease_duration (3s).
	next := elect(t, kubeconfig, ns, "agent-pod-2")
	start := time.Now()
	campaignFor(t, next)
	select {
	case <-next.Leading():
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("the next agent led after %v: the reset kept the Lease", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the next agent did not lead")
	}
}

func elect(t *testing.T, kubeconfig, ns, id string) *leader.Elector {
	t.Helper()
	c := leader.DefaultConfig()
	c.Enabled, c.Namespace, c.Identity, c.Kubeconfig = true, ns, id, kubeconfig
	c.LeaseDuration, c.RenewDeadline, c.RetryPeriod = 3*time.Second, 2*time.Second, 500*time.Millisecond
	e, err := leader.New(c, prometheus.NewRegistry(), slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// campaignFor runs e until stop is called or the test ends.
func campaignFor(t *testing.T, e *leader.Elector) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = e.Run(ctx) })
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(stop)
	return stop
}
