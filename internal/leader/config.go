// Package leader runs sources that must have one active instance (the
// Falcon sources: one appId holds one stream session, and two pollers
// would ship every API record twice) in a leader-elected
// Deployment: client-go leader election on a Lease decides which replica
// runs them, and a ConfigMap written only by the leader, each update
// conditional on the resourceVersion it last saw, keeps their checkpoints
// where a replacement pod on any node finds them.
package leader

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/siemship/siemship/internal/validate"
)

// Config is the top-level leader_election block. One Lease per process: every
// leader-only source of the process runs while it leads, and all of them stop
// together when it stops leading.
type Config struct {
	// Enabled makes the leader-only sources (falcon_stream, falcon_api) run
	// only while this process holds the Lease, with their checkpoints in
	// OffsetsConfigMap.
	Enabled bool `mapstructure:"enabled"`
	// LeaseName is the coordination.k8s.io Lease the replicas compete for.
	LeaseName string `mapstructure:"lease_name"`
	// OffsetsConfigMap holds the checkpoints of the leader-only sources, one
	// data key per source name.
	OffsetsConfigMap string `mapstructure:"offsets_configmap"`
	// Namespace of the Lease and the ConfigMap; empty: the pod's namespace
	// (POD_NAMESPACE, else the service account's namespace file).
	Namespace string `mapstructure:"namespace"`
	// Identity names this replica in the Lease; empty: the host name plus a
	// random suffix, so a restarted container never mistakes its
	// predecessor's lease for its own.
	Identity string `mapstructure:"identity"`
	// Kubeconfig is a kubeconfig file; empty: the in-cluster service account.
	Kubeconfig string `mapstructure:"kubeconfig"`
	// LeaseDuration is how long a standby waits after the last renewal it
	// saw before it takes the Lease; RenewDeadline how long the leader
	// retries a renewal before it stops leading; RetryPeriod the pause
	// between attempts (client-go's meanings).
	LeaseDuration time.Duration `mapstructure:"lease_duration"`
	RenewDeadline time.Duration `mapstructure:"renew_deadline"`
	RetryPeriod   time.Duration `mapstructure:"retry_period"`
}

// DefaultConfig returns client-go's customary durations (15s/10s/2s).
func DefaultConfig() Config {
	return Config{
		LeaseName:        "siemship-falcon",
		OffsetsConfigMap: "siemship-falcon-offsets",
		LeaseDuration:    15 * time.Second,
		RenewDeadline:    10 * time.Second,
		RetryPeriod:      2 * time.Second,
	}
}

// jitterFactor is client-go's leaderelection.JitterFactor.
const jitterFactor = 1.2

// Validate records the problems of c under v's prefix (only when enabled).
func (c *Config) Validate(v *validate.Errors) {
	if !c.Enabled {
		return
	}
	if !dnsName(c.LeaseName) {
		v.Bad("lease_name", "must be a DNS subdomain name (lower case, digits, - and .)", fmt.Sprintf("%q", c.LeaseName))
	}
	if !dnsName(c.OffsetsConfigMap) {
		v.Bad("offsets_configmap", "must be a DNS subdomain name (lower case, digits, - and .)", fmt.Sprintf("%q", c.OffsetsConfigMap))
	}
	if c.Namespace != "" && !dnsName(c.Namespace) {
		v.Bad("namespace", "must be a namespace name or empty (the pod's namespace)", fmt.Sprintf("%q", c.Namespace))
	}
	if c.Kubeconfig != "" {
		if _, err := os.Stat(c.Kubeconfig); err != nil {
			v.Bad("kubeconfig", "must be a readable kubeconfig file (empty: the in-cluster service account)", err)
		}
	}
	v.Positive("retry_period", c.RetryPeriod)
	if float64(c.RenewDeadline) <= jitterFactor*float64(c.RetryPeriod) {
		v.Bad("renew_deadline", fmt.Sprintf("must be more than %.1f × retry_period (%s)", jitterFactor, c.RetryPeriod), c.RenewDeadline)
	}
	if c.LeaseDuration <= c.RenewDeadline {
		v.Bad("lease_duration", fmt.Sprintf("must be more than renew_deadline (%s): the difference is the time a lost leader has to stop before a standby takes over", c.RenewDeadline), c.LeaseDuration)
	}
}

func dnsName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return false
		}
	}
	return !strings.HasPrefix(s, "-") && !strings.HasSuffix(s, "-")
}

const namespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// namespace resolves an empty Namespace to the pod's.
func (c *Config) namespace() (string, error) {
	if c.Namespace != "" {
		return c.Namespace, nil
	}
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns, nil
	}
	b, err := os.ReadFile(namespaceFile)
	if err != nil {
		return "", fmt.Errorf("leader_election.namespace is empty and the pod's namespace is unknown (no POD_NAMESPACE, %w)", err)
	}
	return strings.TrimSpace(string(b)), nil
}
