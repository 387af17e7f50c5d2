package k8smeta

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/siemship/siemship/internal/event"
)

// world is a namespace with pods of a Deployment, a CronJob and a bare pod
// on the agent's node, and a pod on another node.
type world struct {
	node, ns               string
	web, cron, bare, other *corev1.Pod
	webID, cronID, bareID  string
	otherID                string
	webLabels              map[string]string
}

func newWorld(t testing.TB) *world {
	t.Helper()
	startKube(t)
	ensurePriorityClass(t)
	name := testName(t)
	w := &world{node: name + "-node", ns: name, webLabels: map[string]string{"app": "web", "tier": "frontend"}}
	createNode(t, w.node, map[string]string{
		"topology.kubernetes.io/zone":      "eu-west-1a",
		"topology.kubernetes.io/region":    "eu-west-1",
		"node.kubernetes.io/instance-type": "m6i.large",
		"kubernetes.io/os":                 "linux", // not in the allowlist
	})
	createNamespace(t, w.ns,
		map[string]string{"team": "payments", "env": "prod"},
		map[string]string{"owner": "alice@example.com", "unlisted": "x"})
	rs := createDeploymentRS(t, w.ns, "web", "5d8f7c9b4")
	job := createCronJobJob(t, w.ns, "nightly", "29014400")
	w.web, w.webID = createPod(t, podSpec{
		ns: w.ns, name: "web-5d8f7c9b4-x2k9p", node: w.node, owner: &rs, labels: w.webLabels,
		annotations:    map[string]string{"siemship.io/team": "payments", "kubectl.kubernetes.io/last-applied-configuration": "{}"},
		serviceAccount: "web-sa", priority: true, ip: "10.244.1.7",
	})
	w.cron, w.cronID = createPod(t, podSpec{ns: w.ns, name: "nightly-29014400-abcde", node: w.node, owner: &job, ip: "10.244.1.8"})
	w.bare, w.bareID = createPod(t, podSpec{ns: w.ns, name: "debug", node: w.node, hostNetwork: true, ip: "192.168.10.4"})
	w.other, w.otherID = createPod(t, podSpec{ns: w.ns, name: "web-5d8f7c9b4-other", node: "some-other-node", owner: &rs})
	return w
}

func (w *world) config() Config {
	cfg := DefaultConfig()
	cfg.NodeName = w.node
	cfg.ClusterName = "prod-eu"
	cfg.WaitForPod = 300 * time.Millisecond
	cfg.PodAnnotations = []string{"siemship.io/*"}
	cfg.NamespaceAnnotations = []string{"owner"}
	return cfg
}

func (w *world) webProc() proc {
	return proc{ns: w.ns, name: w.web.Name, uid: string(w.web.UID), containerID: w.webID, labels: w.webLabels}
}

