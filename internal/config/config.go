// Package config loads siemship's configuration: a YAML file, overridden by
// SIEMSHIP_* environment variables and command-line flags. Unknown keys and
// invalid values are errors that name the key and the expected form.
//
// The ingest token is never part of the file: it comes from a file (a
// mounted Secret) or the environment, so that a ConfigMap or a command line
// never holds it.
package config

import (
	"time"
)

// Config is the whole agent configuration. Field tags are the YAML keys.
type Config struct {
	Log            Log           `mapstructure:"log"`
	StateDir       string        `mapstructure:"state_dir"`
	Listen         string        `mapstructure:"listen"`
	StatusInterval time.Duration `mapstructure:"status_interval"`
	ShutdownGrace  time.Duration `mapstructure:"shutdown_grace"`
	BufferBytes    ByteSize      `mapstructure:"buffer_bytes"`
	MemoryLimit    ByteSize      `mapstructure:"memory_limit"`
	Sources        Sources       `mapstructure:"sources"`
	Kubernetes     Kubernetes    `mapstructure:"kubernetes"`
	Sinks          Sinks         `mapstructure:"sinks"`
}

// Log configures the agent's own logs.
type Log struct {
	Level  string `mapstructure:"level"`
	Format string `mapstructure:"format"`
}

// Sources lists the inputs.
type Sources struct {
	Tetragon Tetragon `mapstructure:"tetragon"`
}

// Tetragon is the export file source.
type Tetragon struct {
	Path               string        `mapstructure:"path"`
	MaxLineBytes       ByteSize      `mapstructure:"max_line_bytes"`
	ReadBufferBytes    ByteSize      `mapstructure:"read_buffer_bytes"`
	PollInterval       time.Duration `mapstructure:"poll_interval"`
	MaxBackups         int           `mapstructure:"max_backups"`
	StartAt            string        `mapstructure:"start_at"`
	CheckpointInterval time.Duration `mapstructure:"checkpoint_interval"`
}

// Kubernetes configures pod metadata enrichment.
type Kubernetes struct {
	Enabled              bool          `mapstructure:"enabled"`
	NodeName             string        `mapstructure:"node_name"`
	Kubeconfig           string        `mapstructure:"kubeconfig"`
	ClusterName          string        `mapstructure:"cluster_name"`
	PodRetention         time.Duration `mapstructure:"pod_retention"`
	WaitForPod           time.Duration `mapstructure:"wait_for_pod"`
	SyncTimeout          time.Duration `mapstructure:"sync_timeout"`
	NamespaceLabels      []string      `mapstructure:"namespace_labels"`
	PodAnnotations       []string      `mapstructure:"pod_annotations"`
	NamespaceAnnotations []string      `mapstructure:"namespace_annotations"`
	NodeLabels           []string      `mapstructure:"node_labels"`
	Groups               K8sGroups     `mapstructure:"groups"`
}

// K8sGroups switches groups of added fields.
type K8sGroups struct {
	Labels         bool `mapstructure:"labels"`
	Annotations    bool `mapstructure:"annotations"`
	ServiceAccount bool `mapstructure:"service_account"`
	Network        bool `mapstructure:"network"`
	Owners         bool `mapstructure:"owners"`
	QoS            bool `mapstructure:"qos"`
	Priority       bool `mapstructure:"priority"`
	Creation       bool `mapstructure:"creation"`
	Node           bool `mapstructure:"node"`
}

// Sinks lists the outputs.
type Sinks struct {
	LogScale LogScale `mapstructure:"logscale"`
}

