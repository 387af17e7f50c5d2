package falconapi

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/siemship/siemship/internal/falcon"
	"github.com/siemship/siemship/internal/secret"
	"github.com/siemship/siemship/internal/validate"
)

// Config of one falcon_api source. Keys are relative to sources.<name>.
type Config struct {
	// Cloud is a Falcon cloud (us-1, us-2, eu-1, us-gov-1, us-gov-2) or auto.
	Cloud string `mapstructure:"cloud"`
	// BaseURL overrides Cloud (a proxy, the emulator).
	BaseURL string `mapstructure:"base_url"`
	// AllowPlainHTTP permits an http:// base_url to a host other than loopback.
	AllowPlainHTTP bool `mapstructure:"allow_plain_http"`
	// ClientIDFile and ClientSecretFile hold the API client's credentials
	// (a mounted Secret); without them the environment variables
	// SIEMSHIP_SOURCES_<NAME>_CLIENT_ID and _CLIENT_SECRET are read.
	ClientIDFile     string `mapstructure:"client_id_file"`
	ClientSecretFile string `mapstructure:"client_secret_file"`
	// MemberCID selects a child CID of an MSSP parent.
	MemberCID string `mapstructure:"member_cid"`
	// Resources to poll.
	Resources []string `mapstructure:"resources"`
	// Interval is each resource's poll period.
	Interval time.Duration `mapstructure:"interval"`
	// StartFrom is where a resource without a checkpoint starts: a duration
	// back from now ("24h") or an RFC 3339 time.
	StartFrom string `mapstructure:"start_from"`
	// Filter maps a resource to extra FQL ANDed to its incremental filter.
	Filter map[string]string `mapstructure:"filter"`
	// MaxBatchEvents is how many records one details call fetches (one
	// batch), at most the endpoint's own limit: real host and alert
	// records are several KiB, and 5,000 of them would be one answer of
	// tens of MiB held in memory until delivered.
	MaxBatchEvents int `mapstructure:"max_batch_events"`

	// Filled in by whoever builds the source (see ClientIDRef).
	ClientID     secret.Secret `mapstructure:"-"`
	ClientSecret secret.Secret `mapstructure:"-"`
	// Budget is the agent's buffer_bytes, of BudgetBytes in all: a batch
	// holds its answer's size from it until every sink delivered it.
	Budget      *semaphore.Weighted `mapstructure:"-"`
	BudgetBytes int64               `mapstructure:"-"`
}

// DefaultConfig returns the defaults. The deprecated incidents and
// behaviors resources are opt-in.
func DefaultConfig() Config {
	return Config{
		Cloud:     falcon.CloudAuto,
		Resources: []string{"hosts", "alerts", "vulnerabilities", "filevantage"},
		Interval:  60 * time.Second,
		StartFrom: "24h",
		// 500 host or alert records of ~5 KiB: one answer of ~2.5 MiB.
		MaxBatchEvents: 500,
	}
}

// ClientIDRef says where the client id of the source named name is read.
func (c *Config) ClientIDRef(name string) secret.Ref {
	return secret.Ref{What: "Falcon API client id", File: c.ClientIDFile, FileKey: "sources." + name + ".client_id_file",
		Env: secret.EnvName("sources", name, "client_id")}
}

// ClientSecretRef says where the client secret is read.
func (c *Config) ClientSecretRef(name string) secret.Ref {
	return secret.Ref{What: "Falcon API client secret", File: c.ClientSecretFile, FileKey: "sources." + name + ".client_secret_file",
		Env: secret.EnvName("sources", name, "client_secret")}
}

// Validate records the problems of c's keys.
func (c *Config) Validate(v *validate.Errors) {
	if c.BaseURL != "" {
		v.BaseURL("base_url", c.BaseURL, c.AllowPlainHTTP, "allow_plain_http", "/oauth2", "/devices/", "/alerts/", "/spotlight/", "/filevantage/", "/incidents/")
	} else {
		v.OneOf("cloud", c.Cloud, falcon.CloudNames()...)
	}
	if len(c.Resources) == 0 {
		v.Add("resources", "must list at least one of "+strings.Join(ResourceNames(), ", "))
	}
	for i, r := range c.Resources {
		if _, ok := specOf(r); !ok {
			v.Bad("resources", "must list only "+strings.Join(ResourceNames(), ", "), fmt.Sprintf("%q", r))
		} else if slices.Index(c.Resources, r) != i {
			v.Bad("resources", "must list each resource once", fmt.Sprintf("%q twice", r))
		}
	}
	v.Positive("interval", c.Interval)
	v.Between("max_batch_events", int64(c.MaxBatchEvents), 1, 10_000)
	if _, err := c.start(time.Now()); err != nil {
		v.Bad("start_from", "must be a duration back from now (24h) or an RFC 3339 time (2025-06-01T00:00:00Z)", fmt.Sprintf("%q", c.StartFrom))
	}
	for r, f := range c.Filter {
		if _, ok := specOf(r); !ok {
			v.Bad("filter", "must map resources ("+strings.Join(ResourceNames(), ", ")+") to FQL", fmt.Sprintf("%q", r))
		}
		if strings.TrimSpace(f) != f || f == "" {
			v.Bad("filter."+r, "must be FQL without surrounding white space, e.g. status:'new'", fmt.Sprintf("%q", f))
		}
	}
}

// start returns the time a resource without checkpoint starts from.
func (c *Config) start(now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(c.StartFrom); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Parse(time.RFC3339Nano, c.StartFrom)
}