// TestEnrich runs the agent with the repository's ClusterRole against the
// real API server and checks every match method and every field group.
func TestEnrich(t *testing.T) {
	w := newWorld(t)
	e, reg := startEnricher(t, w.config(), agentConfig(t))
	waitReady(t, e)
	now := time.Now()

	t.Run("uid", func(t *testing.T) {
		k := enrichOne(t, e, tetragonLine("process_exec", w.webProc(), proc{}, now))
		want := map[string]any{
			"cluster":               "prod-eu",
			"match":                 "uid",
			"pod.name":              w.web.Name,
			"pod.namespace":         w.ns,
			"pod.uid":               string(w.web.UID),
			"pod.service_account":   "web-sa",
			"pod.host_ip":           "192.168.10.4",
			"pod.qos_class":         "Burstable",
			"pod.priority_class":    priorityClass,
			"pod.priority":          float64(1000),
			"pod.created":           w.web.CreationTimestamp.UTC().Format(time.RFC3339),
			"pod.annotations":       map[string]any{"siemship.io/team": "payments"},
			"workload":              map[string]any{"kind": "Deployment", "name": "web"},
			"namespace.labels":      map[string]any{"team": "payments", "env": "prod"},
			"namespace.annotations": map[string]any{"owner": "alice@example.com"},
			"node.name":             w.node,
			"node.labels":           map[string]any{"topology.kubernetes.io/zone": "eu-west-1a", "topology.kubernetes.io/region": "eu-west-1", "node.kubernetes.io/instance-type": "m6i.large"},
		}
		checkFields(t, k, want)
		if got := jsonString(get(k, "owners")); got != `[{"kind":"ReplicaSet","name":"web-5d8f7c9b4"},{"kind":"Deployment","name":"web"}]` {
			t.Errorf("owners = %s", got)
		}
		if got := jsonString(get(k, "pod", "ips")); got != `["10.244.1.7"]` {
			t.Errorf("pod.ips = %s", got)
		}
		if get(k, "pod", "labels") != nil {
			t.Error("pod labels added although the event has its own pod_labels")
		}
	})

	t.Run("name", func(t *testing.T) {
		p := w.webProc()
		p.uid = "" // Tetragon before 1.6
		k := enrichOne(t, e, tetragonLine("process_kprobe", p, proc{}, now))
		checkFields(t, k, map[string]any{"match": "name", "pod.uid": string(w.web.UID)})
	})

	t.Run("container", func(t *testing.T) {
		k := enrichOne(t, e, tetragonLine("process_exec", proc{containerID: w.webID, noPodBlock: true}, proc{}, now))
		checkFields(t, k, map[string]any{
			"match": "container", "pod.name": w.web.Name,
			// The API server's PodTopologyLabels admission copies the node's
			// zone and region labels to the pod.
			"pod.labels": map[string]any{
				"app": "web", "tier": "frontend",
				"topology.kubernetes.io/zone": "eu-west-1a", "topology.kubernetes.io/region": "eu-west-1",
			},
			"workload": map[string]any{"kind": "Deployment", "name": "web"},
		})
	})

	t.Run("cronjob", func(t *testing.T) {
		p := proc{ns: w.ns, name: w.cron.Name, uid: string(w.cron.UID), containerID: w.cronID}
		k := enrichOne(t, e, tetragonLine("process_exit", p, proc{}, now))
		checkFields(t, k, map[string]any{"workload": map[string]any{"kind": "CronJob", "name": "nightly"}, "pod.qos_class": "Burstable"})
		if got := jsonString(get(k, "owners")); got != `[{"kind":"Job","name":"nightly-29014400"},{"kind":"CronJob","name":"nightly"}]` {
			t.Errorf("owners = %s", got)
		}
	})

	t.Run("bare pod", func(t *testing.T) {
		p := proc{ns: w.ns, name: w.bare.Name, uid: string(w.bare.UID), containerID: w.bareID}
		k := enrichOne(t, e, tetragonLine("process_exec", p, proc{}, now))
		checkFields(t, k, map[string]any{"pod.host_network": true, "workload": nil, "owners": nil, "pod.priority": nil})
	})

	t.Run("host process", func(t *testing.T) {
		k := enrichOne(t, e, tetragonLine("process_exec", proc{binary: "/usr/bin/kubelet"}, proc{}, now))
		checkFields(t, k, map[string]any{"match": "host", "node.name": w.node, "pod": nil, "miss": nil})
	})

	t.Run("parent in another pod", func(t *testing.T) {
		parent := proc{binary: "/bin/sh", ns: w.ns, name: w.bare.Name, uid: string(w.bare.UID), containerID: w.bareID}
		k := enrichOne(t, e, tetragonLine("process_exec", w.webProc(), parent, now))
		checkFields(t, k, map[string]any{
			"pod.name": w.web.Name, "parent.match": "uid", "parent.pod.name": w.bare.Name,
			"parent.namespace.labels": map[string]any{"team": "payments", "env": "prod"},
		})
	})

	t.Run("parent in the same pod", func(t *testing.T) {
		k := enrichOne(t, e, tetragonLine("process_exec", w.webProc(), w.webProc(), now))
		checkFields(t, k, map[string]any{"pod.name": w.web.Name, "parent": nil})
	})

	t.Run("pod on another node", func(t *testing.T) {
		p := proc{ns: w.ns, name: w.other.Name, uid: string(w.other.UID), containerID: w.otherID}
		start := time.Now()
		k := enrichOne(t, e, tetragonLine("process_exec", p, proc{}, now))
		checkFields(t, k, map[string]any{"miss": "not_found", "pod": nil, "node.name": w.node})
		if d := time.Since(start); d > w.config().WaitForPod+5*time.Second { // slack for a loaded machine
			t.Errorf("Enrich took %v, bound is %v", d, w.config().WaitForPod)
		}
	})

	t.Run("flagged and non-process events unchanged", func(t *testing.T) {
		trunc := tetragonLine("process_exec", w.webProc(), proc{}, now)[:100]
		rate := []byte(`{"rate_limit_info":{"number_of_dropped_process_events":"42"},"node_name":"n","time":"2026-03-06T22:03:57Z"}`)
		b := event.NewBatch("tetragon", []event.Event{
			{Raw: trunc, Flags: event.Truncated, Type: "process_exec"},
			{Raw: []byte("not json"), Flags: event.Malformed},
			{Raw: rate, Type: "rate_limit_info"},
		}, nil)
		e.Enrich(b)
		for i, want := range [][]byte{trunc, []byte("not json"), rate} {
			if string(b.Events[i].Raw) != string(want) {
				t.Errorf("event %d changed: %s", i, b.Events[i].Raw)
			}
		}
	})

	t.Run("metrics", func(t *testing.T) {
		for _, c := range []struct {
			name   string
			labels []string
			min    float64
		}{
			{"siemship_k8s_matches_total", []string{"method", "uid"}, 1},
			{"siemship_k8s_matches_total", []string{"method", "name"}, 1},
			{"siemship_k8s_matches_total", []string{"method", "container"}, 1},
			{"siemship_k8s_matches_total", []string{"method", "host"}, 1},
			{"siemship_k8s_misses_total", []string{"reason", "not_found"}, 1},
			{"siemship_k8s_cache_objects", []string{"kind", "pods"}, 3},
			{"siemship_k8s_cache_objects", []string{"kind", "owners"}, 2},
			{"siemship_k8s_api_available", nil, 1},
			{"siemship_k8s_enrich_seconds", nil, 1},
		} {
			if v := metricValue(t, reg, c.name, c.labels...); v < c.min {
				t.Errorf("%s%v = %v, want >= %v", c.name, c.labels, v, c.min)
			}
		}
		// The whole ClusterRole is enough: no lookup failed.
		if ok, msg := e.Ready(); !ok {
			t.Errorf("Ready = false: %s", msg)
		}
		// Only this node's pods are cached: the pod on another node is not.
		if v := metricValue(t, reg, "siemship_k8s_cache_objects", "kind", "pods"); v != 3 {
			t.Errorf("cached pods = %v, want 3", v)
		}
	})
}