// LogScale is the Falcon LogScale ingest sink.
type LogScale struct {
	URL              string            `mapstructure:"url"`
	Format           string            `mapstructure:"format"`
	TokenFile        string            `mapstructure:"token_file"`
	BatchEvents      int               `mapstructure:"batch_events"`
	BatchBytes       ByteSize          `mapstructure:"batch_bytes"`
	Linger           time.Duration     `mapstructure:"linger"`
	Concurrency      int               `mapstructure:"concurrency"`
	Timeout          time.Duration     `mapstructure:"timeout"`
	Compression      string            `mapstructure:"compression"`
	CompressionLevel int               `mapstructure:"compression_level"`
	CAFile           string            `mapstructure:"ca_file"`
	TLSServerName    string            `mapstructure:"tls_server_name"`
	DeadLetterFile   string            `mapstructure:"dead_letter_file"`
	RetryInitial     time.Duration     `mapstructure:"retry_initial"`
	RetryMax         time.Duration     `mapstructure:"retry_max"`
	AuthRetry        time.Duration     `mapstructure:"auth_retry"`
	Tags             map[string]string `mapstructure:"tags"`

	// Token is read from TokenFile or SIEMSHIP_LOGSCALE_TOKEN, never from
	// the YAML file or a flag.
	Token string `mapstructure:"-"`
}

// TokenEnv is the environment variable that may hold the ingest token.
const TokenEnv = "SIEMSHIP_LOGSCALE_TOKEN"

// defaults are every key with its default value. They double as the list of
// known keys: a key in the file that is not here is a typo.
var defaults = map[string]any{
	"log.level":       "info",
	"log.format":      "auto",
	"state_dir":       "/var/lib/siemship",
	"listen":          ":9090",
	"status_interval": "30s",
	"shutdown_grace":  "20s",
	"buffer_bytes":    "16MiB",
	"memory_limit":    "40MiB",

	"sources.tetragon.path":                "/var/run/cilium/tetragon/tetragon.log",
	"sources.tetragon.max_line_bytes":      "1MiB",
	"sources.tetragon.read_buffer_bytes":   "256KiB",
	"sources.tetragon.poll_interval":       "250ms",
	"sources.tetragon.max_backups":         5,
	"sources.tetragon.start_at":            "oldest",
	"sources.tetragon.checkpoint_interval": "1s",

	"kubernetes.enabled":               false,
	"kubernetes.node_name":             "",
	"kubernetes.kubeconfig":            "",
	"kubernetes.cluster_name":          "",
	"kubernetes.pod_retention":         "2m",
	"kubernetes.wait_for_pod":          "500ms",
	"kubernetes.sync_timeout":          "10s",
	"kubernetes.namespace_labels":      []string{"*"},
	"kubernetes.pod_annotations":       []string{},
	"kubernetes.namespace_annotations": []string{},
	"kubernetes.node_labels": []string{
		"topology.kubernetes.io/zone", "topology.kubernetes.io/region", "node.kubernetes.io/instance-type",
	},
	"kubernetes.groups.labels":          true,
	"kubernetes.groups.annotations":     true,
	"kubernetes.groups.service_account": true,
	"kubernetes.groups.network":         true,
	"kubernetes.groups.owners":          true,
	"kubernetes.groups.qos":             true,
	"kubernetes.groups.priority":        true,
	"kubernetes.groups.creation":        true,
	"kubernetes.groups.node":            true,

	"sinks.logscale.url":               "",
	"sinks.logscale.format":            "structured",
	"sinks.logscale.token_file":        "",
	"sinks.logscale.batch_events":      5000,
	"sinks.logscale.batch_bytes":       "5MiB",
	"sinks.logscale.linger":            "1s",
	"sinks.logscale.concurrency":       2,
	"sinks.logscale.timeout":           "30s",
	"sinks.logscale.compression":       "gzip",
	"sinks.logscale.compression_level": 1,
	"sinks.logscale.ca_file":           "",
	"sinks.logscale.tls_server_name":   "",
	"sinks.logscale.dead_letter_file":  "",
	"sinks.logscale.retry_initial":     "500ms",
	"sinks.logscale.retry_max":         "30s",
	"sinks.logscale.auth_retry":        "60s",
	"sinks.logscale.tags":              map[string]string{},
}

// freeForm are keys whose value is a map with user-chosen keys.
var freeForm = []string{"sinks.logscale.tags"}
