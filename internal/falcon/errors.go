package falcon

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Causes of API errors, for errors.Is. Each APIError wraps one of them (or
// none for an unclassified status).
var (
	// ErrInvalidCredentials: the token endpoint refused the client id or secret.
	ErrInvalidCredentials = errors.New("invalid client id or secret")
	// ErrMissingScope: the API client lacks the scope the call needs.
	ErrMissingScope = errors.New("API client lacks a required scope")
	// ErrIPNotAllowed: the API client's IP allowlist does not include this address.
	ErrIPNotAllowed = errors.New("source IP not in the API client's allowlist")
	// ErrUnauthorized: a token (bearer or stream session) was refused with 401.
	ErrUnauthorized = errors.New("token refused (401)")
	// ErrRateLimited: 429.
	ErrRateLimited = errors.New("rate limited (429)")
)

// APIError is a non-2xx answer of the Falcon API.
type APIError struct {
	Call     string // what was attempted, e.g. "token", "discover"
	Status   int
	Messages []string // from the errors envelope
	TraceID  string
	// Scope is the API scope the call needs, named in the message of a 403.
	Scope string
	cause error
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "falcon %s: HTTP %d", e.Call, e.Status)
	switch {
	case errors.Is(e.cause, ErrInvalidCredentials):
		b.WriteString(": invalid client id or secret (check client_id_file and client_secret_file, and that the API client was not deleted)")
	case errors.Is(e.cause, ErrIPNotAllowed):
		b.WriteString(": this agent's IP address is not in the API client's IP allowlist (Falcon console → API clients and keys → the client → IP allowlist)")
	case errors.Is(e.cause, ErrMissingScope):
		fmt.Fprintf(&b, ": the API client lacks the scope %q (Falcon console → API clients and keys → edit the client → enable it)", e.Scope)
	case errors.Is(e.cause, ErrUnauthorized):
		b.WriteString(": token not accepted (expired or revoked)")
	case errors.Is(e.cause, ErrRateLimited):
		b.WriteString(": rate limited")
	}
	if len(e.Messages) > 0 {
		fmt.Fprintf(&b, " (Falcon says: %s)", strings.Join(e.Messages, "; "))
	}
	if e.TraceID != "" {
		fmt.Fprintf(&b, " trace_id=%s", e.TraceID)
	}
	return b.String()
}

// Unwrap returns the classified cause.
func (e *APIError) Unwrap() error { return e.cause }

// envelope is the part of Falcon's error envelope used here.
type envelope struct {
	Meta struct {
		TraceID string `json:"trace_id"`
	} `json:"meta"`
	Errors []struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"errors"`
}

// newAPIError classifies an answer. body is what was read of it (a bounded
// prefix); token says whether it answered the token endpoint.
func newAPIError(call string, status int, h http.Header, body []byte, scope string, token bool) *APIError {
	e := &APIError{Call: call, Status: status, Scope: scope, TraceID: h.Get("X-Cs-Traceid")}
	var env envelope
	if json.Unmarshal(body, &env) == nil {
		for _, m := range env.Errors {
			if m.Message != "" {
				e.Messages = append(e.Messages, m.Message)
			}
		}
		if e.TraceID == "" {
			e.TraceID = env.Meta.TraceID
		}
	}
	text := strings.ToLower(strings.Join(e.Messages, " "))
	switch {
	case status == http.StatusTooManyRequests:
		e.cause = ErrRateLimited
	case status == http.StatusUnauthorized:
		e.cause = ErrUnauthorized
	case status == http.StatusForbidden && mentionsIP(text):
		// Inferred from connector reports: an allowlist refusal is a 403
		// whose message mentions the IP address.
		e.cause = ErrIPNotAllowed
	case status == http.StatusForbidden && (token || strings.Contains(text, "invalid client")):
		e.cause = ErrInvalidCredentials
	case status == http.StatusForbidden:
		e.cause = ErrMissingScope
	case token && (status == http.StatusBadRequest || status == http.StatusUnauthorized):
		e.cause = ErrInvalidCredentials
	}
	return e
}

func mentionsIP(text string) bool {
	for _, w := range []string{"ip address", "allowlist", "allow list", "whitelist", "ip not allowed", "source ip"} {
		if strings.Contains(text, w) {
			return true
		}
	}
	return false
}

// Permanent reports whether retrying cannot help until an operator acts
// (credentials, scope, allowlist).
func Permanent(err error) bool {
	return errors.Is(err, ErrInvalidCredentials) || errors.Is(err, ErrMissingScope) || errors.Is(err, ErrIPNotAllowed)
}
