package falconstream

import (
	"fmt"
	"regexp"
	"time"

	"github.com/siemship/siemship/internal/bytesize"
	"github.com/siemship/siemship/internal/falcon"
	"github.com/siemship/siemship/internal/secret"
	"github.com/siemship/siemship/internal/validate"
)

// Config of one Falcon event streams source. Keys are relative to
// sources.<name>.
type Config struct {
	// Cloud is us-1, us-2, eu-1, us-gov-1, us-gov-2 or auto (follow the
	// X-Cs-Region of a us-1 token answer).
	Cloud string `mapstructure:"cloud"`
	// BaseURL overrides Cloud (a proxy, the emulator).
	BaseURL string `mapstructure:"base_url"`
	// AllowPlainHTTP permits an http:// base_url to a host other than loopback.
	AllowPlainHTTP bool `mapstructure:"allow_plain_http"`
	// ClientIDFile and ClientSecretFile hold the API client's credentials
	// (a mounted Secret); without them the SIEMSHIP_SOURCES_<NAME>_CLIENT_ID
	// and _CLIENT_SECRET environment variables are read.
	ClientIDFile     string `mapstructure:"client_id_file"`
	ClientSecretFile string `mapstructure:"client_secret_file"`
	// MemberCID selects a child CID (MSSP); "" for none.
	MemberCID string `mapstructure:"member_cid"`
	// AppID names this consumer to Falcon (1–32 alphanumerics). One appId
	// has one active session: two consumers need two appIds.
	AppID string `mapstructure:"app_id"`
	// FallbackAppID is used after app_id has been in use for app_id_wait
	// (a stale session Falcon has not released); "" waits for app_id.
	// Offsets do not depend on the appId.
	FallbackAppID string        `mapstructure:"fallback_app_id"`
	AppIDWait     time.Duration `mapstructure:"app_id_wait"`
	// EventTypes filters by metadata.eventType; empty streams every type.
	EventTypes []string `mapstructure:"event_types"`
	// StartAt is where a partition without a committed offset starts:
	// oldest (offset 0, the oldest event Falcon retains) or newest (whence=2).
	StartAt string `mapstructure:"start_at"`
	// ReadTimeout ends a stream that sent nothing, not even a keep-alive,
	// for this long; the source then discovers again and reconnects.
	ReadTimeout time.Duration `mapstructure:"read_timeout"`
	// RetryInitial and RetryMax bound the backoff (full jitter) between
	// failed discoveries and reconnects.
	RetryInitial time.Duration `mapstructure:"retry_initial"`
	RetryMax     time.Duration `mapstructure:"retry_max"`
	// MaxBatchEvents and BatchBytes bound a batch; Linger is how long a
	// partly filled batch waits for more events.
	MaxBatchEvents int           `mapstructure:"max_batch_events"`
	BatchBytes     bytesize.Size `mapstructure:"batch_bytes"`
	Linger         time.Duration `mapstructure:"linger"`
	// MaxEventBytes caps one event; a longer one is shipped cut and flagged.
	MaxEventBytes bytesize.Size `mapstructure:"max_event_bytes"`
	// CheckpointInterval is how often acknowledged offsets are persisted.
	CheckpointInterval time.Duration `mapstructure:"checkpoint_interval"`

	// ClientID and ClientSecret are filled from the refs (CredentialRefs)
	// by whoever builds the source.
	ClientID     secret.Secret `mapstructure:"-"`
	ClientSecret secret.Secret `mapstructure:"-"`
}

// Start positions.
const (
	StartOldest = "oldest"
	StartNewest = "newest"
)

// DefaultConfig returns the defaults every key falls back to.
func DefaultConfig() Config {
	return Config{
		Cloud:              falcon.CloudAuto,
		AppID:              "siemship",
		AppIDWait:          5 * time.Minute,
		StartAt:            StartOldest,
		ReadTimeout:        90 * time.Second,
		RetryInitial:       time.Second,
		RetryMax:           time.Minute,
		MaxBatchEvents:     2000,
		BatchBytes:         2 << 20,
		Linger:             200 * time.Millisecond,
		MaxEventBytes:      1 << 20,
		CheckpointInterval: time.Second,
	}
}

// CredentialRefs says where the client id and secret of the source named
// name are read from.
func (c *Config) CredentialRefs(name string) (id, sec secret.Ref) {
	id = secret.Ref{What: "Falcon API client id", File: c.ClientIDFile, FileKey: "sources." + name + ".client_id_file",
		Env: secret.EnvName("sources", name, "client_id")}
	sec = secret.Ref{What: "Falcon API client secret", File: c.ClientSecretFile, FileKey: "sources." + name + ".client_secret_file",
		Env: secret.EnvName("sources", name, "client_secret")}
	return id, sec
}

var appIDPattern = regexp.MustCompile(`^[A-Za-z0-9]{1,32}$`)

// Validate records every problem of c under v's prefix.
func (c *Config) Validate(v *validate.Errors) {
	v.OneOf("cloud", c.Cloud, falcon.CloudNames()...)
	if c.BaseURL != "" {
		v.BaseURL("base_url", c.BaseURL, c.AllowPlainHTTP, "allow_plain_http", "/oauth2", "/sensors/")
	}
	if !appIDPattern.MatchString(c.AppID) {
		v.Bad("app_id", "must be 1–32 letters or digits", fmt.Sprintf("%q", c.AppID))
	}
	if c.FallbackAppID != "" && (!appIDPattern.MatchString(c.FallbackAppID) || c.FallbackAppID == c.AppID) {
		v.Bad("fallback_app_id", "must be \"\" or 1–32 letters or digits other than app_id, e.g. "+c.AppID+"2", fmt.Sprintf("%q", c.FallbackAppID))
	}
	v.Positive("app_id_wait", c.AppIDWait)
	for i, t := range c.EventTypes {
		if !regexp.MustCompile(`^[A-Za-z0-9_]{1,128}$`).MatchString(t) {
			v.Bad(fmt.Sprintf("event_types[%d]", i), "must be an event type such as DetectionSummaryEvent", fmt.Sprintf("%q", t))
		}
	}
	v.OneOf("start_at", c.StartAt, StartOldest, StartNewest)
	if c.ReadTimeout < time.Second {
		v.Bad("read_timeout", "must be at least 1s (keep-alives arrive every few seconds)", c.ReadTimeout)
	}
	v.Positive("retry_initial", c.RetryInitial)
	if c.RetryMax < c.RetryInitial {
		v.Bad("retry_max", "must be at least retry_initial", c.RetryMax)
	}
	v.Between("max_batch_events", int64(c.MaxBatchEvents), 1, 100_000)
	v.Between("batch_bytes", int64(c.BatchBytes), 64<<10, 64<<20)
	v.Between("max_event_bytes", int64(c.MaxEventBytes), 1<<10, 32<<20)
	if c.MaxEventBytes >= c.BatchBytes {
		v.Add("max_event_bytes", fmt.Sprintf("must be smaller than batch_bytes (%s), so that every event fits a batch", c.BatchBytes))
	}
	v.Positive("linger", c.Linger)
	v.Positive("checkpoint_interval", c.CheckpointInterval)
}
