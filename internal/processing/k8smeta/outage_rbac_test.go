package k8smeta

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
)

// TestOutage stops the API server under a running agent and under an agent
// that starts during the outage: both keep shipping with markers, say so in
// Ready and the metrics, and enrich again once the server is back.
func TestOutage(t *testing.T) {
	w := newWorld(t)
	cfg := w.config()
	cfg.WaitForPod = 30 * time.Second // "did not wait" must stand out on a loaded machine
	running, reg := startEnricher(t, cfg, agentConfig(t))
	waitReady(t, running)
	known := tetragonLine("process_exec", w.webProc(), proc{}, time.Now())
	unknown := tetragonLine("process_exec", proc{ns: w.ns, name: "unknown", containerID: randomHex(32)}, proc{}, time.Now())
	hostLine := tetragonLine("process_exec", proc{binary: "/usr/bin/kubelet"}, proc{}, time.Now())

	kenv.StopAPIServer()
	up := false
	t.Cleanup(func() {
		if !up {
			if err := kenv.StartAPIServer(); err != nil {
				t.Error(err)
			}
		}
	})
	eventually(t, 30*time.Second, "outage reported", func() (bool, string) {
		ok, msg := running.Ready()
		return !ok && strings.HasPrefix(msg, "kubernetes API unreachable since "), msg
	})
	if v := metricValue(t, reg, "siemship_k8s_api_available"); v != 0 {
		t.Errorf("siemship_k8s_api_available = %v during the outage", v)
	}
	if v := metricValue(t, reg, "siemship_k8s_api_errors_total", "resource", "pods"); v < 1 {
		t.Errorf("siemship_k8s_api_errors_total{resource=pods} = %v during the outage", v)
	}

	// Known pods are still enriched from the cache; unknown ones are not
	// waited for.
	checkFields(t, enrichOne(t, running, known), map[string]any{"match": "uid", "pod.name": w.web.Name})
	start := time.Now()
	checkFields(t, enrichOne(t, running, unknown), map[string]any{"miss": "unavailable", "pod": nil})
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Enrich waited %v during the outage", d)
	}

	// An agent started during the outage ships events unenriched, marked.
	late, lateReg := startEnricher(t, cfg, agentConfig(t))
	eventually(t, 30*time.Second, "outage reported by an agent started during it", func() (bool, string) {
		ok, msg := late.Ready()
		return !ok && strings.HasPrefix(msg, "kubernetes API unreachable since "), msg
	})
	start = time.Now()
	checkFields(t, enrichOne(t, late, known), map[string]any{"miss": "unavailable", "pod": nil})
	checkFields(t, enrichOne(t, late, hostLine), map[string]any{"match": "host", "miss": "unavailable", "node": nil})
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Enrich waited %v before the first sync", d)
	}
	if v := metricValue(t, lateReg, "siemship_k8s_misses_total", "reason", "unavailable"); v != 1 {
		t.Errorf("siemship_k8s_misses_total{reason=unavailable} = %v, want 1", v)
	}

	if err := kenv.StartAPIServer(); err != nil {
		t.Fatal(err)
	}
	up = true
	rs := createDeploymentRS(t, w.ns, "after", "6c4d")
	after, afterID := createPod(t, podSpec{ns: w.ns, name: "after-6c4d-m2n4b", node: w.node, owner: &rs})
	afterLine := tetragonLine("process_exec",
		proc{ns: w.ns, name: after.Name, uid: string(after.UID), containerID: afterID}, proc{}, time.Now())
	for name, e := range map[string]*Enricher{"running": running, "started during outage": late} {
		// client-go's reflector retries with backoff (up to 30 s plus jitter).
		eventually(t, 90*time.Second, name+" agent recovered", func() (bool, string) { return e.Ready() })
		// Synced again does not mean the watch already delivered the new pod,
		// nor that its owner lookup (retried with backoff) is done.
		eventually(t, 60*time.Second, name+" agent sees the pod created after the outage", func() (bool, string) {
			k := enrichOne(t, e, afterLine)
			return get(k, "match") == "uid" && get(k, "workload") != nil, jsonString(k)
		})
		checkFields(t, enrichOne(t, e, afterLine), map[string]any{
			"match": "uid", "workload": map[string]any{"kind": "Deployment", "name": "after"},
		})
		checkFields(t, enrichOne(t, e, known), map[string]any{"match": "uid", "pod.name": w.web.Name})
	}
	if v := metricValue(t, reg, "siemship_k8s_api_available"); v != 1 {
		t.Errorf("siemship_k8s_api_available = %v after recovery", v)
	}
}

// TestClusterRoleMinimal runs the agent with the repository's ClusterRole
// minus one rule, or minus one verb of a rule, and expects it to report an
// error naming exactly what is missing. TestEnrich shows the whole role is
// enough.
func TestClusterRoleMinimal(t *testing.T) {
	w := newWorld(t)
	full := repoClusterRole(t)
	type variant struct {
		name    string
		role    *rbacv1.ClusterRole
		missing []string // any of these in Ready's message
	}
	var variants []variant
	for i, rule := range full.Rules {
		res, group := rule.Resources[0], rule.APIGroups[0]
		missing := func(verbs []string) []string {
			var out []string
			for _, v := range verbs {
				out = append(out, fmt.Sprintf("cannot %s resource %q in API group %q", v, res, group))
			}
			return out
		}
		role := full.DeepCopy()
		role.Rules = slices.Delete(role.Rules, i, i+1)
		variants = append(variants, variant{"without " + res, role, missing(rule.Verbs)})
		if len(rule.Verbs) == 1 {
			continue
		}
		for j, verb := range rule.Verbs {
			role := full.DeepCopy()
			role.Rules[i].Verbs = slices.Delete(slices.Clone(rule.Verbs), j, j+1)
			variants = append(variants, variant{"without " + verb + " " + res, role, missing([]string{verb})})
		}
	}
	for i, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			cfg, err := kenv.ServiceAccountConfig(context.Background(), fmt.Sprintf("siemship-rbac-%d", i), v.role)
			if err != nil {
				t.Fatal(err)
			}
			e, _ := startEnricher(t, w.config(), cfg)
			eventually(t, 30*time.Second, "missing permission reported", func() (bool, string) {
				ok, msg := e.Ready()
				if ok || !strings.Contains(msg, "kubernetes API access denied since ") {
					return false, msg
				}
				for _, m := range v.missing {
					if strings.Contains(msg, m) {
						return true, msg
					}
				}
				return false, msg
			})
		})
	}
}
