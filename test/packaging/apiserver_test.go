package packaging

import (
	"encoding/json"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
)

// noCRDHere are kinds whose CRDs (Prometheus Operator's) the test API server
// does not have; TestAllOptionsRender checks them instead. The
// PrometheusRule's CRD is installed (installPrometheusRuleCRD).
var noCRDHere = map[string]bool{"ServiceMonitor": true, "PodMonitor": true}

// joinDocs writes docs as one multi-document file, leaving out noCRDHere.
func joinDocs(t *testing.T, docs []doc) string {
	t.Helper()
	var b strings.Builder
	for _, d := range docs {
		if noCRDHere[d.Kind] {
			continue
		}
		b.WriteString("---\n" + d.Text + "\n")
	}
	return writeTemp(t, "rendered.yaml", b.String())
}

func ensureNamespace(t *testing.T, name string) {
	t.Helper()
	ns := writeTemp(t, "ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: "+name+"\n")
	kubectl(t, "apply", "--server-side", "--field-manager=siemship-test", "-f", ns)
}

// The chart's output is accepted by the real API server: schemas, field
// validation (unknown fields are errors) and admission.
func TestChartAcceptedByTheAPIServer(t *testing.T) {
	installPrometheusRuleCRD(t)
	ensureNamespace(t, "siemship-all")
	for name, tc := range map[string]struct {
		namespace string
		args      []string
	}{
		"defaults":    {"kube-system", nil},
		"all options": {"siemship-all", []string{"-f", allOptions}},
	} {
		t.Run(name, func(t *testing.T) {
			file := joinDocs(t, render(t, tc.namespace, tc.args...))
			out := kubectl(t, "apply", "--server-side", "--dry-run=server", "--field-manager=siemship-test", "-f", file)
			if !strings.Contains(out, "daemonset.apps/") {
				t.Fatalf("no DaemonSet applied:\n%s", out)
			}
		})
	}
	// The check can fail: a rolling update that may never replace a pod
	// (maxUnavailable 0 with maxSurge 0) passes the chart's schema, and only
	// the server's validation knows it is invalid.
	file := joinDocs(t, render(t, "kube-system", "--set", "updateStrategy.maxUnavailable=0"))
	errOut, err := kubectlErr(t, "apply", "--server-side", "--dry-run=server", "--field-manager=siemship-test", "-f", file)
	if err == nil || !strings.Contains(errOut, "maxUnavailable") {
		t.Fatalf("an invalid update strategy was accepted: %v %s", err, errOut)
	}
}

// Users install with helm or with kubectl apply -f manifests/. Both run here
// against the API server, one after the other (they create the same
// cluster-wide ClusterRole).
func TestInstallWithHelmThenWithKubectl(t *testing.T) {
	conf, _ := cluster(t)

	t.Run("helm install", func(t *testing.T) {
		out := run(t, helmBin(t), "install", "siemship", chartDir, "--namespace", "kube-system", "--kubeconfig", conf)
		for _, want := range []string{
			"STATUS: deployed",
			"kubectl -n kube-system create secret generic siemship-logscale --from-literal=token=<ingest token>",
			"kubectl -n kube-system rollout status daemonset/siemship",
			"siemship check --config /etc/siemship/config/config.yaml",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("helm install output lacks %q:\n%s", want, out)
			}
		}
		var ds appsv1.DaemonSet
		if err := json.Unmarshal([]byte(kubectl(t, "-n", "kube-system", "get", "daemonset", "siemship", "-o", "json")), &ds); err != nil {
			t.Fatal(err)
		}
		if sc := ds.Spec.Template.Spec.Containers[0].SecurityContext; !*sc.ReadOnlyRootFilesystem || sc.Capabilities.Drop[0] != "ALL" {
			t.Errorf("stored DaemonSet security context: %+v", sc)
		}
		run(t, helmBin(t), "uninstall", "siemship", "--namespace", "kube-system", "--kubeconfig", conf)
	})

	t.Run("kubectl apply -f manifests/", func(t *testing.T) {
		out := kubectl(t, "apply", "-f", repoPath("manifests"))
		for _, want := range []string{
			"serviceaccount/siemship created", "configmap/siemship created", "clusterrole.rbac.authorization.k8s.io/siemship created",
			"clusterrolebinding.rbac.authorization.k8s.io/siemship created", "daemonset.apps/siemship created",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("kubectl apply output lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, "secret/") {
			t.Errorf("the example Secret was applied:\n%s", out)
		}
		again := kubectl(t, "apply", "-f", repoPath("manifests"))
		if strings.Count(again, "unchanged") != 5 {
			t.Errorf("a second apply changed something:\n%s", again)
		}
		example := kubectl(t, "apply", "--dry-run=server", "-f", repoPath("manifests", "examples"))
		if !strings.Contains(example, "secret/siemship-logscale created (server dry run)") {
			t.Errorf("the example Secret: %s", example)
		}
		kubectl(t, "delete", "-f", repoPath("manifests"))
	})
}
