package k8smeta

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/siemship/siemship/internal/event"
)

const (
	benchNode       = "bench-node"
	benchLocalPods  = 110  // kubelet's default pod limit
	benchRemotePods = 5000 // on 50 other nodes
	benchNamespaces = 20
	benchBatch      = 256
)

// benchSetup is built once per test binary: the pods in the API server, an
// enricher synced to them, and the memory figures measured on the way.
type benchSetup struct {
	e           *Enricher
	stop        func()
	lines       [][]byte
	cacheMiB    float64 // heap held by the enricher with the local pods cached
	growthMiB   float64 // heap growth after 5,000 pods appeared on other nodes
	createTook  time.Duration
	localCached int
}

var (
	benchOnce sync.Once
	bench     *benchSetup
	benchErr  error
)

// BenchmarkEnrich enriches batches of realistic Tetragon events of 110
// pods on the agent's node, with 5,000 more pods on other nodes in the API
// server, and reports the memory the cache holds.
func BenchmarkEnrich(b *testing.B) {
	benchOnce.Do(func() { bench, benchErr = setupBench(b) })
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	s := bench
	evs := make([]event.Event, benchBatch)
	batch := event.NewBatch("tetragon", evs, nil)
	next := 0
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	cpu0 := cpuTime()
	for b.Loop() {
		for i := range batch.Events {
			batch.Events[i] = event.Event{Raw: s.lines[next], Type: "process_exec"}
			next = (next + 1) % len(s.lines)
		}
		s.e.Enrich(batch)
	}
	cpu := cpuTime() - cpu0
	runtime.ReadMemStats(&after)
	events := float64(b.N * benchBatch)
	// CPU time, GC included, is steadier than wall time on a shared machine.
	b.ReportMetric(float64(cpu.Nanoseconds())/events, "cpu-ns/event")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/events, "ns/event")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/events, "allocs/event")
	b.ReportMetric(s.cacheMiB, "cache-MiB")
	b.ReportMetric(s.growthMiB, "remote-growth-MiB")
	b.ReportMetric(float64(s.localCached), "cached-pods")
}

