package logscale

import (
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/siemship/siemship/internal/secret"
	"github.com/siemship/siemship/internal/sinks/delivery"
	"github.com/siemship/siemship/internal/validate"
)

// Formats the sink speaks.
const (
	FormatStructured = "structured" // POST /api/v1/ingest/humio-structured
	FormatHEC        = "hec"        // POST /api/v1/ingest/hec
)

// Ingest and status paths, relative to Config.URL.
const (
	pathStructured = "/api/v1/ingest/humio-structured"
	pathHEC        = "/api/v1/ingest/hec"
	pathStatus     = "/api/v1/status"
)

// maxRequestBytes is LogScale's documented request size limit.
const maxRequestBytes = 32 << 20

// LegacyTokenEnv is the variable that also holds the token of the sink
// named "logscale", as in siemship's first releases.
const LegacyTokenEnv = "SIEMSHIP_LOGSCALE_TOKEN"

// Config configures one LogScale sink; the mapstructure tags are its keys
// under sinks.<name>. DefaultConfig gives the defaults.
type Config struct {
	// URL is the ingest base URL, e.g. https://cloud.community.humio.com.
	URL string `mapstructure:"url"`
	// Format is FormatStructured (default) or FormatHEC.
	Format string `mapstructure:"format"`
	// TokenFile holds the ingest token (a mounted Secret).
	TokenFile string `mapstructure:"token_file"`
	// Tags are extra static tags on every event; keep them few and constant.
	// "source" and "event_type" are reserved.
	Tags map[string]string `mapstructure:"tags"`

	delivery.Config `mapstructure:",squash"`

	// Token is the ingest token, read from TokenFile or the environment
	// (see TokenRef) by whoever builds the sink. It prints as [redacted].
	Token secret.Secret `mapstructure:"-"`
	// Version is the agent version sent in the User-Agent.
	Version string `mapstructure:"-"`
}

// DefaultConfig returns the defaults: LogScale's batching guidance, gzip at
// the fastest level, two requests in flight.
func DefaultConfig() Config {
	return Config{Format: FormatStructured, Config: delivery.DefaultConfig(), Version: "dev"}
}

// TokenRef says where the token of the sink named name is read from.
func (c *Config) TokenRef(name string) secret.Ref {
	env := secret.EnvName("sinks", name, "token")
	if name == "logscale" && strings.TrimSpace(os.Getenv(env)) == "" {
		env = LegacyTokenEnv
	}
	return secret.Ref{What: "LogScale ingest token", File: c.TokenFile, FileKey: "sinks." + name + ".token_file", Env: env}
}

// Validate records the problems of c's keys.
func (c *Config) Validate(v *validate.Errors) {
	if v.Required("url", c.URL, "https://cloud.community.humio.com") {
		v.BaseURL("url", c.URL, c.AllowPlainHTTP, "allow_plain_http", "/api/")
	}
	v.OneOf("format", c.Format, FormatStructured, FormatHEC)
	c.Config.Validate(v, maxRequestBytes)
	for k := range c.Tags {
		if k == "source" || k == "event_type" {
			v.Bad("tags", "must not redefine the tags source and event_type that siemship sets", k)
		}
	}
}

// ingestPath returns the path events are posted to for the format.
func (c *Config) ingestPath() string {
	if c.Format == FormatHEC {
		return pathHEC
	}
	return pathStructured
}

// baseURL checks the parts the sink cannot work without; Validate says the
// same with key names.
func (c *Config) baseURL() (string, error) {
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("logscale url must be http(s)://host[:port][/prefix]")
	}
	switch {
	case c.Format != FormatStructured && c.Format != FormatHEC:
		return "", fmt.Errorf("logscale format %q: want %q or %q", c.Format, FormatStructured, FormatHEC)
	case c.Token == "":
		return "", fmt.Errorf("logscale token is empty")
	}
	for _, k := range []string{"source", "event_type"} {
		if _, ok := c.Tags[k]; ok {
			return "", fmt.Errorf("logscale tag %q is reserved: the sink sets it", k)
		}
	}
	u.Path = strings.TrimRight(u.Path, "/")
	return u.String(), nil
}
