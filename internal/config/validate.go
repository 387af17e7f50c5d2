package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
)

// Validate checks every value and reports all problems at once, each naming
// its key and the expected form.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, want string, got any) {
		errs = append(errs, fmt.Errorf("%s: %s, got %v", key, want, got))
	}
	oneOf := func(key, got string, allowed ...string) {
		if !slices.Contains(allowed, got) {
			bad(key, "must be one of "+strings.Join(allowed, ", "), fmt.Sprintf("%q", got))
		}
	}
	positive := func(key string, d time.Duration) {
		if d <= 0 {
			bad(key, "must be a positive duration such as 500ms or 30s", d)
		}
	}
	between := func(key string, n, lo, hi int64) {
		if n < lo || n > hi {
			bad(key, fmt.Sprintf("must be between %d and %d", lo, hi), n)
		}
	}

	oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	oneOf("log.format", c.Log.Format, "auto", "json", "text")
	if c.StateDir == "" {
		bad("state_dir", "must name a writable directory", `""`)
	}
	positive("status_interval", c.StatusInterval)
	positive("shutdown_grace", c.ShutdownGrace)

	t := c.Sources.Tetragon
	if t.Path == "" || !strings.HasSuffix(t.Path, ".log") {
		bad("sources.tetragon.path", "must be the export file path ending in .log, e.g. /var/run/cilium/tetragon/tetragon.log", fmt.Sprintf("%q", t.Path))
	}
	between("sources.tetragon.max_line_bytes", int64(t.MaxLineBytes), 1<<10, 32<<20)
	between("sources.tetragon.read_buffer_bytes", int64(t.ReadBufferBytes), 4<<10, 16<<20)
	positive("sources.tetragon.poll_interval", t.PollInterval)
	between("sources.tetragon.max_backups", int64(t.MaxBackups), 0, 1000)
	oneOf("sources.tetragon.start_at", t.StartAt, "oldest", "end")
	positive("sources.tetragon.checkpoint_interval", t.CheckpointInterval)

	k := c.Kubernetes
	if k.Enabled {
		positive("kubernetes.pod_retention", k.PodRetention)
		positive("kubernetes.sync_timeout", k.SyncTimeout)
		if k.WaitForPod < 0 {
			bad("kubernetes.wait_for_pod", "must not be negative", k.WaitForPod)
		}
		if k.NodeName == "" && os.Getenv("NODE_NAME") == "" {
			bad("kubernetes.node_name", "must be set, or NODE_NAME (from the downward API) when kubernetes.enabled is true", `""`)
		}
	}

	errs = append(errs, c.Sinks.LogScale.validate()...)

	if c.MemoryLimit != 0 && c.MemoryLimit < 2*c.BufferBytes {
		bad("memory_limit", "must be 0 (no limit) or at least twice buffer_bytes", c.MemoryLimit)
	}
	need := int64(c.Sinks.LogScale.BatchBytes) + 2*(int64(t.MaxLineBytes)+int64(t.ReadBufferBytes))
	if int64(c.BufferBytes) < need {
		bad("buffer_bytes", fmt.Sprintf("must be at least batch_bytes + 2×(max_line_bytes + read_buffer_bytes) = %s", ByteSize(need)), c.BufferBytes)
	}
	return errors.Join(errs...)
}

func (l LogScale) validate() []error {
	var errs []error
	bad := func(key, want string, got any) {
		errs = append(errs, fmt.Errorf("sinks.logscale.%s: %s, got %v", key, want, got))
	}
	if l.URL == "" {
		bad("url", "must be set to your LogScale URL, e.g. https://cloud.community.humio.com", `""`)
	} else if u, err := url.Parse(l.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		bad("url", "must be an http:// or https:// URL with a host", fmt.Sprintf("%q", l.URL))
	}
	if l.Format != "structured" && l.Format != "hec" {
		bad("format", "must be structured or hec", fmt.Sprintf("%q", l.Format))
	}
	if l.Compression != "gzip" && l.Compression != "none" {
		bad("compression", "must be gzip or none", fmt.Sprintf("%q", l.Compression))
	}
	if l.CompressionLevel < 1 || l.CompressionLevel > 9 {
		bad("compression_level", "must be between 1 (fastest) and 9", l.CompressionLevel)
	}
	if l.BatchEvents < 1 || l.BatchEvents > 100000 {
		bad("batch_events", "must be between 1 and 100000 (LogScale advises at most 5000)", l.BatchEvents)
	}
	if l.BatchBytes < 1<<10 || l.BatchBytes > 32<<20 {
		bad("batch_bytes", "must be between 1KiB and 32MiB (LogScale's request limit)", l.BatchBytes)
	}
	if l.Concurrency < 1 || l.Concurrency > 64 {
		bad("concurrency", "must be between 1 and 64", l.Concurrency)
	}
	for key, d := range map[string]time.Duration{"linger": l.Linger, "timeout": l.Timeout,
		"retry_initial": l.RetryInitial, "retry_max": l.RetryMax, "auth_retry": l.AuthRetry} {
		if d <= 0 {
			bad(key, "must be a positive duration such as 1s", d)
		}
	}
	if l.RetryMax < l.RetryInitial {
		bad("retry_max", "must not be below retry_initial", l.RetryMax)
	}
	if l.CAFile != "" {
		if _, err := os.Stat(l.CAFile); err != nil {
			bad("ca_file", "must be a readable PEM file", err)
		}
	}
	for k := range l.Tags {
		if k == "source" || k == "event_type" {
			bad("tags", "must not redefine the tags source and event_type that siemship sets", k)
		}
	}
	return errs
}