func setupBench(tb testing.TB) (*benchSetup, error) {
	env := startKube(tb)
	ensurePriorityClass(tb)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range benchNamespaces {
		createNamespace(tb, fmt.Sprintf("bench-%02d", i),
			map[string]string{"team": fmt.Sprintf("team-%d", i%7), "env": "prod", "cost-center": fmt.Sprintf("cc-%04d", i*37)},
			map[string]string{"scheduler.alpha.kubernetes.io/node-selector": "pool=general"})
	}
	// 22 Deployments of 5 pods each on the agent's node.
	type local struct {
		pod *corev1.Pod
		id  string
	}
	var locals []local
	for d := range benchLocalPods / 5 {
		ns := fmt.Sprintf("bench-%02d", d%benchNamespaces)
		app := fmt.Sprintf("svc-%02d", d)
		rs := createDeploymentRS(tb, ns, app, fmt.Sprintf("%x", rng.Uint32()))
		for r := range 5 {
			pod := benchPodObject(ns, fmt.Sprintf("%s-%d", app, r), benchNode, app, &rs, rng)
			pod.Spec.PriorityClassName = priorityClass
			p, id, err := createRunningPod(pod, fmt.Sprintf("10.244.%d.%d", rng.IntN(250), rng.IntN(250)), "")
			if err != nil {
				return nil, err
			}
			locals = append(locals, local{p, id})
		}
	}

	heap0 := heapAfterGC()
	e, stop := startBenchEnricher(tb)
	s := &benchSetup{e: e, stop: stop}
	deadline := time.Now().Add(time.Minute)
	for !allOwnersResolved(e, benchLocalPods) {
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("enricher did not cache %d pods with owners", benchLocalPods)
		}
		time.Sleep(50 * time.Millisecond)
	}
	heap1 := heapAfterGC()
	s.cacheMiB = float64(int64(heap1)-int64(heap0)) / (1 << 20)

	start := time.Now()
	var g errgroup.Group
	g.SetLimit(8)
	for i := range benchRemotePods {
		g.Go(func() error {
			ns := fmt.Sprintf("bench-%02d", i%benchNamespaces)
			app := fmt.Sprintf("remote-%03d", i%300)
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			_, err := env.Client.CoreV1().Pods(ns).Create(ctx,
				benchPodObject(ns, fmt.Sprintf("%s-%d", app, i), fmt.Sprintf("other-node-%02d", i%50), app, nil, rng),
				metav1.CreateOptions{})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		stop()
		return nil, fmt.Errorf("create remote pods: %w", err)
	}
	s.createTook = time.Since(start)
	time.Sleep(2 * time.Second) // what a watch would deliver has arrived
	heap2 := heapAfterGC()
	s.growthMiB = float64(int64(heap2)-int64(heap1)) / (1 << 20)
	live, _, _ := e.store.counts()
	s.localCached = live
	tb.Logf("bench setup: %d local pods cached, %d remote pods created in %v; cache %.1f MiB, growth %.2f MiB",
		live, benchRemotePods, s.createTook, s.cacheMiB, s.growthMiB)

	for i := range 4096 {
		l := locals[rng.IntN(len(locals))]
		p := proc{
			binary: benchBinaries[i%len(benchBinaries)],
			args:   fmt.Sprintf("--request-id %x --target https://svc-%d.internal:8443/v1/items?page=%d", rng.Uint64(), i%97, i),
			ns:     l.pod.Namespace, name: l.pod.Name, uid: string(l.pod.UID), containerID: l.id,
			labels: l.pod.Labels,
		}
		switch i % 10 {
		case 0:
			p = proc{binary: "/usr/bin/containerd-shim-runc-v2", args: "-namespace k8s.io -id " + randomHex(32)}
		case 1:
			p.noPodBlock = true
		}
		s.lines = append(s.lines, tetragonLine("process_exec", p, proc{binary: "/bin/sh", args: "-c run.sh"},
			time.Unix(1767225600, int64(i)*1e6)))
	}
	return s, nil
}

var benchBinaries = []string{"/usr/bin/curl", "/bin/sh", "/usr/local/bin/python3.12", "/app/server", "/usr/bin/nginx", "/bin/busybox"}

// startBenchEnricher starts the benchmark's enricher; it lives until
// TestMain stops it, as later benchmark runs reuse it.
func startBenchEnricher(tb testing.TB) (*Enricher, func()) {
	cfg := DefaultConfig()
	cfg.NodeName = benchNode
	cfg.ClusterName = "bench"
	cfg.PodAnnotations = []string{"prometheus.io/*"}
	e, _, stop := runEnricher(tb, cfg, agentConfig(tb), discardLogger())
	return e, stop
}

func allOwnersResolved(e *Enricher, want int) bool {
	e.store.mu.RLock()
	defer e.store.mu.RUnlock()
	n := 0
	for _, p := range e.store.byUID {
		if p.ownersDone && p.deleted.IsZero() {
			n++
		}
	}
	return n == want
}

// cpuTime returns the CPU time (user and system) of the process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func heapAfterGC() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// benchPodObject is a pod as a Helm chart typically renders it: standard
// labels, a last-applied-configuration annotation, two containers with env
// vars, probes and mounts.
func benchPodObject(ns, name, node, app string, owner *metav1.OwnerReference, rng *rand.Rand) *corev1.Pod {
	labels := map[string]string{
		"app.kubernetes.io/name":       app,
		"app.kubernetes.io/instance":   app + "-prod",
		"app.kubernetes.io/version":    fmt.Sprintf("1.%d.%d", rng.IntN(30), rng.IntN(20)),
		"app.kubernetes.io/component":  "api",
		"app.kubernetes.io/part-of":    "shop",
		"app.kubernetes.io/managed-by": "Helm",
		"helm.sh/chart":                app + "-4.2.1",
		"pod-template-hash":            fmt.Sprintf("%x", rng.Uint32()),
		"team":                         "payments",
	}
	env := make([]corev1.EnvVar, 12)
	for i := range env {
		env[i] = corev1.EnvVar{Name: fmt.Sprintf("APP_SETTING_%02d", i), Value: strings.Repeat("v", 10+rng.IntN(40))}
	}
	container := func(n string) corev1.Container {
		return corev1.Container{
			Name: n, Image: "registry.example/" + app + "/" + n + ":1.4.2", Env: env,
			Args:  []string{"--config=/etc/app/config.yaml", "--log-level=info", "--listen=:8080"},
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}, {Name: "metrics", ContainerPort: 9090}},
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")},
			},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/readyz", Port: intstr.FromInt32(8080)}}},
			LivenessProbe:  &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/livez", Port: intstr.FromInt32(8080)}}},
			VolumeMounts:   []corev1.VolumeMount{{Name: "config", MountPath: "/etc/app"}, {Name: "tmp", MountPath: "/tmp"}},
		}
	}
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: ns, Labels: labels,
			Annotations: map[string]string{
				"kubectl.kubernetes.io/last-applied-configuration": lastApplied(app, rng),
				"prometheus.io/scrape":                             "true",
				"prometheus.io/port":                               "9090",
				"checksum/config":                                  randomHex(32),
				"kubectl.kubernetes.io/restartedAt":                "2026-01-12T09:14:03Z",
			},
		},
		Spec: corev1.PodSpec{
			NodeName:           node,
			ServiceAccountName: app,
			Containers:         []corev1.Container{container("app"), container("sidecar")},
			Volumes: []corev1.Volume{
				{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: app + "-config"}}}},
				{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			},
		},
	}
	if owner != nil {
		p.OwnerReferences = []metav1.OwnerReference{*owner}
	}
	return p
}

// lastApplied imitates kubectl's last-applied-configuration annotation,
// the largest annotation most pods carry (about 1.5 KiB).
func lastApplied(app string, rng *rand.Rand) string {
	var b strings.Builder
	fmt.Fprintf(&b, `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"annotations":{},"labels":{"app.kubernetes.io/name":%q},"name":%q,"namespace":"shop"},"spec":{"replicas":5,"template":{"spec":{"containers":[`, app, app)
	for i := range 2 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"env":[`)
		for j := range 12 {
			if j > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"name":"APP_SETTING_%02d","value":"%s"}`, j, strings.Repeat("v", 10+rng.IntN(30)))
		}
		fmt.Fprintf(&b, `],"image":"registry.example/%s:1.4.2","name":"c%d"}`, app, i)
	}
	b.WriteString(`]}}}}`)
	return b.String()
}
