package spool

import (
	"fmt"
	"strings"
	"time"

	"github.com/siemship/siemship/internal/bytesize"
	"github.com/siemship/siemship/internal/validate"
)

// Values of Config.WhenFull, Config.Mode and Config.Fsync.
const (
	FullBlock      = "block"
	FullDropOldest = "drop_oldest"
	ModeOverflow   = "overflow"
	ModeAlways     = "always"
	FsyncBatch     = "batch"
	fsyncInterval  = "interval:"
)

// Config configures the disk spool of one sink; its keys sit under
// sinks.<name>.spool. DefaultConfig gives the defaults.
type Config struct {
	// Enabled turns the spool on; off by default.
	Enabled bool `mapstructure:"enabled"`
	// Dir holds the spool's segment files; empty: <state_dir>/spool/<sink>
	// (filled in by the configuration loader). One sink per directory.
	Dir string `mapstructure:"dir"`
	// MaxBytes caps the spool on disk. A full disk (ENOSPC) counts as full too.
	MaxBytes bytesize.Size `mapstructure:"max_bytes"`
	// WhenFull is FullBlock (stop acknowledging upstream: back-pressure to
	// the source) or FullDropOldest (delete the oldest segment, counted and
	// reported to the sink as a siemship_data_loss event).
	WhenFull string `mapstructure:"when_full"`
	// Mode is ModeOverflow (batches go straight to the sink while it keeps
	// up; spill to disk only while it is behind) or ModeAlways (every batch
	// goes through the disk).
	Mode string `mapstructure:"mode"`
	// Fsync is FsyncBatch (fsync before acknowledging each batch upstream)
	// or "interval:<duration>" (fsync, then acknowledge, every duration).
	Fsync string `mapstructure:"fsync"`
}

// DefaultConfig returns the spool's defaults: off; when on, 2GiB, block,
// overflow, fsync per batch.
func DefaultConfig() Config {
	return Config{MaxBytes: 2 << 30, WhenFull: FullBlock, Mode: ModeOverflow, Fsync: FsyncBatch}
}

// minMaxBytes is the smallest cap: it must hold several segments.
const minMaxBytes = 1 << 20

// Validate records the problems of c's keys (relative to the spool block).
func (c *Config) Validate(v *validate.Errors) {
	if !c.Enabled {
		return
	}
	if c.MaxBytes < minMaxBytes {
		v.Bad("max_bytes", "must be at least 1MiB", c.MaxBytes)
	}
	v.OneOf("when_full", c.WhenFull, FullBlock, FullDropOldest)
	v.OneOf("mode", c.Mode, ModeOverflow, ModeAlways)
	if _, err := c.fsyncEvery(); err != nil {
		v.Bad("fsync", `must be "batch" or "interval:<duration>" such as interval:1s`, fmt.Sprintf("%q", c.Fsync))
	}
	if c.Dir == "" {
		v.Bad("dir", "must name a directory (the default is <state_dir>/spool/<sink>)", `""`)
	}
}

// fsyncEvery returns 0 for FsyncBatch, else the interval.
func (c *Config) fsyncEvery() (time.Duration, error) {
	if c.Fsync == FsyncBatch {
		return 0, nil
	}
	rest, ok := strings.CutPrefix(c.Fsync, fsyncInterval)
	if !ok {
		return 0, fmt.Errorf("fsync %q: want %q or %q<duration>", c.Fsync, FsyncBatch, fsyncInterval)
	}
	d, err := time.ParseDuration(rest)
	if err != nil || d <= 0 || d > time.Minute {
		return 0, fmt.Errorf("fsync %q: the interval must be a duration between 1ns and 1m", c.Fsync)
	}
	return d, nil
}

// segmentSize derives the wlog segment size from room, the smaller of
// the cap and the size of the filesystem under the spool: an eighth of
// it, between 128KiB and 64MiB, in whole 32KiB pages. Trimming and
// drop_oldest work a segment at a time and never on the segment being
// written, so several must fit in what the disk holds, not only under
// max_bytes: sized from a cap far above the disk, the first segment alone
// filled the disk and nothing could ever be freed.
func segmentSize(room int64) int {
	const page = 32 << 10
	s := min(max(room/8, 128<<10), 64<<20)
	return int(s / page * page)
}
