package k8smeta

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/metadata"
)

// The owner kinds looked up to find their own controller. Every other kind
// (Deployment, StatefulSet, DaemonSet, CronJob, Node for static pods, custom
// resources) ends the chain, so the ClusterRole needs only these two.
var lookedUp = map[schema.GroupKind]schema.GroupVersionResource{
	{Group: "apps", Kind: "ReplicaSet"}: {Group: "apps", Version: "v1", Resource: "replicasets"},
	{Group: "batch", Kind: "Job"}:       {Group: "batch", Version: "v1", Resource: "jobs"},
}

const (
	maxOwnerDepth = 5
	ownerTTL      = 10 * time.Minute // a controller's own controller rarely changes
	lookupTimeout = 10 * time.Second
)

// ownerResolver walks a pod's controller chain with metadata-only GETs (no
// spec is transferred), caching each owner's controller by owner uid.
type ownerResolver struct {
	client metadata.Interface
	// observe receives the outcome of every lookup, by resource.
	observe func(resource string, err error)

	mu    sync.Mutex
	cache map[types.UID]cachedOwner
}

type cachedOwner struct {
	parent  *metav1.OwnerReference // nil: no controller, or owner gone
	fetched time.Time
}

func newOwnerResolver(client metadata.Interface, observe func(resource string, err error)) *ownerResolver {
	return &ownerResolver{client: client, observe: observe, cache: make(map[types.UID]cachedOwner)}
}

// chain returns the pod's controllers, nearest first. On error it returns
// the part of the chain resolved so far.
func (r *ownerResolver) chain(ctx context.Context, p *corev1.Pod) ([]owner, error) {
	var chain []owner
	var ref *metav1.OwnerReference
	if len(p.OwnerReferences) > 0 {
		ref = &p.OwnerReferences[0] // stripPod keeps only the controller
	}
	for ref != nil && len(chain) < maxOwnerDepth {
		chain = append(chain, owner{Kind: ref.Kind, Name: ref.Name})
		gv, err := schema.ParseGroupVersion(ref.APIVersion)
		if err != nil {
			return chain, nil // not a resource we can look up; the chain ends here
		}
		gvr, ok := lookedUp[schema.GroupKind{Group: gv.Group, Kind: ref.Kind}]
		if !ok {
			break
		}
		parent, err := r.parent(ctx, gvr, p.Namespace, ref)
		if err != nil {
			return chain, err
		}
		ref = parent
	}
	return chain, nil
}

func (r *ownerResolver) parent(ctx context.Context, gvr schema.GroupVersionResource, ns string, ref *metav1.OwnerReference) (*metav1.OwnerReference, error) {
	r.mu.Lock()
	c, ok := r.cache[ref.UID]
	r.mu.Unlock()
	if ok && time.Since(c.fetched) < ownerTTL {
		return c.parent, nil
	}
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	obj, err := r.client.Resource(gvr).Namespace(ns).Get(ctx, ref.Name, metav1.GetOptions{})
	var parent *metav1.OwnerReference
	switch {
	case apierrors.IsNotFound(err):
		// Owner already gone: the chain ends with what the pod says.
		r.observe(gvr.Resource, nil)
	case err != nil:
		err = fmt.Errorf("get %s %s/%s: %w", gvr.Resource, ns, ref.Name, err)
		r.observe(gvr.Resource, err)
		return nil, err
	case obj.UID != ref.UID:
		// Same name, different object: the pod's owner is gone.
		r.observe(gvr.Resource, nil)
	default:
		r.observe(gvr.Resource, nil)
		if ctrl := metav1.GetControllerOfNoCopy(obj); ctrl != nil {
			parent = &metav1.OwnerReference{APIVersion: ctrl.APIVersion, Kind: ctrl.Kind, Name: ctrl.Name, UID: ctrl.UID}
		}
	}
	r.mu.Lock()
	r.cache[ref.UID] = cachedOwner{parent: parent, fetched: time.Now()}
	r.mu.Unlock()
	return parent, nil
}

// expire drops cached owners older than the TTL.
func (r *ownerResolver) expire(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for uid, c := range r.cache {
		if now.Sub(c.fetched) >= ownerTTL {
			delete(r.cache, uid)
		}
	}
}

func (r *ownerResolver) size() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.cache)
}
