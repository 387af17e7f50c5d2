package httpingest

import (
	"net/http"
	"strings"

	"github.com/siemship/siemship/internal/bytesize"
	"github.com/siemship/siemship/internal/secret"
	"github.com/siemship/siemship/internal/sinks/delivery"
	"github.com/siemship/siemship/internal/validate"
)

// maxRequestBytes is the largest batch_bytes accepted: real endpoints
// document no limit, so the limit is the user's to set below this.
const maxRequestBytes = 256 << 20

// Config configures one HTTP ingest sink; the mapstructure tags are its
// keys under sinks.<name>.
type Config struct {
	// URL is the full ingest URL, e.g. the integration's URL in Taegis.
	URL string `mapstructure:"url"`
	// TokenFile holds the integration key (a mounted Secret).
	TokenFile string `mapstructure:"token_file"`
	// AuthHeader and AuthScheme make the header "AuthHeader: AuthScheme
	// <token>"; an empty scheme sends the token alone.
	AuthHeader string `mapstructure:"auth_header"`
	AuthScheme string `mapstructure:"auth_scheme"`
	// Headers are static extra headers on every request.
	Headers map[string]string `mapstructure:"headers"`

	delivery.Config `mapstructure:",squash"`

	// Token is read from TokenFile or the environment (see TokenRef).
	Token secret.Secret `mapstructure:"-"`
	// Version is the agent version sent in the User-Agent.
	Version string `mapstructure:"-"`
}

// DefaultConfig returns the defaults: Bearer authorization, gzip NDJSON,
// the delivery defaults.
func DefaultConfig() Config {
	return Config{AuthHeader: "Authorization", AuthScheme: "Bearer", Config: delivery.DefaultConfig(), Version: "dev"}
}

// TokenRef says where the token of the sink named name is read from.
func (c *Config) TokenRef(name string) secret.Ref {
	return secret.Ref{What: "HTTP ingest token", File: c.TokenFile, FileKey: "sinks." + name + ".token_file",
		Env: secret.EnvName("sinks", name, "token")}
}

// Validate records the problems of c's keys.
func (c *Config) Validate(v *validate.Errors) {
	if v.Required("url", c.URL, "https://ingest.example.com/v1/abc") {
		v.BaseURL("url", c.URL, c.AllowPlainHTTP, "allow_plain_http")
	}
	if c.AuthHeader == "" || strings.ContainsAny(c.AuthHeader, " :\r\n") {
		v.Bad("auth_header", "must be a header name such as Authorization", `"`+c.AuthHeader+`"`)
	}
	for k, val := range c.Headers {
		switch ck := http.CanonicalHeaderKey(k); {
		case strings.ContainsAny(k, " :\r\n") || strings.ContainsAny(val, "\r\n"):
			v.Bad("headers", "must be header names and one-line values", k)
		case ck == http.CanonicalHeaderKey(c.AuthHeader) || ck == "Content-Encoding" || ck == "Content-Length":
			v.Bad("headers", "must not set "+ck+": siemship sets it", k)
		}
	}
	c.Config.Validate(v, bytesize.Size(maxRequestBytes))
}
