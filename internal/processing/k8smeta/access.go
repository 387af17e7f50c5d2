package k8smeta

import (
	"context"
	"fmt"

	authv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Permission is one verb on one resource the enricher uses; Permissions
// is the whole list, which the chart's ClusterRole must grant (a test
// holds the two together).
type Permission struct{ Group, Resource, Verb string }

// Permissions the enricher needs: node-scoped pod informer, namespace
// informer, own-Node informer, metadata-only owner lookups.
var Permissions = []Permission{
	{"", "pods", "list"}, {"", "pods", "watch"},
	{"", "namespaces", "list"}, {"", "namespaces", "watch"},
	{"", "nodes", "list"}, {"", "nodes", "watch"},
	{"apps", "replicasets", "get"},
	{"batch", "jobs", "get"},
}

// AccessResult is one line of CheckAccess: what was checked, and the
// problem or nil.
type AccessResult struct {
	OK  string
	Err error
}

// CheckAccess asks the API server, with the agent's own credentials,
// whether each needed permission is granted (SelfSubjectAccessReview).
func CheckAccess(ctx context.Context, cfg Config) []AccessResult {
	restCfg, err := loadRESTConfig(cfg.Kubeconfig)
	if err != nil {
		return []AccessResult{{Err: fmt.Errorf("%w (kubernetes.kubeconfig empty means the in-cluster service account)", err)}}
	}
	client, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return []AccessResult{{Err: fmt.Errorf("kubernetes client: %w", err)}}
	}
	var out []AccessResult
	for _, p := range Permissions {
		what := p.Verb + " " + p.Resource
		if p.Group != "" {
			what += "." + p.Group
		}
		review := &authv1.SelfSubjectAccessReview{Spec: authv1.SelfSubjectAccessReviewSpec{
			ResourceAttributes: &authv1.ResourceAttributes{Group: p.Group, Resource: p.Resource, Verb: p.Verb},
		}}
		res, err := client.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
		switch {
		case err != nil:
			out = append(out, AccessResult{Err: fmt.Errorf("cannot ask the API server at %s whether %s is allowed: %w", restCfg.Host, what, err)})
			return out
		case !res.Status.Allowed:
			out = append(out, AccessResult{Err: fmt.Errorf("permission missing: %s (bind the chart's ClusterRole siemship to the agent's service account)%s", what, reason(res.Status.Reason))})
		default:
			out = append(out, AccessResult{OK: what + " allowed"})
		}
	}
	return out
}

func reason(r string) string {
	if r == "" {
		return ""
	}
	return ": " + r
}
