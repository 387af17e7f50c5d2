// Package validate collects configuration problems, each naming its key and
// the expected form, so that every problem is reported at once.
package validate

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Errors collects problems of keys under one prefix ("sinks.taegis.").
// Not safe for concurrent use.
type Errors struct {
	prefix string
	errs   *[]error
}

// New starts a collection for keys under prefix (with its trailing dot, or "").
func New(prefix string) *Errors { return &Errors{prefix: prefix, errs: new([]error)} }

// Under returns a collector for keys under prefix+sub that adds to the same list.
func (e *Errors) Under(sub string) *Errors { return &Errors{prefix: e.prefix + sub, errs: e.errs} }

// Key returns the full name of key.
func (e *Errors) Key(key string) string { return e.prefix + key }

// Err returns every problem collected, joined, or nil.
func (e *Errors) Err() error { return errors.Join(*e.errs...) }

// Bad records that key should be want but is got.
func (e *Errors) Bad(key, want string, got any) {
	*e.errs = append(*e.errs, fmt.Errorf("%s: %s, got %v", e.Key(key), want, got))
}

// Add records a problem of key in words.
func (e *Errors) Add(key, problem string) {
	*e.errs = append(*e.errs, fmt.Errorf("%s: %s", e.Key(key), problem))
}

// OneOf checks that got is one of allowed.
func (e *Errors) OneOf(key, got string, allowed ...string) {
	if !slices.Contains(allowed, got) {
		e.Bad(key, "must be one of "+strings.Join(allowed, ", "), fmt.Sprintf("%q", got))
	}
}

// Positive checks that d is above zero.
func (e *Errors) Positive(key string, d time.Duration) {
	if d <= 0 {
		e.Bad(key, "must be a positive duration such as 500ms or 30s", d)
	}
}

// Between checks lo ≤ n ≤ hi.
func (e *Errors) Between(key string, n, lo, hi int64) {
	if n < lo || n > hi {
		e.Bad(key, fmt.Sprintf("must be between %d and %d", lo, hi), n)
	}
}

// Required checks that s is set; example shows the expected form.
func (e *Errors) Required(key, s, example string) bool {
	if s == "" {
		e.Bad(key, "must be set, e.g. "+example, `""`)
		return false
	}
	return true
}

// BaseURL checks an http(s) base URL with a host. Unless allowPlain, plain
// http is refused for hosts other than loopback: a token would travel in
// clear text. apiPaths are path prefixes that belong to the API and not to
// the base URL (a user who pasted a full ingest URL is told to drop them).
func (e *Errors) BaseURL(key, raw string, allowPlain bool, allowPlainKey string, apiPaths ...string) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		e.Bad(key, "must be an http:// or https:// URL with a host", fmt.Sprintf("%q", raw))
		return
	}
	if u.Scheme == "http" && !allowPlain && !IsLoopback(u.Hostname()) {
		e.Add(key, fmt.Sprintf("%q is plain http to a host that is not loopback: the token would travel unencrypted; use https, or set %s: true if a proxy on the way encrypts", raw, e.Key(allowPlainKey)))
	}
	for _, p := range apiPaths {
		if i := strings.Index(u.Path, p); i >= 0 {
			e.Add(key, fmt.Sprintf("%q includes the API path %s: give the base URL only, e.g. %s://%s%s", raw, u.Path[i:], u.Scheme, u.Host, u.Path[:i]))
			return
		}
	}
}

// IsLoopback says whether host is localhost or a loopback address.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
