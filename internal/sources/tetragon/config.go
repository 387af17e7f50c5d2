package tetragon

import (
	"strings"
	"time"

	"github.com/siemship/siemship/internal/validate"
)

// Config of the Tetragon source; the mapstructure tags are its keys under
// sources.<name>. Keys ending in _bytes take sizes with units ("1MiB").
type Config struct {
	// Path of the live export file; backups are found next to it.
	Path string `mapstructure:"path"`
	// MaxLineBytes caps a line; longer ones are shipped truncated and flagged.
	MaxLineBytes int `mapstructure:"max_line_bytes"`
	// ReadBufferBytes is the size of one read buffer (and so of the largest batch the source emits).
	ReadBufferBytes int `mapstructure:"read_buffer_bytes"`
	// PollInterval bounds how long a change goes unnoticed without file notifications.
	PollInterval time.Duration `mapstructure:"poll_interval"`
	// MaxBackups is Tetragon's --export-file-max-backups, for the "rotations before loss" gauge.
	MaxBackups int `mapstructure:"max_backups"`
	// StartAt applies when there is no checkpoint: "oldest" reads every file on
	// disk, "end" starts after the last complete line of the live file.
	StartAt string `mapstructure:"start_at"`
	// CheckpointInterval bounds how long a moved commit point waits to be
	// persisted. The source writes sooner: once the commit point moves, a
	// save follows within min(CheckpointInterval, 100 ms), one write at a
	// time, acks in between coalesced into the next write.
	CheckpointInterval time.Duration `mapstructure:"checkpoint_interval"`
}

// DefaultConfig returns the defaults for Tetragon's default export file.
func DefaultConfig() Config {
	return Config{
		Path:               "/var/run/cilium/tetragon/tetragon.log",
		MaxLineBytes:       1 << 20,
		ReadBufferBytes:    256 << 10,
		PollInterval:       250 * time.Millisecond,
		MaxBackups:         5,
		StartAt:            "oldest",
		CheckpointInterval: time.Second,
	}
}

// Validate records the problems of c's keys.
func (c *Config) Validate(v *validate.Errors) {
	if !strings.HasSuffix(c.Path, ".log") {
		v.Bad("path", "must be the export file path ending in .log, e.g. /var/run/cilium/tetragon/tetragon.log", `"`+c.Path+`"`)
	}
	v.Between("max_line_bytes", int64(c.MaxLineBytes), 1<<10, 32<<20)
	v.Between("read_buffer_bytes", int64(c.ReadBufferBytes), 4<<10, 16<<20)
	v.Positive("poll_interval", c.PollInterval)
	v.Between("max_backups", int64(c.MaxBackups), 0, 1000)
	v.OneOf("start_at", c.StartAt, "oldest", "end")
	v.Positive("checkpoint_interval", c.CheckpointInterval)
}
