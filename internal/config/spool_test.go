package config

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestSpoolKeysLoadWithADefaultDirectoryUnderStateDir(t *testing.T) {
	c, _, err := Load(writeConfig(t, minimal+"    spool:\n      enabled: true\n      max_bytes: 64MiB\n      fsync: interval:500ms\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	sp := c.Sink("logscale").LogScale.Spool
	if !sp.Enabled || sp.MaxBytes != 64<<20 || sp.Fsync != "interval:500ms" || sp.Mode != "overflow" || sp.WhenFull != "block" {
		t.Fatalf("spool config %+v", sp)
	}
	if want := filepath.Join(c.StateDir, "spool", "logscale"); sp.Dir != want {
		t.Fatalf("spool dir %s, want %s", sp.Dir, want)
	}
}

func TestSpoolErrorsNameTheKey(t *testing.T) {
	c, _, err := Load(writeConfig(t, minimal+"    spool:\n      enabled: true\n      max_bytes: 1KiB\n      when_full: wait\n      fsync: sometimes\n"), nil)
	if err == nil {
		_, err = c.Validate()
	}
	for _, key := range []string{"sinks.logscale.spool.max_bytes", "sinks.logscale.spool.when_full", "sinks.logscale.spool.fsync"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("error %v does not name %s", err, key)
		}
	}
}
