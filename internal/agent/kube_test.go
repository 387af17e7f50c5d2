package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/siemship/siemship/internal/testenv/kube"
	"github.com/siemship/siemship/internal/testkit"
)

// The whole agent with Kubernetes metadata on, against a real API server,
// authenticated as a ServiceAccount bound to the repository's ClusterRole.
func TestAgentEnrichesFromARealAPIServer(t *testing.T) {
	env, err := kube.Start()
	if err != nil {
		t.Fatalf("start kube-apiserver: %v", err)
	}
	defer env.Close()
	ctx := context.Background()

	roleYAML, err := os.ReadFile(filepath.Join(testkit.RepoRoot(t), "chart", "siemship", "files", "clusterrole.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.ClusterRole
	if err := yaml.Unmarshal(roleYAML, &role); err != nil {
		t.Fatal(err)
	}
	saCfg, err := env.ServiceAccountConfig(ctx, "siemship-agent-test", &role)
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := kube.WriteKubeconfig(kubeconfig, saCfg); err != nil {
		t.Fatal(err)
	}

	c := env.Client.CoreV1()
	if _, err := c.Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "agent-node",
		Labels: map[string]string{"topology.kubernetes.io/zone": "zone-a"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop",
		Labels: map[string]string{"team": "payments"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod, err := c.Pods("shop").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "cart-0", Namespace: "shop"},
		Spec:       corev1.PodSpec{NodeName: "agent-node", Containers: []corev1.Container{{Name: "app", Image: "example/app:1"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	r := newRig(t)
	r.agent = nil
	extra := fmt.Sprintf("kubernetes:\n  enabled: true\n  node_name: agent-node\n  kubeconfig: %s\n  cluster_name: test-cluster\n", kubeconfig)
	r.agent = r.newAgentWith(extra)
	line := fmt.Sprintf(`{"process_exec":{"process":{"exec_id":"x","pid":1,"binary":"/bin/sh","pod":{"namespace":"shop","name":"cart-0","uid":%q}}},"node_name":"agent-node","time":"2026-11-22T10:00:00Z"}`, pod.UID)
	f, _ := os.OpenFile(r.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	f.WriteString(line + "\n")
	f.Close()
	r.start()
	r.waitEvents(1)
	r.stop()
	if err := <-r.done; err != nil {
		t.Fatal(err)
	}
	attrs := r.recv.Events("tetragon")[0].Attributes
	if !strings.HasPrefix(attrs, line[:len(line)-1]) {
		t.Fatalf("the event's own bytes changed:\n%s", attrs)
	}
	k8s := gjson.Get(attrs, "k8s")
	for path, want := range map[string]string{
		"cluster": "test-cluster", "namespace.labels.team": "payments", "match": "uid", "node.labels.topology\\.kubernetes\\.io/zone": "zone-a",
	} {
		if got := k8s.Get(path).String(); got != want {
			t.Errorf("k8s.%s = %q, want %q (k8s block: %s)", path, got, want, k8s.Raw)
		}
	}
	if !k8s.Exists() || strings.Contains(k8s.Raw, `"miss"`) {
		t.Fatalf("event not enriched: %s", attrs)
	}
}
