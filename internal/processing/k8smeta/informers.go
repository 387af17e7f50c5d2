package k8smeta

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// informers builds the pod (this node only), namespace and own-Node
// informers, with transforms that strip objects and handlers that update
// the store.
func (e *Enricher) informers(queue workqueue.TypedRateLimitingInterface[string]) ([]cache.SharedIndexInformer, error) {
	nodeSelector := fields.OneTermEqualSelector("spec.nodeName", e.node).String()
	pods := e.informer("pods", &corev1.Pod{}, e.stripPod,
		func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = nodeSelector
			return e.client.CoreV1().Pods("").List(ctx, o)
		},
		func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = nodeSelector
			return e.client.CoreV1().Pods("").Watch(ctx, o)
		})
	podHandler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { e.podChanged(obj, queue) },
		UpdateFunc: func(_, obj any) { e.podChanged(obj, queue) },
		DeleteFunc: func(obj any) {
			if p, ok := unwrap(obj).(*corev1.Pod); ok {
				e.store.deletePod(string(p.UID), time.Now())
			}
		},
	}
	namespaces := e.informer("namespaces", &corev1.Namespace{}, e.stripNamespace,
		func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return e.client.CoreV1().Namespaces().List(ctx, o)
		},
		func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return e.client.CoreV1().Namespaces().Watch(ctx, o)
		})
	nsHandler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { e.namespaceChanged(obj) },
		UpdateFunc: func(_, obj any) { e.namespaceChanged(obj) },
		DeleteFunc: func(obj any) {
			if ns, ok := unwrap(obj).(*corev1.Namespace); ok {
				e.store.deleteNamespace(ns.Name, time.Now())
			}
		},
	}
	if _, err := pods.AddEventHandler(podHandler); err != nil {
		return nil, fmt.Errorf("pod informer: %w", err)
	}
	if _, err := namespaces.AddEventHandler(nsHandler); err != nil {
		return nil, fmt.Errorf("namespace informer: %w", err)
	}
	infs := []cache.SharedIndexInformer{pods, namespaces}
	if !e.cfg.Groups.Node {
		return infs, nil
	}
	nameSelector := fields.OneTermEqualSelector("metadata.name", e.node).String()
	node := e.informer("nodes", &corev1.Node{}, e.stripNode,
		func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = nameSelector
			return e.client.CoreV1().Nodes().List(ctx, o)
		},
		func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = nameSelector
			return e.client.CoreV1().Nodes().Watch(ctx, o)
		})
	nodeHandler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { e.nodeChanged(obj) },
		UpdateFunc: func(_, obj any) { e.nodeChanged(obj) },
	}
	if _, err := node.AddEventHandler(nodeHandler); err != nil {
		return nil, fmt.Errorf("node informer: %w", err)
	}
	return append(infs, node), nil
}

// informer wraps list and watch so that every call's outcome reaches the
// health tracker: a failure marks enrichment unavailable, the next success
// (client-go retries with backoff) marks it available again.
func (e *Enricher) informer(resource string, example runtime.Object, strip cache.TransformFunc,
	list cache.ListWithContextFunc, watchFn cache.WatchFuncWithContext) cache.SharedIndexInformer {
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			obj, err := list(ctx, o)
			e.health.observe(resource, "list", wrapCall("list", resource, err))
			return obj, err
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			w, err := watchFn(ctx, o)
			e.health.observe(resource, "watch", wrapCall("watch", resource, err))
			return w, err
		},
	}
	inf := cache.NewSharedIndexInformerWithOptions(lw, example, cache.SharedIndexInformerOptions{ObjectDescription: resource})
	// Cannot fail: the informer has not started.
	_ = inf.SetTransform(strip)
	return inf
}

func wrapCall(verb, resource string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s %s: %w", verb, resource, err)
}

func (e *Enricher) podChanged(obj any, queue workqueue.TypedRateLimitingInterface[string]) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	if e.store.putPod(p) {
		queue.Add(string(p.UID))
	}
}

func (e *Enricher) namespaceChanged(obj any) {
	if ns, ok := obj.(*corev1.Namespace); ok {
		e.store.putNamespace(ns)
	}
}

func (e *Enricher) nodeChanged(obj any) {
	if n, ok := obj.(*corev1.Node); ok {
		e.store.setNode(renderNode(n))
	}
}

// unwrap returns the last known object of a deletion tombstone.
func unwrap(obj any) any {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		return t.Obj
	}
	return obj
}
