package packaging

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// The kind demo needs Docker; these tests run every piece of it that does
// not: its configuration files, its manifests (on the API server), and the
// in-cluster receiver and agent as they are configured there.

const kindDir = "hack/kind"

// scriptDefault reads a ${VAR:-default} setting of hack/kind-demo.sh.
func scriptDefault(t *testing.T, variable string) string {
	t.Helper()
	data, err := os.ReadFile(repoPath("hack", "kind-demo.sh"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`\$\{` + variable + `:-([^}]+)\}`).FindSubmatch(data)
	if m == nil {
		t.Fatalf("hack/kind-demo.sh has no default for %s", variable)
	}
	return string(m[1])
}

func TestKindDemoConfiguration(t *testing.T) {
	var cluster struct {
		Kind       string `json:"kind"`
		APIVersion string `json:"apiVersion"`
		Name       string `json:"name"`
		Networking struct {
			DisableDefaultCNI bool `json:"disableDefaultCNI"`
		} `json:"networking"`
		Nodes []struct{ Role string } `json:"nodes"`
	}
	data, err := os.ReadFile(repoPath(kindDir, "cluster.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(data, &cluster); err != nil {
		t.Fatal(err)
	}
	workers := 0
	for _, n := range cluster.Nodes {
		if n.Role == "worker" {
			workers++
		}
	}
	if cluster.Kind != "Cluster" || cluster.APIVersion != "kind.x-k8s.io/v1alpha4" || !cluster.Networking.DisableDefaultCNI || workers != 3 {
		t.Errorf("kind cluster: %+v", cluster)
	}

	// Tetragon writes where the chart looks by default: the chart's default
	// export directory is Tetragon's up to 1.7, so the demo's Tetragon must
	// be 1.7 or older, with the chart's file name.
	tv := readYAML(t, kindDir+"/tetragon-values.yaml")["tetragon"].(map[string]any)
	chart := readYAML(t, chartDir+"/values.yaml")["tetragon"].(map[string]any)
	if tv["exportFilename"] != chart["exportFilename"] || chart["newExportDirectory"] != false {
		t.Errorf("Tetragon exports %v, the chart reads %v", tv["exportFilename"], chart)
	}
	version := scriptDefault(t, "TETRAGON_VERSION")
	parts := strings.Split(version, ".")
	minor, err := strconv.Atoi(parts[1])
	if parts[0] != "1" || err != nil || minor > 7 {
		t.Errorf("the demo installs Tetragon %s, whose export directory is not the chart's default", version)
	}
	readYAML(t, kindDir+"/cilium-values.yaml")
	if !strings.Contains(scriptDefault(t, "LOGSCALE_URL"), "cloud.community.humio.com") {
		t.Error("the demo's default LogScale is not LogScale Community")
	}
}

// demoValuesRender renders the chart as the demo installs it.
func demoValuesRender(t *testing.T, url string) []doc {
	t.Helper()
	return render(t, "kube-system", "-f", kindDir+"/siemship-values.yaml", "--set", "config.sinks.logscale.url="+url)
}

func TestKindDemoManifestsAccepted(t *testing.T) {
	docs := demoValuesRender(t, "http://logscale-receiver.logscale-demo.svc:8080")
	kubectl(t, "apply", "--server-side", "--dry-run=server", "--field-manager=siemship-test", "-f", joinDocs(t, docs))

	out := kubectl(t, "apply", "-f", repoPath(kindDir, "receiver.yaml"), "-f", repoPath(kindDir, "workload.yaml"))
	for _, want := range []string{"deployment.apps/logscale-receiver created", "service/logscale-receiver created", "deployment.apps/suspicious created"} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl apply lacks %q:\n%s", want, out)
		}
	}
	// The receiver runs the image the demo builds and loads.
	var dep appsv1.Deployment
	if err := json.Unmarshal([]byte(kubectl(t, "-n", "logscale-demo", "get", "deployment", "logscale-receiver", "-o", "json")), &dep); err != nil {
		t.Fatal(err)
	}
	agent := daemonSet(t, docs).Spec.Template.Spec.Containers[0]
	recv := dep.Spec.Template.Spec.Containers[0]
	if recv.Image != agent.Image || recv.ImagePullPolicy != corev1.PullNever || agent.ImagePullPolicy != corev1.PullNever {
		t.Errorf("receiver image %s (%s), agent image %s (%s): both must be the image loaded into kind",
			recv.Image, recv.ImagePullPolicy, agent.Image, agent.ImagePullPolicy)
	}
	kubectl(t, "delete", "-f", repoPath(kindDir, "receiver.yaml"), "-f", repoPath(kindDir, "workload.yaml"), "--wait=false")
}

