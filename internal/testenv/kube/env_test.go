package kube

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// TestEnv checks the helper end to end: the admin token works, a minted
// ServiceAccount token is limited to its ClusterRole, a kubeconfig written
// for it loads, and the API server comes back after a restart.
func TestEnv(t *testing.T) {
	env, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	role := &rbacv1.ClusterRole{Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"list"}},
	}}
	cfg, err := env.ServiceAccountConfig(ctx, "env-test", role)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := WriteKubeconfig(path, cfg); err != nil {
		t.Fatal(err)
	}
	loaded, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	sa := kubernetes.NewForConfigOrDie(loaded)
	if _, err := sa.CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatalf("list namespaces with the granted rule: %v", err)
	}
	_, err = sa.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `cannot list resource "nodes"`) {
		t.Fatalf("list nodes without a rule: got %v, want forbidden", err)
	}

	env.StopAPIServer()
	if _, err := env.Client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); err == nil {
		t.Fatal("list succeeded with the API server stopped")
	}
	if err := env.StartAPIServer(); err != nil {
		t.Fatal(err)
	}
	if _, err := sa.CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatalf("list after restart: %v", err)
	}
	if _, err := os.Stat(env.dir); err != nil {
		t.Fatal(err)
	}
}
