package logscale

import (
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
)

// Formats and compressions the sink speaks.
const (
	FormatStructured = "structured" // POST /api/v1/ingest/humio-structured
	FormatHEC        = "hec"        // POST /api/v1/ingest/hec

	CompressionGzip = "gzip"
	CompressionNone = "none"
)

// Ingest and status paths, relative to Config.URL.
const (
	pathStructured = "/api/v1/ingest/humio-structured"
	pathHEC        = "/api/v1/ingest/hec"
	pathStatus     = "/api/v1/status"
)

// Config configures one LogScale sink. The config package validates it;
// DefaultConfig gives the defaults.
type Config struct {
	// URL is the ingest base URL, e.g. https://cloud.community.humio.com.
	URL string `mapstructure:"url"`
	// Format is FormatStructured (default) or FormatHEC.
	Format string `mapstructure:"format"`
	// Token is the ingest token. It prints as [redacted] everywhere.
	Token Secret `mapstructure:"token"`
	// MaxEvents, MaxBytes (uncompressed body) and Linger (after a request's
	// first event) close a request, whichever comes first.
	MaxEvents int           `mapstructure:"max_events"`
	MaxBytes  int           `mapstructure:"max_bytes"`
	Linger    time.Duration `mapstructure:"linger"`
	// Concurrency bounds the requests in flight, retries included.
	Concurrency int `mapstructure:"concurrency"`
	// Timeout bounds one HTTP attempt.
	Timeout time.Duration `mapstructure:"timeout"`
	// Compression is CompressionGzip (default) or CompressionNone;
	// CompressionLevel is the gzip level (1 = fastest).
	Compression      string `mapstructure:"compression"`
	CompressionLevel int    `mapstructure:"compression_level"`
	// CAFile is a PEM bundle added to the system roots; TLS is always verified.
	CAFile string `mapstructure:"ca_file"`
	// TLSServerName overrides the name checked in the server certificate.
	TLSServerName string `mapstructure:"tls_server_name"`
	// DeadLetterPath is the NDJSON file for events LogScale rejected for good.
	// Empty: such events are logged, counted and dropped.
	DeadLetterPath string `mapstructure:"dead_letter_path"`
	// RetryInitial and RetryMax bound the exponential backoff of retryable
	// failures; AuthRetry is the slow retry period while the server answers
	// with an auth or configuration error.
	RetryInitial time.Duration `mapstructure:"retry_initial"`
	RetryMax     time.Duration `mapstructure:"retry_max"`
	AuthRetry    time.Duration `mapstructure:"auth_retry"`
	// Tags are extra static tags on every event; keep them few and constant.
	// "source" and "event_type" are reserved.
	Tags map[string]string `mapstructure:"tags"`
	// Version is the agent version sent in the User-Agent; set by main.
	Version string `mapstructure:"-"`
}

// DefaultConfig returns the defaults: LogScale's batching guidance, gzip at
// the fastest level, two requests in flight.
func DefaultConfig() Config {
	return Config{
		Format:           FormatStructured,
		MaxEvents:        5000,
		MaxBytes:         5 << 20,
		Linger:           time.Second,
		Concurrency:      2,
		Timeout:          30 * time.Second,
		Compression:      CompressionGzip,
		CompressionLevel: 1,
		RetryInitial:     500 * time.Millisecond,
		RetryMax:         30 * time.Second,
		AuthRetry:        60 * time.Second,
		Version:          "dev",
	}
}

// ingestPath returns the path events are posted to for the format.
func (c *Config) ingestPath() string {
	if c.Format == FormatHEC {
		return pathHEC
	}
	return pathStructured
}

// Secret is a string that never prints: fmt, slog and JSON all show
// [redacted]. Use Reveal where the value is really needed.
type Secret string

const redacted = "[redacted]"

// Reveal returns the secret value.
func (s Secret) Reveal() string { return string(s) }

// String implements fmt.Stringer.
func (s Secret) String() string { return redacted }

// Format implements fmt.Formatter, so %v, %#v, %q and %x all redact.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redacted) }

// MarshalJSON implements json.Marshaler.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText implements encoding.TextMarshaler (YAML, TOML and friends).
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// withDefaults fills zero fields from DefaultConfig, so that a partly
// filled Config (tests, callers that set only URL and Token) works.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	setIfZero(&c.Format, d.Format)
	setIfZero(&c.MaxEvents, d.MaxEvents)
	setIfZero(&c.MaxBytes, d.MaxBytes)
	setIfZero(&c.Linger, d.Linger)
	setIfZero(&c.Concurrency, d.Concurrency)
	setIfZero(&c.Timeout, d.Timeout)
	setIfZero(&c.Compression, d.Compression)
	setIfZero(&c.CompressionLevel, d.CompressionLevel)
	setIfZero(&c.RetryInitial, d.RetryInitial)
	setIfZero(&c.RetryMax, d.RetryMax)
	setIfZero(&c.AuthRetry, d.AuthRetry)
	setIfZero(&c.Version, d.Version)
	return c
}

func setIfZero[T comparable](p *T, v T) {
	var zero T
	if *p == zero {
		*p = v
	}
}

// check rejects what would make the sink misbehave; the config package
// validates the same with friendlier messages.
func (c *Config) check() (*url.URL, error) {
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("logscale url must be http(s)://host[:port][/prefix]")
	}
	switch {
	case c.Format != FormatStructured && c.Format != FormatHEC:
		return nil, fmt.Errorf("logscale format %q: want %q or %q", c.Format, FormatStructured, FormatHEC)
	case c.Compression != CompressionGzip && c.Compression != CompressionNone:
		return nil, fmt.Errorf("logscale compression %q: want %q or %q", c.Compression, CompressionGzip, CompressionNone)
	case c.CompressionLevel < gzip.BestSpeed || c.CompressionLevel > gzip.BestCompression:
		return nil, fmt.Errorf("logscale compression level %d: want 1 (fastest) to 9", c.CompressionLevel)
	case c.MaxEvents < 1 || c.MaxBytes < 1 || c.Concurrency < 1:
		return nil, fmt.Errorf("logscale max events, max bytes and concurrency must be positive")
	case c.Linger <= 0 || c.Timeout <= 0 || c.RetryInitial <= 0 || c.AuthRetry <= 0 || c.RetryMax < c.RetryInitial:
		return nil, fmt.Errorf("logscale linger, timeout and retry periods must be positive, retry max ≥ retry initial")
	case c.Token == "":
		return nil, fmt.Errorf("logscale token is empty")
	}
	for _, k := range []string{"source", "event_type"} {
		if _, ok := c.Tags[k]; ok {
			return nil, fmt.Errorf("logscale tag %q is reserved: the sink sets it", k)
		}
	}
	u.Path = strings.TrimRight(u.Path, "/")
	return u, nil
}
