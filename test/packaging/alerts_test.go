package packaging

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

var crdOnce sync.Once

// installPrometheusRuleCRD installs the Prometheus Operator's PrometheusRule
// CRD (testdata/crds) into the test API server, once.
func installPrometheusRuleCRD(t *testing.T) {
	t.Helper()
	crdOnce.Do(func() {
		kubectl(t, "apply", "--server-side", "--field-manager=siemship-test", "-f", repoPath("test", "packaging", "testdata", "crds"))
		kubectl(t, "wait", "--for=condition=Established", "--timeout=60s", "crd/prometheusrules.monitoring.coreos.com")
	})
}

type promRule struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string            `json:"name"`
		Namespace string            `json:"namespace"`
		Labels    map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Alert       string            `json:"alert"`
				Expr        string            `json:"expr"`
				For         string            `json:"for"`
				Labels      map[string]string `json:"labels"`
				Annotations map[string]string `json:"annotations"`
			} `json:"rules"`
		} `json:"groups"`
	} `json:"spec"`
}

// The alerts the README's "Alerts" section explains, with the metric each
// one watches and the threshold the all-options file sets.
var alerts = map[string]struct{ metric, expr string }{
	"SiemshipDataLossImminent":   {"siemship_source_rotations_before_loss", `<= 2`},
	"SiemshipDataLost":           {"siemship_source_lost_bytes_total", `[10m]) > 0`},
	"SiemshipEventsDeadLettered": {"siemship_sink_events_dead_lettered_total", `[10m]) > 0`},
	"SiemshipSinkNotReady":       {"siemship_sink_ready", `== 0`},
	"SiemshipLagging":            {"siemship_source_lag_seconds", `> 600`},
}

func TestPrometheusRule(t *testing.T) {
	if kinds := kinds(render(t, "kube-system")); slices.Contains(kinds, "PrometheusRule") {
		t.Error("a PrometheusRule by default: the CRD may not exist")
	}
	d := find(t, render(t, "siemship-all", "-f", allOptions), "PrometheusRule")
	var r promRule
	if err := yaml.UnmarshalStrict([]byte(d.Text), &r); err != nil {
		t.Fatal(err)
	}
	if r.Metadata.Namespace != "siemship-all" || r.Metadata.Labels["release"] != "prometheus" || len(r.Spec.Groups) != 1 {
		t.Fatalf("PrometheusRule metadata %+v, %d groups", r.Metadata, len(r.Spec.Groups))
	}
	seen := map[string]bool{}
	for _, rule := range r.Spec.Groups[0].Rules {
		want, ok := alerts[rule.Alert]
		if !ok {
			t.Errorf("alert %s is not known to this test (nor, then, to the README)", rule.Alert)
			continue
		}
		seen[rule.Alert] = true
		if !strings.Contains(rule.Expr, want.metric+`{namespace="siemship-all"}`) || !strings.Contains(rule.Expr, want.expr) {
			t.Errorf("%s: expr %q, want %s of the release's namespace with %q", rule.Alert, rule.Expr, want.metric, want.expr)
		}
		if rule.Labels["team"] != "security" || rule.Labels["severity"] == "" {
			t.Errorf("%s: labels %v", rule.Alert, rule.Labels)
		}
		if rule.Annotations["summary"] == "" || !strings.Contains(rule.Annotations["description"], "{{ $labels.") {
			t.Errorf("%s: annotations %v", rule.Alert, rule.Annotations)
		}
	}
	for name := range alerts {
		if !seen[name] {
			t.Errorf("alert %s missing", name)
		}
	}
	fors := map[string]string{}
	for _, rule := range r.Spec.Groups[0].Rules {
		fors[rule.Alert] = rule.For
	}
	if fors["SiemshipLagging"] != "15m" || fors["SiemshipSinkNotReady"] != "5m" {
		t.Errorf("for: %v", fors)
	}

	// The CRD's schema checks what it can (durations, required fields): a
	// broken rule is refused, so acceptance in TestChartAcceptedByTheAPIServer
	// means something.
	installPrometheusRuleCRD(t)
	ensureNamespace(t, "siemship-all")
	out := kubectl(t, "apply", "--server-side", "--dry-run=server", "--field-manager=siemship-test", "-f", writeTemp(t, "rule.yaml", d.Text))
	if !strings.Contains(out, "prometheusrule.monitoring.coreos.com/"+r.Metadata.Name+" serverside-applied") {
		t.Fatalf("apply: %s", out)
	}
	broken := strings.Replace(d.Text, "for: 15m", "for: 15 minutes", 1)
	if broken == d.Text {
		t.Fatal("no for: 15m in the rule")
	}
	errOut, err := kubectlErr(t, "apply", "--server-side", "--dry-run=server", "--field-manager=siemship-test", "-f", writeTemp(t, "broken.yaml", broken))
	if err == nil || !strings.Contains(errOut, "spec.groups[0].rules[4].for") {
		t.Errorf("a rule with for: 15 minutes was accepted: %v %s", err, errOut)
	}
}

