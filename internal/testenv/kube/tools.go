// Package kube starts a real etcd and a real kube-apiserver for integration
// tests, so that informers, RBAC and the TokenRequest API are exercised
// against the real thing rather than a fake clientset.
//
// There is no kubelet, scheduler or controller-manager: tests create pods with
// spec.nodeName set, set owner references themselves and patch pod status
// through the status subresource. The ServiceAccount admission plugin is off,
// so pods need no default ServiceAccount.
package kube

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ToolsDirEnv names the variable that overrides where the binaries are
// cached (default <repo>/.cache/tools); they live in its bin/ subdirectory.
const ToolsDirEnv = "SIEMSHIP_TOOLS_DIR"

// etcdPath is where Debian's etcd-server package installs etcd.
const etcdPath = "/usr/bin/etcd"

// binaries returns the paths of etcd and kube-apiserver, running
// hack/kube-tools.sh first when either is missing. The script installs etcd
// and builds kube-apiserver from the pinned k8s.io/kubernetes module, which
// takes several minutes on a cold Go build cache.
func binaries() (etcd, apiserver string, err error) {
	root, err := repoRoot()
	if err != nil {
		return "", "", err
	}
	dir := os.Getenv(ToolsDirEnv)
	if dir == "" {
		dir = filepath.Join(root, ".cache", "tools")
	}
	apiserver = filepath.Join(dir, "bin", "kube-apiserver")
	if !executable(apiserver) || !executable(etcdPath) {
		if err := runToolsScript(root); err != nil {
			return "", "", err
		}
	}
	for _, p := range []string{etcdPath, apiserver} {
		if !executable(p) {
			return "", "", fmt.Errorf("%s missing after hack/kube-tools.sh", p)
		}
	}
	return etcdPath, apiserver, nil
}

func runToolsScript(root string) error {
	fmt.Fprintln(os.Stderr, "testenv/kube: etcd or kube-apiserver missing, running hack/kube-tools.sh")
	cmd := exec.Command("bash", filepath.Join(root, "hack", "kube-tools.sh"))
	cmd.Dir = root
	cmd.Stdout = os.Stderr // the script's last line (the bin dir) is only informative here
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("run hack/kube-tools.sh: %w", err)
	}
	return nil
}

func executable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// repoRoot walks up from the working directory (the package directory under
// go test) to the directory holding the main module's go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("getwd: %w", err)
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(data), "module github.com/siemship/siemship\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("repository root (go.mod of github.com/siemship/siemship) not found")
		}
		dir = parent
	}
}