// proc is a child process whose output is kept.
type proc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan error
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func start(t *testing.T, bin string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), done: make(chan error, 1)}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func get(url string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %d", url, resp.StatusCode)
	}
	return string(b), err
}

// The demo without a LogScale account: the receiver as receiver.yaml runs
// it, the agent with the configuration the chart renders from the demo's
// values, a Tetragon file with a policy event, and the script's summary of
// the receiver's events.
func TestKindDemoReceiverAndAgent(t *testing.T) {
	bin := staticBinary(t, runtime.GOARCH)
	dir := t.TempDir()

	// The receiver, with the arguments of its manifest (on loopback).
	var dep appsv1.Deployment
	data, err := os.ReadFile(repoPath(kindDir, "receiver.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for part := range strings.SplitSeq(string(data), "\n---\n") {
		if strings.Contains(part, "kind: Deployment") {
			if err := yaml.UnmarshalStrict([]byte(part), &dep); err != nil {
				t.Fatal(err)
			}
		}
	}
	args := dep.Spec.Template.Spec.Containers[0].Args
	for i, a := range args {
		if a == "--listen" {
			args[i+1] = "127.0.0.1:0"
		}
	}
	recv := start(t, bin, []string{"SIEMSHIP_RECEIVER_TOKENS=demo-token=tetragon"}, args...)
	addr := regexp.MustCompile(`addr=(127\.0\.0\.1:\d+)`)
	waitFor(t, "the receiver to listen", 60*time.Second, func() bool { return addr.MatchString(recv.output()) })
	base := "http://" + addr.FindStringSubmatch(recv.output())[1]
	if _, err := get(base + "/api/v1/status"); err != nil {
		t.Fatalf("the receiver's readiness path: %v", err)
	}

	// A Tetragon export file: the documentation's events and one from
	// siemship's sensitive-files policy.
	samples, err := os.ReadFile(filepath.Join(root(), "testdata", "tetragon", "docs-examples.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(samples)), "\n")
	for _, l := range lines {
		if strings.HasPrefix(l, `{"process_kprobe"`) {
			lines = append(lines, strings.Replace(l, `"policy_name":"file-monitoring"`, `"policy_name":"siemship-sensitive-files"`, 1))
		}
	}
	export := filepath.Join(dir, "export", "tetragon.log")
	if err := os.MkdirAll(filepath.Dir(export), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(export, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	// The agent, configured as in the demo; only paths and addresses are
	// moved into the test's directory.
	var cm corev1.ConfigMap
	decodeStrict(t, find(t, demoValuesRender(t, base), "ConfigMap"), &cm)
	conf := writeTemp(t, "config.yaml", cm.Data["config.yaml"])
	token := writeTemp(t, "token", "demo-token")
	agent := start(t, bin, []string{
		"SIEMSHIP_CONFIG=" + conf,
		"SIEMSHIP_STATE_DIR=" + filepath.Join(dir, "state"),
		"SIEMSHIP_SOURCES_TETRAGON_PATH=" + export,
		"SIEMSHIP_LISTEN=127.0.0.1:0",
		"SIEMSHIP_KUBERNETES_ENABLED=false",
		"SIEMSHIP_SINKS_LOGSCALE_TOKEN_FILE=" + token,
	}, "run")

	waitFor(t, "the events at the receiver", 90*time.Second, func() bool {
		stats, err := get(base + "/_emulator/stats")
		var s struct{ Events int }
		return err == nil && json.Unmarshal([]byte(stats), &s) == nil && s.Events == len(lines)
	})
	started := regexp.MustCompile(`"msg":"siemship started".*"sources":\{"tetragon":\{[^}]*"check":"ok"\}\},"sinks":\{"logscale":\{[^}]*"check":"ok"\}`)
	if !started.MatchString(agent.output()) {
		t.Errorf("the first-contact line does not say file found, LogScale reachable, token accepted:\n%s", agent.output())
	}

	events, err := get(base + "/_emulator/events?limit=10000")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", "-c", `source hack/kind-demo.sh && policy_counts`)
	cmd.Dir = root()
	cmd.Stdin = strings.NewReader(events)
	counts, err := cmd.Output()
	if err != nil || !regexp.MustCompile(`(?m)^\s*1 siemship-sensitive-files$`).Match(counts) {
		t.Errorf("the script's policy summary: %q (%v)", counts, err)
	}
}
