// Package packaging tests what users install: the Helm chart, the plain
// manifests rendered from it, the tracing policies, the scripts and the
// pieces of the Dockerfile and the kind demo that run without Docker. Helm
// and shellcheck come from hack/helm-tools.sh, etcd, kube-apiserver and
// kubectl from hack/kube-tools.sh; manifests are checked by the real
// kube-apiserver (server-side apply and dry-run).
package packaging

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/siemship/siemship/internal/testenv/kube"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if kenv != nil {
		kenv.Close()
	}
	for _, dir := range tempDirs {
		_ = os.RemoveAll(dir)
	}
	os.Exit(code)
}

// tempDirs outlive single tests (kubeconfig, built binaries); TestMain
// removes them.
var tempDirs []string

func sharedTempDir() (string, error) {
	dir, err := os.MkdirTemp("", "siemship-packaging-")
	if err == nil {
		tempDirs = append(tempDirs, dir)
	}
	return dir, err
}

// root is the repository root (the directory of go.mod).
var root = sync.OnceValue(func() string {
	dir, err := os.Getwd()
	if err != nil {
		panic(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			panic("go.mod not found above " + dir)
		}
		dir = parent
	}
})

func repoPath(parts ...string) string { return filepath.Join(append([]string{root()}, parts...)...) }

// toolsBin runs a hack/*-tools.sh script once and returns the directory it
// printed on its last line.
func toolsBin(script string) (string, error) {
	cmd := exec.Command("bash", repoPath("hack", script))
	cmd.Dir = root()
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("hack/%s: %v\n%s", script, err, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	return lines[len(lines)-1], nil
}

var helmTools = sync.OnceValues(func() (string, error) { return toolsBin("helm-tools.sh") })

// helmBin returns the helm binary (built once, cached in .cache/tools).
func helmBin(t *testing.T) string {
	t.Helper()
	dir, err := helmTools()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "helm")
}

// shellcheckBin returns shellcheck (installed by helm-tools.sh when missing).
func shellcheckBin(t *testing.T) string {
	t.Helper()
	if _, err := helmTools(); err != nil {
		t.Fatal(err)
	}
	p, err := exec.LookPath("shellcheck")
	if err != nil {
		t.Fatalf("shellcheck missing after hack/helm-tools.sh: %v", err)
	}
	return p
}

// run runs a command in the repository root and returns its standard output;
// it fails the test with standard error when the command fails.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, errOut, err := tryRun(name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, errOut)
	}
	return out
}

func tryRun(name string, args ...string) (string, string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = root()
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return out.String(), errOut.String(), err
}

// The API server is started on first use and shared by the package's tests.
var (
	kenv     *kube.Env
	kenvOnce sync.Once
	kenvErr  error
	kubeconf string
	kubectlP string
)

// cluster starts etcd and kube-apiserver (once) and returns a kubeconfig
// for the admin and the kubectl binary.
func cluster(t *testing.T) (kubeconfig, kubectl string) {
	t.Helper()
	kenvOnce.Do(func() {
		kenv, kenvErr = kube.Start()
		if kenvErr != nil {
			return
		}
		dir, err := sharedTempDir()
		if err != nil {
			kenvErr = err
			return
		}
		kubeconf = filepath.Join(dir, "kubeconfig")
		if kenvErr = kube.WriteKubeconfig(kubeconf, kenv.Admin); kenvErr != nil {
			return
		}
		var bin string
		if bin, kenvErr = toolsBin("kube-tools.sh"); kenvErr == nil {
			kubectlP = filepath.Join(bin, "kubectl")
		}
	})
	if kenvErr != nil {
		t.Fatalf("start kube-apiserver: %v", kenvErr)
	}
	return kubeconf, kubectlP
}

// kubectl runs kubectl against the test API server.
func kubectl(t *testing.T, args ...string) string {
	t.Helper()
	conf, bin := cluster(t)
	return run(t, bin, append([]string{"--kubeconfig", conf}, args...)...)
}

// kubectlErr runs kubectl and returns its error and standard error.
func kubectlErr(t *testing.T, args ...string) (string, error) {
	t.Helper()
	conf, bin := cluster(t)
	_, errOut, err := tryRun(bin, append([]string{"--kubeconfig", conf}, args...)...)
	return errOut, err
}

// writeTemp writes data to a new file in t's temporary directory.
func writeTemp(t *testing.T, name, data string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
