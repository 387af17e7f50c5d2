package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	"github.com/siemship/siemship/internal/bytesize"
	"github.com/siemship/siemship/internal/validate"
)

// Validate checks every value and reports all problems at once, each naming
// its key and the expected form. It also fills what derives from other keys
// (a sink's dead-letter file under state_dir). It returns warnings for
// likely mistakes that are not errors.
func (c *Config) Validate() ([]string, error) {
	v := validate.New("")
	v.OneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	v.OneOf("log.format", c.Log.Format, "auto", "json", "text")
	if c.StateDir == "" {
		v.Bad("state_dir", "must name a writable directory", `""`)
	}
	v.Positive("status_interval", c.StatusInterval)
	v.Positive("shutdown_grace", c.ShutdownGrace)
	c.Kubernetes.Validate(v.Under("kubernetes."))
	c.LeaderElection.Validate(v.Under("leader_election."))

	maxLine, maxRead, maxBatch := int64(0), int64(0), int64(0)
	var warnings []string
	for _, s := range c.Sources {
		sv := v.Under("sources." + s.Name + ".")
		switch {
		case s.Tetragon != nil:
			s.Tetragon.Validate(sv)
			maxLine = max(maxLine, int64(s.Tetragon.MaxLineBytes))
			maxRead = max(maxRead, int64(s.Tetragon.ReadBufferBytes))
		case s.FalconAPI != nil:
			s.FalconAPI.Validate(sv)
		case s.Logpush != nil:
			s.Logpush.Validate(sv)
			// A request's body is held (compressed) in the budget until its
			// records are delivered: a budget below a body answers every
			// such push 429.
			maxRead = max(maxRead, int64(s.Logpush.BatchBytes))
			if c.BufferBytes < 64<<20 {
				warnings = append(warnings, fmt.Sprintf("buffer_bytes is %s with a Logpush source: a push is held compressed in that budget until delivered, and one that does not fit is answered 429; 256MiB suits Cloudflare's default upload sizes", c.BufferBytes))
			}
		case s.Falcon != nil:
			s.Falcon.Validate(sv)
			// Each partition holds one batch buffer from the budget while it fills.
			maxRead = max(maxRead, int64(s.Falcon.BatchBytes))
		}
	}
	for _, s := range c.Sinks {
		sv := v.Under("sinks." + s.Name + ".")
		switch {
		case s.LogScale != nil:
			c.defaultSpoolDir(&s.LogScale.Spool.Dir, s.Name)
			s.LogScale.Validate(sv)
			warnings = append(warnings, plainHTTPWarning(s.Name, s.LogScale.URL, s.LogScale.AllowPlainHTTP)...)
			c.defaultDeadLetter(&s.LogScale.DeadLetterPath, s.Name)
			maxBatch = max(maxBatch, int64(s.LogScale.MaxBytes))
		case s.HTTP != nil:
			c.defaultSpoolDir(&s.HTTP.Spool.Dir, s.Name)
			s.HTTP.Validate(sv)
			warnings = append(warnings, plainHTTPWarning(s.Name, s.HTTP.URL, s.HTTP.AllowPlainHTTP)...)
			c.defaultDeadLetter(&s.HTTP.DeadLetterPath, s.Name)
			maxBatch = max(maxBatch, int64(s.HTTP.MaxBytes))
		case s.Syslog != nil:
			s.Syslog.Validate(sv)
		}
	}
	if c.MemoryLimit != 0 && c.MemoryLimit < 2*c.BufferBytes {
		v.Bad("memory_limit", "must be 0 (no limit) or at least twice buffer_bytes", c.MemoryLimit)
	}
	// The byte budget must hold a full request of the largest sink plus the
	// reader's working buffers, or reading could wait forever for room.
	if need := maxBatch + 2*(maxLine+maxRead); int64(c.BufferBytes) < need {
		v.Bad("buffer_bytes", fmt.Sprintf("must be at least batch_bytes + 2×(max_line_bytes + read_buffer_bytes) = %s", bytesize.Size(need)), c.BufferBytes)
	}
	rwarnings, rerr := c.validateRoutes()
	return append(warnings, rwarnings...), errors.Join(v.Err(), rerr)
}

// plainHTTPWarning warns when a sink was allowed to send its token in
// clear text to a host that is not loopback.
func plainHTTPWarning(sink, raw string, allowed bool) []string {
	u, err := url.Parse(raw)
	if !allowed || err != nil || u.Scheme != "http" || validate.IsLoopback(u.Hostname()) {
		return nil
	}
	return []string{fmt.Sprintf("sink %s sends its token over plain http to %s (allow_plain_http is set): only safe if something on the way encrypts", sink, u.Host)}
}

func (c *Config) defaultDeadLetter(path *string, sink string) {
	if *path == "" {
		*path = filepath.Join(c.StateDir, sink+"-dead-letter.ndjson")
	}
}

// defaultSpoolDir puts a sink's spool under the state directory.
func (c *Config) defaultSpoolDir(dir *string, sink string) {
	if *dir == "" {
		*dir = filepath.Join(c.StateDir, "spool", sink)
	}
}

// SecretEnv lists the environment variables the configured components may
// read secrets from.
func (c *Config) SecretEnv() []string {
	var out []string
	for _, s := range c.Sources {
		if s.FalconAPI != nil {
			out = append(out, s.FalconAPI.ClientIDRef(s.Name).Env, s.FalconAPI.ClientSecretRef(s.Name).Env)
		}
	}
	for _, s := range c.Sinks {
		switch {
		case s.LogScale != nil:
			out = append(out, s.LogScale.TokenRef(s.Name).Env)
			if s.Name == "logscale" {
				out = append(out, "SIEMSHIP_LOGSCALE_TOKEN", "SIEMSHIP_SINKS_LOGSCALE_TOKEN")
			}
		case s.HTTP != nil:
			out = append(out, s.HTTP.TokenRef(s.Name).Env)
		}
	}
	for _, s := range c.Sources {
		if s.Falcon != nil {
			id, sec := s.Falcon.CredentialRefs(s.Name)
			out = append(out, id.Env, sec.Env)
		}
	}
	return out
}

// CheckStateDir checks that the state directory can be created and
// written, as the agent will need to.
func CheckStateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("state_dir %s cannot be created: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, ".siemship-check-*")
	if err != nil {
		return fmt.Errorf("state_dir %s is not writable: %w", dir, err)
	}
	name := f.Name()
	f.Close()
	if err := os.Remove(name); err != nil {
		return fmt.Errorf("state_dir %s: remove test file: %w", dir, err)
	}
	return nil
}
