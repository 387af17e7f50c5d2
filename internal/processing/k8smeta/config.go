// Package k8smeta adds Kubernetes metadata that Tetragon events lack (owner
// chain, namespace labels, service account, IPs, QoS, node labels, ...) to
// each event, under one top-level key "k8s" spliced into the event's bytes.
//
// The metadata comes from informers on this node's pods, on namespaces and
// on the agent's own Node, stripped to the fields used, plus metadata-only
// lookups of owners (ReplicaSet → Deployment, Job → CronJob). Enrich never
// calls the API server: it reads the cache, and waits for a pod it does not
// know yet at most Config.WaitForPod per batch.
//
// The member added, as the last of the event's top-level object:
//
//	"k8s":{"cluster":"prod-eu",
//	  "node":{"name":"node-1","labels":{"topology.kubernetes.io/zone":"eu-west-1a",…}},
//	  "match":"uid",                      // or "name", "container", "host"
//	  "pod":{"namespace":"shop","name":"web-5d8f7c9b4-x2k9p","uid":"…",
//	    "labels":{…},                     // only when matched by container id
//	    "annotations":{…},"service_account":"web","ips":["10.244.1.7"],
//	    "host_ip":"192.168.10.4","host_network":true,"qos_class":"Burstable",
//	    "priority_class":"high","priority":1000,"created":"2026-03-06T21:52:41Z"},
//	  "workload":{"kind":"Deployment","name":"web"},
//	  "owners":[{"kind":"ReplicaSet","name":"web-5d8f7c9b4"},{"kind":"Deployment","name":"web"}],
//	  "namespace":{"labels":{…},"annotations":{…}},
//	  "parent":{"match":"uid","pod":{…},"workload":{…},"owners":[…],"namespace":{…}}}
//
// "parent" appears only when the parent process is in another pod. An
// event of a pod that is not in the cache carries "miss":"not_found" (not
// there after waiting) or "miss":"unavailable" (caches not synced, or the
// API server failing) instead of the pod members.
package k8smeta

import (
	"errors"

	"fmt"
	"os"
	"time"

	"github.com/siemship/siemship/internal/validate"
)

// Config selects what the enricher adds and where it gets it from.
type Config struct {
	Enabled bool `mapstructure:"enabled"`
	// NodeName scopes the pod informer; empty means the NODE_NAME variable
	// (set from the downward API).
	NodeName string `mapstructure:"node_name"`
	// Kubeconfig is a kubeconfig file path; empty means in-cluster config.
	Kubeconfig string `mapstructure:"kubeconfig"`
	// ClusterName is added as k8s.cluster when not empty.
	ClusterName string `mapstructure:"cluster_name"`
	// PodRetention is how long a deleted pod's metadata stays usable for
	// late events (Tetragon's event cache retries for up to ~30 s).
	PodRetention time.Duration `mapstructure:"pod_retention"`
	// WaitForPod bounds, per batch, how long Enrich waits for pods that are
	// not in the cache yet. Zero means do not wait.
	WaitForPod time.Duration `mapstructure:"wait_for_pod"`
	// SyncTimeout is how long processing waits at start for the first cache
	// sync, so that start-up events are enriched.
	SyncTimeout time.Duration `mapstructure:"sync_timeout"`

	// Allowlists of keys. An entry matches a key exactly, or, when it ends in
	// "*", every key with that prefix ("*" alone matches every key).
	NamespaceLabels      []string `mapstructure:"namespace_labels"`
	PodAnnotations       []string `mapstructure:"pod_annotations"`
	NamespaceAnnotations []string `mapstructure:"namespace_annotations"`
	NodeLabels           []string `mapstructure:"node_labels"`

	Groups Groups `mapstructure:"groups"`
}

// Groups switches groups of added fields on or off. The pod's namespace,
// name and uid are always added when an event matched a pod.
type Groups struct {
	Labels         bool `mapstructure:"labels"`      // namespace labels; pod labels when the event had no pod block
	Annotations    bool `mapstructure:"annotations"` // allowlisted pod and namespace annotations
	ServiceAccount bool `mapstructure:"service_account"`
	Network        bool `mapstructure:"network"` // pod IPs, host IP, hostNetwork
	Owners         bool `mapstructure:"owners"`  // owner chain and top-level workload
	QoS            bool `mapstructure:"qos"`
	Priority       bool `mapstructure:"priority"` // priority class name and value
	Creation       bool `mapstructure:"creation"` // pod creation time
	Node           bool `mapstructure:"node"`     // node name and allowlisted node labels
}

// DefaultConfig returns the defaults: every group on, all namespace labels,
// no annotations, the well-known zone/region/instance-type node labels.
func DefaultConfig() Config {
	return Config{
		Enabled:         true,
		PodRetention:    2 * time.Minute,
		WaitForPod:      500 * time.Millisecond,
		SyncTimeout:     10 * time.Second,
		NamespaceLabels: []string{"*"},
		NodeLabels: []string{
			"topology.kubernetes.io/zone",
			"topology.kubernetes.io/region",
			"node.kubernetes.io/instance-type",
		},
		Groups: Groups{
			Labels: true, Annotations: true, ServiceAccount: true, Network: true,
			Owners: true, QoS: true, Priority: true, Creation: true, Node: true,
		},
	}
}

// nodeName resolves the node name from the config or NODE_NAME.
func (c Config) nodeName() string {
	if c.NodeName != "" {
		return c.NodeName
	}
	return os.Getenv("NODE_NAME")
}

// Validate records the problems of c's keys (only when enabled: the
// defaults of a switched-off enricher are never used).
func (c *Config) Validate(v *validate.Errors) {
	if !c.Enabled {
		return
	}
	v.Positive("pod_retention", c.PodRetention)
	v.Positive("sync_timeout", c.SyncTimeout)
	if c.WaitForPod < 0 {
		v.Bad("wait_for_pod", "must not be negative", c.WaitForPod)
	}
	if c.nodeName() == "" {
		v.Bad("node_name", "must be set, or NODE_NAME (from the downward API) when kubernetes.enabled is true", `""`)
	}
	if c.Kubeconfig != "" {
		if _, err := os.Stat(c.Kubeconfig); err != nil {
			v.Bad("kubeconfig", "must be a readable kubeconfig file (empty: the in-cluster service account)", err)
		}
	}
}

func (c Config) validate() error {
	if c.nodeName() == "" {
		return errors.New("kubernetes metadata: node name not set (config or NODE_NAME)")
	}
	if c.PodRetention <= 0 {
		return fmt.Errorf("kubernetes metadata: pod retention %v must be positive", c.PodRetention)
	}
	if c.WaitForPod < 0 {
		return fmt.Errorf("kubernetes metadata: wait for pod %v must not be negative", c.WaitForPod)
	}
	return nil
}

// allowlist matches keys against exact names and "prefix*" patterns.
type allowlist []string

func (a allowlist) allows(key string) bool {
	for _, p := range a {
		if n := len(p); n > 0 && p[n-1] == '*' {
			if len(key) >= n-1 && key[:n-1] == p[:n-1] {
				return true
			}
		} else if p == key {
			return true
		}
	}
	return false
}

// filter returns the allowed entries of m, or nil when none is allowed.
func (a allowlist) filter(m map[string]string) map[string]string {
	var out map[string]string
	for k, v := range m {
		if a.allows(k) {
			if out == nil {
				out = make(map[string]string)
			}
			out[k] = v
		}
	}
	return out
}
