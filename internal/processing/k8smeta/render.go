package k8smeta

import (
	"bytes"
	"encoding/json"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Fragments are rendered when the cache changes, not per event: Enrich only
// copies them. Each fragment is one or more complete JSON members
// ("key":value) without surrounding commas. encoding/json is used because it
// runs only on cache updates and escapes keys and values correctly.

// owner is one link of a pod's controller chain.
type owner struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
}

type podDoc struct {
	Namespace      string            `json:"namespace"`
	Name           string            `json:"name"`
	UID            string            `json:"uid"`
	Labels         map[string]string `json:"labels,omitempty"`
	Annotations    map[string]string `json:"annotations,omitempty"`
	ServiceAccount string            `json:"service_account,omitempty"`
	IPs            []string          `json:"ips,omitempty"`
	HostIP         string            `json:"host_ip,omitempty"`
	HostNetwork    bool              `json:"host_network,omitempty"`
	QoSClass       string            `json:"qos_class,omitempty"`
	PriorityClass  string            `json:"priority_class,omitempty"`
	Priority       *int32            `json:"priority,omitempty"`
	Created        string            `json:"created,omitempty"`
}

// renderPod returns the "pod" member plus, when known, "workload" (the top
// of the owner chain) and "owners" (the chain, the pod's controller first).
// withLabels adds the pod's labels, for events that had no pod block of
// their own (matched by container id).
func renderPod(g Groups, p *corev1.Pod, owners []owner, withLabels bool) []byte {
	d := podDoc{Namespace: p.Namespace, Name: p.Name, UID: string(p.UID)}
	if withLabels && g.Labels {
		d.Labels = p.Labels
	}
	if g.Annotations {
		d.Annotations = p.Annotations // already filtered by the allowlist
	}
	if g.ServiceAccount {
		d.ServiceAccount = p.Spec.ServiceAccountName
	}
	if g.Network {
		for _, ip := range p.Status.PodIPs {
			d.IPs = append(d.IPs, ip.IP)
		}
		d.HostIP = p.Status.HostIP
		d.HostNetwork = p.Spec.HostNetwork
	}
	if g.QoS {
		d.QoSClass = string(p.Status.QOSClass)
	}
	if g.Priority {
		d.PriorityClass = p.Spec.PriorityClassName
		if pr := p.Spec.Priority; pr != nil && (*pr != 0 || d.PriorityClass != "") {
			d.Priority = pr // the API server sets 0 on pods without a class
		}
	}
	if g.Creation && !p.CreationTimestamp.IsZero() {
		d.Created = p.CreationTimestamp.UTC().Format(time.RFC3339)
	}
	var b bytes.Buffer
	member(&b, "pod", d)
	if g.Owners && len(owners) > 0 {
		b.WriteByte(',')
		member(&b, "workload", owners[len(owners)-1])
		b.WriteByte(',')
		member(&b, "owners", owners)
	}
	return b.Bytes()
}

type labelsDoc struct {
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// renderNamespace returns the "namespace" member, or nil when there is
// nothing to add (the event already names the namespace).
func renderNamespace(ns *corev1.Namespace) []byte {
	if len(ns.Labels) == 0 && len(ns.Annotations) == 0 {
		return nil
	}
	var b bytes.Buffer
	member(&b, "namespace", labelsDoc{Labels: ns.Labels, Annotations: ns.Annotations})
	return b.Bytes()
}

type nodeDoc struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
}

// renderNode returns the "node" member.
func renderNode(n *corev1.Node) []byte {
	var b bytes.Buffer
	member(&b, "node", nodeDoc{Name: n.Name, Labels: n.Labels})
	return b.Bytes()
}

// renderString returns one "key":"value" member.
func renderString(key, value string) []byte {
	var b bytes.Buffer
	member(&b, key, value)
	return b.Bytes()
}

// member writes "key":<value as JSON>. The values are plain strings, maps of
// strings and structs of those, which cannot fail to encode.
func member(b *bytes.Buffer, key string, v any) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(key)
	b.Truncate(b.Len() - 1) // Encode ends with a newline
	b.WriteByte(':')
	_ = enc.Encode(v)
	b.Truncate(b.Len() - 1)
}