// checkFields compares dotted paths of the k8s member with wanted values;
// a nil value means the path must be absent.
func checkFields(t testing.TB, k8s map[string]any, want map[string]any) {
	t.Helper()
	for path, v := range want {
		got := get(k8s, strings.Split(path, ".")...)
		if jsonString(got) != jsonString(v) {
			t.Errorf("k8s.%s = %s, want %s (k8s: %s)", path, jsonString(got), jsonString(v), jsonString(k8s))
		}
	}
}

// TestGroupsOff checks that switched-off groups add nothing and that the
// pod's identity is still added.
func TestGroupsOff(t *testing.T) {
	w := newWorld(t)
	cfg := w.config()
	cfg.ClusterName = ""
	cfg.Groups = Groups{}
	e, _ := startEnricher(t, cfg, agentConfig(t))
	waitReady(t, e)
	k := enrichOne(t, e, tetragonLine("process_exec", w.webProc(), proc{}, time.Now()))
	want := map[string]any{
		"match": "uid",
		"pod":   map[string]any{"namespace": w.ns, "name": w.web.Name, "uid": string(w.web.UID)},
	}
	if got, want := jsonString(k), jsonString(want); got != want {
		t.Errorf("k8s = %s\nwant %s", got, want)
	}
}

// TestChanges checks that label and annotation changes reach events, that a
// deleted pod is still used for late events within the retention time and
// not after it.
func TestChanges(t *testing.T) {
	w := newWorld(t)
	cfg := w.config()
	cfg.PodRetention = 3 * time.Second
	e, reg := startEnricher(t, cfg, agentConfig(t))
	waitReady(t, e)
	line := tetragonLine("process_exec", w.webProc(), proc{}, time.Now())

	patchLabels(t, "namespace", "", w.ns, map[string]string{"env": "staging"})
	eventually(t, 10*time.Second, "namespace label change", func() (bool, string) {
		k := enrichOne(t, e, line)
		return get(k, "namespace", "labels", "env") == "staging", jsonString(k)
	})

	patch := map[string]string{"siemship.io/team": "risk"}
	_, err := kenv.Client.CoreV1().Pods(w.ns).Patch(context.Background(), w.web.Name, "application/merge-patch+json",
		[]byte(`{"metadata":{"annotations":`+jsonString(patch)+`}}`), metav1.PatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "pod annotation change", func() (bool, string) {
		k := enrichOne(t, e, line)
		return get(k, "pod", "annotations", "siemship.io/team") == "risk", jsonString(k)
	})

	deletePod(t, w.ns, w.web.Name)
	eventually(t, 10*time.Second, "deletion seen", func() (bool, string) {
		v := metricValue(t, reg, "siemship_k8s_cache_objects", "kind", "deleted_pods")
		return v == 1, jsonString(v)
	})
	deletedAt := time.Now()
	k := enrichOne(t, e, line)
	checkFields(t, k, map[string]any{"match": "uid", "workload": map[string]any{"kind": "Deployment", "name": "web"}})
	// A late event by container id only still finds the deleted pod.
	k = enrichOne(t, e, tetragonLine("process_exit", proc{containerID: w.webID, noPodBlock: true}, proc{}, time.Now()))
	checkFields(t, k, map[string]any{"match": "container", "pod.name": w.web.Name})

	eventually(t, 15*time.Second, "deleted pod expired", func() (bool, string) {
		k := enrichOne(t, e, line)
		return get(k, "miss") == "not_found", jsonString(k)
	})
	if d := time.Since(deletedAt); d < cfg.PodRetention {
		t.Errorf("deleted pod dropped after %v, retention is %v", d, cfg.PodRetention)
	}
}

