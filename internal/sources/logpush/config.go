package logpush

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/siemship/siemship/internal/bytesize"
	"github.com/siemship/siemship/internal/validate"
)

// Config of one Logpush receiver. Keys are relative to sources.<name>.
type Config struct {
	// Listen is the address to serve on, e.g. ":8443".
	Listen string `mapstructure:"listen"`
	// TLSCertFile and TLSKeyFile are the serving pair (PEM), re-read when
	// they change so a renewed certificate needs no restart.
	TLSCertFile string `mapstructure:"tls_cert_file"`
	TLSKeyFile  string `mapstructure:"tls_key_file"`
	// AllowPlainHTTP permits serving without TLS, for a proxy or Ingress that
	// terminates it; without it a missing TLS pair is a configuration error.
	AllowPlainHTTP bool `mapstructure:"allow_plain_http"`
	// AuthHeader is the request header carrying the shared secret (the
	// header_<Name>= parameter of the job's destination_conf).
	AuthHeader string `mapstructure:"auth_header"`
	// SecretFile holds the accepted header values, one per line, so a new
	// secret can be added before the old one is removed. A line matches the
	// whole header value or the token after "Bearer ". Re-read on change.
	SecretFile string `mapstructure:"secret_file"`
	// MaxBodyBytes caps a request's decompressed size; a bigger body is
	// answered 413 and nothing of it is emitted.
	MaxBodyBytes bytesize.Size `mapstructure:"max_body_bytes"`
	// MaxRecordBytes caps one record; longer ones are shipped truncated and
	// flagged rather than rejected (a rejection would be retried forever).
	MaxRecordBytes bytesize.Size `mapstructure:"max_record_bytes"`
	// BatchBytes is the size of the buffers records are decoded into, and so
	// of the largest batch emitted; each is granted from the memory budget.
	BatchBytes bytesize.Size `mapstructure:"batch_bytes"`
	// ResponseTimeout bounds a request from arrival to answer: records not
	// all delivered by then get 503 + Retry-After (Logpush pushes again).
	ResponseTimeout time.Duration `mapstructure:"response_timeout"`
	// RetryAfter is what 429 and 503 answers ask Logpush to wait.
	RetryAfter time.Duration `mapstructure:"retry_after"`
	// ShutdownGrace is how long requests in flight may still finish after
	// the source is told to stop; then they are answered 503.
	ShutdownGrace time.Duration `mapstructure:"shutdown_grace"`
	// Dataset names the records' dataset (the event type); "" takes it from
	// the tags=dataset:<x> query parameter, else the URL path's last element.
	Dataset string `mapstructure:"dataset"`
	// TimeField names the record field holding the event time; "" uses the
	// dataset's known field, then a list of common ones.
	TimeField string `mapstructure:"time_field"`
}

// DefaultConfig returns the defaults every key falls back to.
func DefaultConfig() Config {
	return Config{
		Listen:          ":8443",
		AuthHeader:      "Authorization",
		MaxBodyBytes:    256 << 20,
		MaxRecordBytes:  1 << 20,
		BatchBytes:      2 << 20,
		ResponseTimeout: 60 * time.Second,
		RetryAfter:      30 * time.Second,
		// Under Kubernetes' default 30 s termination grace period, so the
		// answers still go out before the kubelet kills the pod.
		ShutdownGrace: 25 * time.Second,
	}
}

// Validate records every problem of c under v's prefix.
func (c *Config) Validate(v *validate.Errors) {
	if v.Required("listen", c.Listen, `":8443"`) {
		if _, port, err := net.SplitHostPort(c.Listen); err != nil {
			v.Bad("listen", "must be host:port or :port", fmt.Sprintf("%q", c.Listen))
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			v.Bad("listen", "must have a numeric port", fmt.Sprintf("%q", c.Listen))
		}
	}
	switch {
	case (c.TLSCertFile == "") != (c.TLSKeyFile == ""):
		v.Add("tls_cert_file", "tls_cert_file and tls_key_file must be set together")
	case c.TLSCertFile == "" && !c.AllowPlainHTTP:
		v.Add("tls_cert_file", "must be set (with tls_key_file): Logpush sends the shared secret with every request; "+
			"set allow_plain_http: true only when a proxy in front terminates TLS")
	}
	if v.Required("auth_header", c.AuthHeader, "Authorization") && !validHeaderName(c.AuthHeader) {
		v.Bad("auth_header", "must be an HTTP header name", fmt.Sprintf("%q", c.AuthHeader))
	}
	v.Required("secret_file", c.SecretFile, "/etc/siemship/logpush/secret")
	v.Between("max_body_bytes", int64(c.MaxBodyBytes), 64<<10, 8<<30)
	v.Between("batch_bytes", int64(c.BatchBytes), 64<<10, 256<<20)
	v.Between("max_record_bytes", int64(c.MaxRecordBytes), 1<<10, 128<<20)
	if c.MaxRecordBytes >= c.BatchBytes {
		v.Add("max_record_bytes", fmt.Sprintf("must be smaller than batch_bytes (%s), so that every record fits a batch", c.BatchBytes))
	}
	v.Positive("response_timeout", c.ResponseTimeout)
	if c.RetryAfter < time.Second {
		v.Bad("retry_after", "must be at least 1s (Retry-After counts whole seconds)", c.RetryAfter)
	}
	v.Positive("shutdown_grace", c.ShutdownGrace)
	if c.Dataset != "" && !isIdentifier(c.Dataset) {
		v.Bad("dataset", "must be a dataset name such as http_requests (a-z, 0-9, _)", fmt.Sprintf("%q", c.Dataset))
	}
}

// tls reports whether the source serves HTTPS.
func (c *Config) tls() bool { return c.TLSCertFile != "" }

func validHeaderName(s string) bool {
	for _, r := range s {
		if r > 127 || !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return s != ""
}

// isIdentifier says whether s can be an event type: it becomes a SIEM tag
// and a metric label, so its alphabet and length are bounded.
func isIdentifier(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}
