package delivery

import (
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/siemship/siemship/internal/bytesize"
	"github.com/siemship/siemship/internal/spool"
	"github.com/siemship/siemship/internal/validate"
)

// Compressions a sender speaks.
const (
	CompressionGzip = "gzip"
	CompressionNone = "none"
)

// Config is what every HTTP sink shares: batching, concurrency, retries,
// TLS and the dead letter. Sinks embed it with `mapstructure:",squash"`, so
// its keys sit beside the sink's own (sinks.<name>.batch_events).
type Config struct {
	// MaxEvents, MaxBytes (uncompressed body) and Linger (after a request's
	// first event) close a request, whichever comes first.
	MaxEvents int           `mapstructure:"batch_events"`
	MaxBytes  bytesize.Size `mapstructure:"batch_bytes"`
	Linger    time.Duration `mapstructure:"linger"`
	// Concurrency bounds the requests in flight, retries included.
	Concurrency int `mapstructure:"concurrency"`
	// Timeout bounds one HTTP attempt.
	Timeout time.Duration `mapstructure:"timeout"`
	// Compression is CompressionGzip or CompressionNone; CompressionLevel is
	// the gzip level (1 = fastest).
	Compression      string `mapstructure:"compression"`
	CompressionLevel int    `mapstructure:"compression_level"`
	// CAFile is a PEM bundle added to the system roots; TLS is always verified.
	CAFile string `mapstructure:"ca_file"`
	// TLSServerName overrides the name checked in the server certificate.
	TLSServerName string `mapstructure:"tls_server_name"`
	// AllowPlainHTTP permits an http:// URL to a host that is not loopback.
	AllowPlainHTTP bool `mapstructure:"allow_plain_http"`
	// DeadLetterPath is the NDJSON file for events rejected for good; empty:
	// <state_dir>/<sink>-dead-letter.ndjson (set by the agent).
	DeadLetterPath string `mapstructure:"dead_letter_file"`
	// DeadLetterMaxBytes caps the dead-letter file; when it is reached the
	// file is rotated to <path>.1 (replacing an older one), so at most twice
	// this is kept.
	DeadLetterMaxBytes bytesize.Size `mapstructure:"dead_letter_max_bytes"`
	// RetryInitial and RetryMax bound the exponential backoff of retryable
	// failures; AuthRetry is the slow retry period while the server answers
	// with an auth or configuration error.
	RetryInitial time.Duration `mapstructure:"retry_initial"`
	RetryMax     time.Duration `mapstructure:"retry_max"`
	AuthRetry    time.Duration `mapstructure:"auth_retry"`
	// Spool is the optional disk spool in front of the sink
	// (sinks.<name>.spool.*); the agent wraps the sink when it is enabled.
	Spool spool.Config `mapstructure:"spool"`
}

// DefaultConfig returns LogScale's batching guidance, gzip at the fastest
// level and two requests in flight; it suits other HTTP SIEMs too.
func DefaultConfig() Config {
	return Config{
		MaxEvents:          5000,
		MaxBytes:           5 << 20,
		Linger:             time.Second,
		Concurrency:        2,
		Timeout:            30 * time.Second,
		Compression:        CompressionGzip,
		CompressionLevel:   gzip.BestSpeed,
		DeadLetterMaxBytes: 100 << 20,
		RetryInitial:       500 * time.Millisecond,
		RetryMax:           30 * time.Second,
		AuthRetry:          60 * time.Second,
		Spool:              spool.DefaultConfig(),
	}
}

// Validate records the problems of c's keys. maxBody is the largest request
// body the destination takes (its documented limit).
func (c *Config) Validate(v *validate.Errors, maxBody bytesize.Size) {
	v.OneOf("compression", c.Compression, CompressionGzip, CompressionNone)
	v.Between("compression_level", int64(c.CompressionLevel), gzip.BestSpeed, gzip.BestCompression)
	v.Between("batch_events", int64(c.MaxEvents), 1, 100000)
	if c.MaxBytes < 1<<10 || c.MaxBytes > maxBody {
		v.Bad("batch_bytes", "must be between 1KiB and "+maxBody.String()+" (the request limit)", c.MaxBytes)
	}
	v.Between("concurrency", int64(c.Concurrency), 1, 64)
	v.Positive("linger", c.Linger)
	v.Positive("timeout", c.Timeout)
	v.Positive("retry_initial", c.RetryInitial)
	v.Positive("retry_max", c.RetryMax)
	v.Positive("auth_retry", c.AuthRetry)
	if c.RetryMax < c.RetryInitial {
		v.Bad("retry_max", "must not be below retry_initial", c.RetryMax)
	}
	if c.DeadLetterMaxBytes < 64<<10 {
		v.Bad("dead_letter_max_bytes", "must be at least 64KiB", c.DeadLetterMaxBytes)
	}
	if c.CAFile != "" {
		if _, err := readCAFile(c.CAFile); err != nil {
			v.Bad("ca_file", "must be a readable PEM file with a certificate", err)
		}
	}
	c.Spool.Validate(v.Under("spool."))
}
