// Package secret holds credentials read from a file (a mounted Secret) or an
// environment variable, never from the configuration file or a flag, and
// keeps them out of every log line and error message.
package secret

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
)

// Secret is a string that never prints: fmt, slog and JSON all show
// [redacted]. Use Reveal where the value is really needed.
type Secret string

// Redacted is what a Secret prints as.
const Redacted = "[redacted]"

// Reveal returns the secret value.
func (s Secret) Reveal() string { return string(s) }

// String implements fmt.Stringer.
func (s Secret) String() string { return Redacted }

// Format implements fmt.Formatter, so %v, %#v, %q and %x all redact.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, Redacted) }

// MarshalJSON implements json.Marshaler.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + Redacted + `"`), nil }

// MarshalText implements encoding.TextMarshaler (YAML, TOML and friends).
func (s Secret) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(Redacted) }

// Redact replaces the secret in text that came from elsewhere (a server
// answer that echoes request headers, say).
func (s Secret) Redact(text string) string {
	if s == "" {
		return text
	}
	return strings.ReplaceAll(text, string(s), Redacted)
}

// Ref says where a secret is read from: a file named by the key FileKey, else
// the environment variable Env. What is the secret for, in words ("LogScale
// ingest token"), for error messages.
type Ref struct {
	What    string
	File    string
	FileKey string
	Env     string
}

// Read returns the secret and where it came from ("file /etc/x" or
// "environment variable X"). Surrounding white space is trimmed; an empty
// value is an error.
func (r Ref) Read() (Secret, string, error) {
	if r.File != "" {
		data, err := os.ReadFile(r.File)
		if err != nil {
			return "", "", fmt.Errorf("read %s file (%s): %w", r.What, r.FileKey, err)
		}
		v := strings.TrimSpace(string(data))
		if v == "" {
			return "", "", fmt.Errorf("%s file %s (%s) is empty", r.What, r.File, r.FileKey)
		}
		return Secret(v), "file " + r.File, nil
	}
	if v := strings.TrimSpace(os.Getenv(r.Env)); r.Env != "" && v != "" {
		return Secret(v), "environment variable " + r.Env, nil
	}
	return "", "", fmt.Errorf("no %s: set %s to a file holding it (a mounted Secret) or the %s environment variable", r.What, r.FileKey, r.Env)
}

// EnvName is the environment variable that may hold a secret of a named
// component: EnvName("sinks", "taegis", "token") is SIEMSHIP_SINKS_TAEGIS_TOKEN.
func EnvName(section, name, field string) string {
	return strings.ToUpper("SIEMSHIP_" + section + "_" + name + "_" + field)
}
