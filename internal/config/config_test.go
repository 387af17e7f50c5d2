package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "siemship.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const minimal = "sinks:\n  logscale:\n    url: https://cloud.community.humio.com\n"

func TestDefaultsAreValidAndDocumented(t *testing.T) {
	c, _, err := Load(writeConfig(t, minimal), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Sinks.LogScale.BatchEvents != 5000 || c.Sinks.LogScale.BatchBytes != 5<<20 || c.Sinks.LogScale.Linger != time.Second ||
		c.Sinks.LogScale.Concurrency != 2 || c.Sources.Tetragon.MaxLineBytes != 1<<20 || c.StateDir != "/var/lib/siemship" ||
		c.Sources.Tetragon.Path != "/var/run/cilium/tetragon/tetragon.log" {
		t.Fatalf("unexpected defaults: %+v", c)
	}
}

func TestErrorsNameTheKey(t *testing.T) {
	cases := map[string]struct{ body, want string }{
		"unknown key":       {minimal + "    urll: x\n", `unknown key "sinks.logscale.urll"`},
		"unknown top level": {minimal + "statedir: /x\n", `unknown key "statedir"`},
		"token in file":     {minimal + "    token: abc\n", "sinks.logscale.token must not be in the file"},
		"bad duration":      {minimal + "    linger: soon\n", "linger"},
		"bad size":          {minimal + "    batch_bytes: lots\n", "batch_bytes"},
		"bad enum":          {minimal + "    format: csv\n", "sinks.logscale.format: must be structured or hec"},
		"bad url":           {"sinks:\n  logscale:\n    url: cloud.community.humio.com\n", "sinks.logscale.url: must be an http:// or https:// URL"},
		"missing url":       {"log:\n  level: info\n", "sinks.logscale.url: must be set"},
		"bad level":         {minimal + "log:\n  level: loud\n", "log.level: must be one of debug, info, warn, error"},
		"buffer too small":  {minimal + "buffer_bytes: 1MiB\n", "buffer_bytes: must be at least"},
		"not yaml":          {"sinks: [\n", "not valid YAML"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, _, err := Load(writeConfig(t, c.body), nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestEnvironmentAndFlagsOverrideTheFile(t *testing.T) {
	p := writeConfig(t, minimal+"    concurrency: 3\nstate_dir: /from/file\n")
	t.Setenv("SIEMSHIP_SINKS_LOGSCALE_CONCURRENCY", "4")
	t.Setenv("SIEMSHIP_SINKS_LOGSCALE_BATCH_BYTES", "2MiB")
	t.Setenv("SIEMSHIP_STATE_DIR", "/from/env")
	t.Setenv("SIEMSHIP_SINKS_LOGSCALE_URLL", "typo")
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	AddFlags(fs)
	if err := fs.Parse([]string{"--state-dir=/from/flag"}); err != nil {
		t.Fatal(err)
	}
	c, warnings, err := Load(p, fs)
	if err != nil {
		t.Fatal(err)
	}
	if c.Sinks.LogScale.Concurrency != 4 || c.Sinks.LogScale.BatchBytes != 2<<20 || c.StateDir != "/from/flag" {
		t.Fatalf("concurrency=%d batch_bytes=%d state_dir=%s", c.Sinks.LogScale.Concurrency, c.Sinks.LogScale.BatchBytes, c.StateDir)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "SIEMSHIP_SINKS_LOGSCALE_URLL") {
		t.Fatalf("warnings = %q, want one naming the misspelled variable", warnings)
	}
}

func TestTokenComesFromFileOrEnvironmentOnly(t *testing.T) {
	l := LogScale{}
	t.Setenv(TokenEnv, "")
	if _, err := l.ReadToken(); err == nil || !strings.Contains(err.Error(), "token_file") {
		t.Fatalf("err = %v, want advice naming token_file", err)
	}
	t.Setenv(TokenEnv, " from-env \n")
	if tok, err := l.ReadToken(); err != nil || tok != "from-env" {
		t.Fatalf("token %q err %v", tok, err)
	}
	f := filepath.Join(t.TempDir(), "token")
	os.WriteFile(f, []byte("from-file\n"), 0o600)
	l.TokenFile = f
	if tok, err := l.ReadToken(); err != nil || tok != "from-file" {
		t.Fatalf("token %q err %v", tok, err)
	}
	l.TokenFile = f + ".missing"
	_, err := l.ReadToken()
	if err == nil || strings.Contains(err.Error(), "from-") {
		t.Fatalf("err = %v: want an error that does not leak a token", err)
	}
}

func TestExampleConfigIsComplete(t *testing.T) {
	// Every key has a default, and the defaults validate once a URL is set.
	c, _, err := Load("", nil)
	if err == nil || !strings.Contains(err.Error(), "sinks.logscale.url") {
		t.Fatalf("no config: err = %v, want only the missing URL", err)
	}
	_ = c
}