// TestEarlyEvent checks the bounded wait: an event whose pod appears while
// Enrich waits is enriched; one whose pod never appears costs at most
// WaitForPod, once.
func TestEarlyEvent(t *testing.T) {
	w := newWorld(t)
	cfg := w.config()
	// The early event's wait must end when the pod appears, whenever that
	// is: on a loaded CI machine creating it took over 8 s once. The bound
	// itself is checked below with a short WaitForPod.
	cfg.WaitForPod = time.Minute
	e, reg := startEnricher(t, cfg, agentConfig(t))
	waitReady(t, e)

	rs := createDeploymentRS(t, w.ns, "late", "7b9c")
	// The event names the container the pod's status will list: whether
	// the cache first sees the pod before or after its status update, the
	// name matches.
	late := podSpec{ns: w.ns, name: "late-7b9c-q8w2e", node: w.node, owner: &rs, containerID: randomHex(32)}
	created := make(chan error, 1)
	go func() {
		time.Sleep(300 * time.Millisecond)
		_, _, err := tryCreatePod(late)
		created <- err
	}()
	start := time.Now()
	line := tetragonLine("process_exec", proc{ns: late.ns, name: late.name, containerID: late.containerID}, proc{}, time.Now())
	k := enrichOne(t, e, line)
	took := time.Since(start)
	if err := <-created; err != nil {
		t.Fatal(err)
	}
	checkFields(t, k, map[string]any{"match": "name", "workload": map[string]any{"kind": "Deployment", "name": "late"}})
	if took < 250*time.Millisecond || took >= cfg.WaitForPod {
		t.Errorf("early event took %v; want the time until the pod appeared, below %v", took, cfg.WaitForPod)
	}
	if v := metricValue(t, reg, "siemship_k8s_waits_total"); v != 1 {
		t.Errorf("waits = %v, want 1", v)
	}

	cfg.WaitForPod = 2 * time.Second
	e, _ = startEnricher(t, cfg, agentConfig(t))
	waitReady(t, e)
	// Two events of pods that never come, in one batch: one wait in total.
	never1 := tetragonLine("process_exec", proc{ns: w.ns, name: "never-1", containerID: randomHex(32)}, proc{}, time.Now())
	never2 := tetragonLine("process_exec", proc{ns: w.ns, name: "never-2", containerID: randomHex(32)}, proc{}, time.Now())
	b := batchOf("process_exec", never1, never2)
	start = time.Now()
	e.Enrich(b)
	took = time.Since(start)
	if took < cfg.WaitForPod || took > cfg.WaitForPod+3*time.Second {
		t.Errorf("batch with missing pods took %v, want about %v", took, cfg.WaitForPod)
	}
	for i, orig := range [][]byte{never1, never2} {
		checkFields(t, k8sOf(t, orig, b.Events[i].Raw), map[string]any{"miss": "not_found"})
	}
	// The same missing pod again: no second wait.
	start = time.Now()
	checkFields(t, enrichOne(t, e, never1), map[string]any{"miss": "not_found"})
	if took := time.Since(start); took > 2*time.Second { // far below WaitForPod: no second wait
		t.Errorf("second event of a missing pod waited %v", took)
	}
}
