package delivery

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	netErr := fmt.Errorf("send 3 events: %w", &net.OpError{Op: "dial", Err: errors.New("connection refused")})
	cases := []struct {
		err  error
		want action
	}{
		{nil, actDeliver},
		{netErr, actRetry},
		{&StatusError{Code: 200}, actDeliver},
		{&StatusError{Code: 204}, actDeliver},
		{&StatusError{Code: 408}, actRetry},
		{&StatusError{Code: 429}, actRetry},
		{&StatusError{Code: 500}, actRetry},
		{&StatusError{Code: 502}, actRetry},
		{&StatusError{Code: 503}, actRetry},
		{&StatusError{Code: 504}, actRetry},
		{&StatusError{Code: 599}, actRetry},
		{&StatusError{Code: 501}, actConfig},
		{&StatusError{Code: 400}, actHalve},
		{&StatusError{Code: 413}, actHalve},
		{&StatusError{Code: 422}, actDeadLetter},
		{&StatusError{Code: 401}, actConfig},
		{&StatusError{Code: 403}, actConfig},
		{&StatusError{Code: 404}, actConfig},
		{&StatusError{Code: 405}, actConfig},
		{&StatusError{Code: 409}, actConfig},
		{&StatusError{Code: 301}, actConfig},
		{fmt.Errorf("wrapped: %w", &StatusError{Code: 422}), actDeadLetter},
	}
	for _, c := range cases {
		if got := classify(c.err); got != c.want {
			t.Errorf("classify(%v) = %d, want %d", c.err, got, c.want)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	cases := map[string]time.Duration{
		"":                               0,
		"0":                              0,
		"-5":                             0,
		"7":                              7 * time.Second,
		" 120 ":                          2 * time.Minute,
		"86400":                          maxRetryAfter,
		"99999999999999999999":           0, // unreadable
		"soon":                           0,
		"Sun, 01 Mar 2026 12:00:30 GMT":  30 * time.Second,
		"Sunday, 01-Mar-26 12:01:00 GMT": time.Minute,
		"Sun Mar  1 12:00:05 2026":       5 * time.Second,
		"Sun, 01 Mar 2026 11:00:00 GMT":  0, // in the past
		"Mon, 02 Mar 2026 12:00:00 GMT":  maxRetryAfter,
	}
	for in, want := range cases {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestStatusErrorMessage(t *testing.T) {
	err := error(&StatusError{Code: http.StatusServiceUnavailable, Body: "ingest delayed"})
	if got := err.Error(); got != `answered 503 Service Unavailable: "ingest delayed"` {
		t.Errorf("message %q", got)
	}
}

// FuzzParseRetryAfter: any header value yields a wait in [0, maxRetryAfter].
func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"", "5", "-1", "Sun, 01 Mar 2026 12:00:30 GMT", "1e9", "９"} {
		f.Add(s)
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		if d := parseRetryAfter(v, now); d < 0 || d > maxRetryAfter {
			t.Fatalf("parseRetryAfter(%q) = %v", v, d)
		}
	})
}
