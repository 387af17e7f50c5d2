package k8smeta

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The strip functions are informer transforms: they run before an object is
// stored, so the cache holds only the fields siemship adds to events and its
// size does not grow with pod specs, managed fields or unlisted annotations.
// They are idempotent, as informer transforms must be.

func (e *Enricher) stripPod(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil // tombstones pass through unchanged
	}
	g := e.cfg.Groups
	out := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:              p.Name,
			Namespace:         p.Namespace,
			UID:               p.UID,
			ResourceVersion:   p.ResourceVersion,
			CreationTimestamp: p.CreationTimestamp,
			DeletionTimestamp: p.DeletionTimestamp,
		},
		Spec: corev1.PodSpec{
			NodeName:           p.Spec.NodeName,
			ServiceAccountName: p.Spec.ServiceAccountName,
			HostNetwork:        p.Spec.HostNetwork,
			PriorityClassName:  p.Spec.PriorityClassName,
			Priority:           p.Spec.Priority,
		},
		Status: corev1.PodStatus{
			HostIP:   p.Status.HostIP,
			PodIPs:   p.Status.PodIPs,
			QOSClass: p.Status.QOSClass,
		},
	}
	if g.Labels {
		out.Labels = p.Labels
	}
	if g.Annotations {
		out.Annotations = allowlist(e.cfg.PodAnnotations).filter(p.Annotations)
	}
	if ref := metav1.GetControllerOfNoCopy(p); ref != nil {
		out.OwnerReferences = []metav1.OwnerReference{{
			APIVersion: ref.APIVersion, Kind: ref.Kind, Name: ref.Name, UID: ref.UID, Controller: ref.Controller,
		}}
	}
	out.Status.ContainerStatuses = stripStatuses(p.Status.InitContainerStatuses, p.Status.ContainerStatuses, p.Status.EphemeralContainerStatuses)
	return out, nil
}

// stripStatuses keeps only container ids, current and previous (a restarted
// container's late events carry the previous id). A stripped pod keeps them
// all in ContainerStatuses, so stripping twice changes nothing.
func stripStatuses(lists ...[]corev1.ContainerStatus) []corev1.ContainerStatus {
	var out []corev1.ContainerStatus
	for _, list := range lists {
		for _, s := range list {
			var kept corev1.ContainerStatus
			kept.ContainerID = s.ContainerID
			if t := s.LastTerminationState.Terminated; t != nil && t.ContainerID != "" {
				kept.LastTerminationState.Terminated = &corev1.ContainerStateTerminated{ContainerID: t.ContainerID}
			}
			if kept.ContainerID != "" || kept.LastTerminationState.Terminated != nil {
				out = append(out, kept)
			}
		}
	}
	return out
}

func (e *Enricher) stripNamespace(obj any) (any, error) {
	ns, ok := obj.(*corev1.Namespace)
	if !ok {
		return obj, nil
	}
	out := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name:            ns.Name,
		UID:             ns.UID,
		ResourceVersion: ns.ResourceVersion,
	}}
	if e.cfg.Groups.Labels {
		out.Labels = allowlist(e.cfg.NamespaceLabels).filter(ns.Labels)
		// Set on every namespace to its own name, which events already carry.
		delete(out.Labels, corev1.LabelMetadataName)
	}
	if e.cfg.Groups.Annotations {
		out.Annotations = allowlist(e.cfg.NamespaceAnnotations).filter(ns.Annotations)
	}
	return out, nil
}

func (e *Enricher) stripNode(obj any) (any, error) {
	n, ok := obj.(*corev1.Node)
	if !ok {
		return obj, nil
	}
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{
		Name:            n.Name,
		UID:             n.UID,
		ResourceVersion: n.ResourceVersion,
		Labels:          allowlist(e.cfg.NodeLabels).filter(n.Labels),
	}}, nil
}

// containerIDs returns the Tetragon-style ids of a stripped pod's containers:
// the runtime prefix ("containerd://", "cri-o://", "docker://") removed and
// cut to the 31 characters Tetragon puts in process.docker.
func containerIDs(p *corev1.Pod) []string {
	var ids []string
	for _, s := range p.Status.ContainerStatuses {
		if id := shortContainerID(s.ContainerID); id != "" {
			ids = append(ids, id)
		}
		if t := s.LastTerminationState.Terminated; t != nil {
			if id := shortContainerID(t.ContainerID); id != "" {
				ids = append(ids, id)
			}
		}
	}
	return ids
}

// dockerIDLen is the length of process.docker in Tetragon events.
const dockerIDLen = 31

func shortContainerID(id string) string {
	for i := 0; i+2 < len(id); i++ {
		if id[i] == ':' && id[i+1] == '/' && id[i+2] == '/' {
			id = id[i+3:]
			break
		}
	}
	if len(id) > dockerIDLen {
		id = id[:dockerIDLen]
	}
	return id
}
