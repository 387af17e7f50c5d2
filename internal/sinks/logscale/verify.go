package logscale

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/klauspost/compress/gzip"

	"github.com/siemship/siemship/internal/sinks/delivery"
)

// VerifyKind says which check of Verify failed.
type VerifyKind int

const (
	// Unreachable: the status endpoint gave no answer.
	Unreachable VerifyKind = iota + 1
	// NotLogScale: the status endpoint answered, but not with a 2xx: the
	// server is there, the URL is wrong.
	NotLogScale
	// TokenUnknown: the ingest endpoint answered 401.
	TokenUnknown
	// TokenBlocked: the ingest endpoint answered 403.
	TokenBlocked
	// Unverified: the ingest endpoint answered something else than 2xx,
	// 401 or 403; the token may still be fine.
	Unverified
)

// VerifyError is what Verify returns; its message is plain words for an
// operator and never contains the token.
type VerifyError struct {
	Kind   VerifyKind
	URL    string // the URL checked, without credentials
	Status int    // HTTP status, 0 when there was no answer
	Err    error  // the transport error, when there was no answer
}

func (e *VerifyError) Error() string {
	switch e.Kind {
	case Unreachable:
		return fmt.Sprintf("LogScale is unreachable at %s: %v", e.URL, e.Err)
	case NotLogScale:
		return fmt.Sprintf("%s answered %d %s: is this a LogScale URL?", e.URL, e.Status, http.StatusText(e.Status))
	case TokenUnknown:
		return "the ingest token was rejected: LogScale does not know it (401)"
	case TokenBlocked:
		return "the ingest token was rejected: it is blocked (403)"
	}
	return fmt.Sprintf("could not verify the token without sending data (status %d)", e.Status)
}

func (e *VerifyError) Unwrap() error { return e.Err }

func verify(ctx context.Context, client *http.Client, cfg *Config, statusURL, ingestURL, userAgent string) error {
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, statusURL, nil)
	if err != nil {
		return fmt.Errorf("build status request: %w", err)
	}
	req.Header.Set("User-Agent", userAgent)
	status, err := roundTrip(client, req)
	switch {
	case err != nil:
		return &VerifyError{Kind: Unreachable, URL: redactURL(statusURL), Err: err}
	case status/100 != 2:
		return &VerifyError{Kind: NotLogScale, URL: redactURL(statusURL), Status: status}
	}

	body, err := emptyBatch(cfg)
	if err != nil {
		return err
	}
	req, err = http.NewRequestWithContext(ctx, http.MethodPost, ingestURL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build ingest request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if cfg.Compression == delivery.CompressionGzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	req.Header.Set("Authorization", "Bearer "+cfg.Token.Reveal())
	req.Header.Set("User-Agent", userAgent)
	status, err = roundTrip(client, req)
	switch {
	case err != nil:
		return &VerifyError{Kind: Unreachable, URL: redactURL(ingestURL), Err: err}
	case status/100 == 2:
		return nil
	case status == http.StatusUnauthorized:
		return &VerifyError{Kind: TokenUnknown, URL: redactURL(ingestURL), Status: status}
	case status == http.StatusForbidden:
		return &VerifyError{Kind: TokenBlocked, URL: redactURL(ingestURL), Status: status}
	}
	return &VerifyError{Kind: Unverified, URL: redactURL(ingestURL), Status: status}
}

// emptyBatch is a body without events: "[]" for structured, nothing for HEC.
func emptyBatch(cfg *Config) ([]byte, error) {
	var raw []byte
	if cfg.Format != FormatHEC {
		raw = []byte("[]")
	}
	if cfg.Compression != delivery.CompressionGzip {
		return raw, nil
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, cfg.CompressionLevel)
	if err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	_, _ = zw.Write(raw)
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	return buf.Bytes(), nil
}

// roundTrip sends req and returns the status, discarding a short body.
func roundTrip(client *http.Client, req *http.Request) (int, error) {
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, nil
}

// redactURL drops a password from a URL, should one be in it.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "the configured URL"
	}
	return u.Redacted()
}

// Verify checks cfg against the server without sending any event: GET
// /api/v1/status for reachability, then an empty batch to the ingest path
// to check the token. It returns nil or a *VerifyError.
func Verify(ctx context.Context, cfg Config) error {
	s, err := New(cfg, "verify", nil, nil)
	if err != nil {
		return err
	}
	defer s.sender.Client().CloseIdleConnections()
	return s.Verify(ctx)
}
