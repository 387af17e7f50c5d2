package k8smeta

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/siemship/siemship/internal/testenv/kube"
)

// Permissions is exactly what the repository's ClusterRole grants.
func TestPermissionsAreTheClusterRole(t *testing.T) {
	var granted []Permission
	for _, rule := range repoClusterRole(t).Rules {
		for _, v := range rule.Verbs {
			granted = append(granted, Permission{rule.APIGroups[0], rule.Resources[0], v})
		}
	}
	cmp := func(a, b Permission) int {
		return strings.Compare(a.Group+a.Resource+a.Verb, b.Group+b.Resource+b.Verb)
	}
	slices.SortFunc(granted, cmp)
	want := slices.Clone(Permissions)
	slices.SortFunc(want, cmp)
	if !slices.Equal(granted, want) {
		t.Fatalf("ClusterRole grants %v, the enricher needs %v", granted, want)
	}
}

// CheckAccess, as `siemship check` runs it, asks the real API server with
// the agent's own credentials: all allowed with the repository's role, and
// the one verb removed from it is named.
func TestCheckAccessAsksTheAPIServer(t *testing.T) {
	env := startKube(t)
	check := func(name string, rolePerm *Permission) []AccessResult {
		role := repoClusterRole(t)
		if rolePerm != nil {
			for i, r := range role.Rules {
				if r.Resources[0] == rolePerm.Resource {
					role.Rules[i].Verbs = slices.DeleteFunc(slices.Clone(r.Verbs), func(v string) bool { return v == rolePerm.Verb })
				}
			}
		}
		restCfg, err := env.ServiceAccountConfig(context.Background(), name, role)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "kubeconfig")
		if err := kube.WriteKubeconfig(path, restCfg); err != nil {
			t.Fatal(err)
		}
		return CheckAccess(context.Background(), Config{Kubeconfig: path})
	}
	res := check("siemship-check-full", nil)
	if len(res) != len(Permissions) {
		t.Fatalf("%d results for %d permissions: %+v", len(res), len(Permissions), res)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Errorf("with the full role: %v", r.Err)
		}
	}
	res = check("siemship-check-nowatch", &Permission{"", "pods", "watch"})
	var problems []string
	for _, r := range res {
		if r.Err != nil {
			problems = append(problems, r.Err.Error())
		}
	}
	if len(problems) != 1 || !strings.Contains(problems[0], "permission missing: watch pods") {
		t.Fatalf("without watch on pods: %q", problems)
	}
	bad := CheckAccess(context.Background(), Config{Kubeconfig: filepath.Join(t.TempDir(), "none")})
	if len(bad) != 1 || bad[0].Err == nil || !strings.Contains(fmt.Sprint(bad[0].Err), "kubernetes.kubeconfig") {
		t.Fatalf("missing kubeconfig: %+v", bad)
	}
}