// The metrics the alerts watch are the agent's: each name is composed of
// the subsystem (source or sink) and a metric name the agent's code
// registers, and every alert is explained in the README.
func TestAlertsWatchRealMetricsAndAreExplained(t *testing.T) {
	code := agentSource(t)
	readme, err := os.ReadFile(repoPath("README.md"))
	if err != nil {
		t.Fatal(err)
	}
	section := regexp.MustCompile(`(?s)\n### Alerts\n(.*?)\n##`).FindSubmatch(readme)
	if section == nil {
		t.Fatal("README has no Alerts section")
	}
	for name, a := range alerts {
		rest, ok := strings.CutPrefix(a.metric, "siemship_source_")
		if !ok {
			rest, ok = strings.CutPrefix(a.metric, "siemship_sink_")
		}
		if !ok || !strings.Contains(code, `"`+rest+`"`) {
			t.Errorf("%s watches %s, which the agent's code does not register", name, a.metric)
		}
		if !strings.Contains(string(section[1]), "`"+name+"`") || !strings.Contains(string(section[1]), a.metric) {
			t.Errorf("the README's Alerts section does not explain %s (%s)", name, a.metric)
		}
	}
}

// securityContext and podSecurityContext override the chart's key by key;
// the keys they do not name keep the chart's values.
func TestSecurityContextOverrides(t *testing.T) {
	pod := daemonSet(t, render(t, "kube-system")).Spec.Template.Spec
	if sc := pod.Containers[0].SecurityContext; *sc.RunAsUser != 0 || *sc.RunAsNonRoot {
		t.Errorf("default container security context: runAsUser %d, runAsNonRoot %v", *sc.RunAsUser, *sc.RunAsNonRoot)
	}
	pod = daemonSet(t, render(t, "kube-system", "-f", allOptions)).Spec.Template.Spec
	sc := pod.Containers[0].SecurityContext
	if *sc.RunAsUser != 65532 || *sc.RunAsGroup != 65532 || !*sc.RunAsNonRoot {
		t.Errorf("overridden user: %d:%d, runAsNonRoot %v", *sc.RunAsUser, *sc.RunAsGroup, *sc.RunAsNonRoot)
	}
	if !*sc.ReadOnlyRootFilesystem || *sc.AllowPrivilegeEscalation || *sc.Privileged || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) ||
		sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("the keys not overridden lost the chart's values: %+v", sc)
	}
	if psc := pod.SecurityContext; !slices.Equal(psc.SupplementalGroups, []int64{2000}) || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod security context %+v", psc)
	}
}

func TestUpdateStrategy(t *testing.T) {
	s := daemonSet(t, render(t, "kube-system", "-f", allOptions)).Spec.UpdateStrategy
	if s.Type != "OnDelete" || s.RollingUpdate != nil {
		t.Errorf("OnDelete: %+v", s)
	}
	s = daemonSet(t, render(t, "kube-system", "--set", "updateStrategy.maxUnavailable=25%")).Spec.UpdateStrategy
	if s.Type != "RollingUpdate" || s.RollingUpdate.MaxSurge.IntValue() != 0 || s.RollingUpdate.MaxUnavailable.String() != "25%" {
		t.Errorf("RollingUpdate: %+v", s)
	}
}
