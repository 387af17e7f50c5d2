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
	l, tg := c.Sink("logscale").LogScale, c.Source("tetragon").Tetragon
	if l.MaxEvents != 5000 || l.MaxBytes != 5<<20 || l.Linger != time.Second || l.Concurrency != 2 ||
		tg.MaxLineBytes != 1<<20 || c.StateDir != "/var/lib/siemship" || tg.Path != "/var/run/cilium/tetragon/tetragon.log" ||
		l.DeadLetterPath != "/var/lib/siemship/logscale-dead-letter.ndjson" || c.Kubernetes.Enabled {
		t.Fatalf("unexpected defaults: %+v %+v %+v", c, l, tg)
	}
}

// Each message is what a user sees for a mistake a user makes.
func TestErrorsNameTheKey(t *testing.T) {
	cases := map[string]struct{ body, want string }{
		"unknown key":        {minimal + "    urll: x\n", `unknown key "sinks.logscale.urll" (did you mean "sinks.logscale.url"?)`},
		"unknown top level":  {minimal + "statedir: /x\n", `unknown key "statedir" (did you mean "state_dir"?)`},
		"far from any key":   {minimal + "    zzzzzzzzzz: 1\n", `unknown key "sinks.logscale.zzzzzzzzzz" (keys under sinks.logscale: allow_plain_http, auth_retry,`},
		"token in file":      {minimal + "    token: abc\n", "sinks.logscale.token must not be in the file"},
		"bad duration":       {minimal + "    linger: soon\n", `sinks.logscale.linger: must be a duration with a unit, e.g. 250ms, 30s or 2m, got "soon"`},
		"duration no unit":   {minimal + "sources:\n  tetragon:\n    poll_interval: 250\n", "sources.tetragon.poll_interval: must be a duration with a unit, e.g. 250ms, 30s or 2m, got 250 (250 has no unit)"},
		"interval no unit":   {minimal + "status_interval: 30\n", "status_interval: must be a duration with a unit"},
		"quoted no unit":     {minimal + "status_interval: \"30\"\n", `status_interval: must be a duration with a unit, e.g. 250ms, 30s or 2m, got "30"`},
		"bad number":         {minimal + "    batch_events: many\n", `sinks.logscale.batch_events: must be a whole number, got "many"`},
		"bad size":           {minimal + "    batch_bytes: lots\n", `sinks.logscale.batch_bytes: must be a size, e.g. 5MiB, 256KiB or 1048576, got "lots"`},
		"bad bool":           {minimal + "kubernetes:\n  enabled: maybe\n", `kubernetes.enabled: must be true or false, got "maybe"`},
		"bad enum":           {minimal + "    format: csv\n", "sinks.logscale.format: must be one of structured, hec"},
		"bad url":            {"sinks:\n  logscale:\n    url: cloud.community.humio.com\n", "sinks.logscale.url: must be an http:// or https:// URL"},
		"api path in url":    {"sinks:\n  logscale:\n    url: https://cloud.community.humio.com/api/v1/ingest/humio-structured\n", `includes the API path /api/v1/ingest/humio-structured: give the base URL only, e.g. https://cloud.community.humio.com`},
		"plain http":         {"sinks:\n  logscale:\n    url: http://logscale.example.com\n", "is plain http to a host that is not loopback: the token would travel unencrypted; use https, or set sinks.logscale.allow_plain_http: true"},
		"falcon api http":    {minimal + "sources:\n  api:\n    type: falcon_api\n    base_url: http://proxy.internal:8080\n", "set sources.api.allow_plain_http: true"},
		"falcon api path":    {minimal + "sources:\n  api:\n    type: falcon_api\n    base_url: https://api.crowdstrike.com/devices/queries/devices/v1\n", "includes the API path /devices/queries/devices/v1: give the base URL only, e.g. https://api.crowdstrike.com"},
		"missing url":        {"log:\n  level: info\n", "sinks.logscale.url: must be set"},
		"bad level":          {minimal + "log:\n  level: loud\n", "log.level: must be one of debug, info, warn, error"},
		"buffer too small":   {minimal + "buffer_bytes: 1MiB\n", "buffer_bytes: must be at least"},
		"not yaml":           {"sinks: [\n", "not valid YAML: line 2"},
		"yaml error line":    {"log:\n  level: info\nsinks:\n  logscale:\n    url: [x\n", "line 5"},
		"bad name":           {"sinks:\n  Logscale:\n    url: https://x.example\n", "sinks.Logscale: a name must match [a-z][a-z0-9_]*"},
		"unknown type":       {"sinks:\n  out:\n    type: kafka\n", `sinks.out.type: type "kafka" is not a sink type (types: [logscale http syslog])`},
		"sinks not a map":    {"sinks: [logscale]\n", "sinks: must map names to components"},
		"http sink token":    {minimal + "  taegis:\n    type: http\n    url: https://ingest.example.com/v1/abc\n    token: k\n", "sinks.taegis.token must not be in the file"},
		"route unknown src":  {minimal + "routes:\n  - from: falcon\n    to: [logscale]\n", `routes[0] (falcon->logscale): from: no source named "falcon" (sources: [tetragon])`},
		"route unknown sink": {minimal + "routes:\n  - from: tetragon\n    to: [taegis]\n", `routes[0] (tetragon->taegis): to: no sink named "taegis" (sinks: [logscale])`},
		"route pair twice":   {minimal + "routes:\n  - from: tetragon\n    to: [logscale]\n  - name: again\n    from: tetragon\n    to: logscale\n", "routes[1] (again): tetragon → logscale is already in routes[0] (tetragon->logscale): a source–sink pair may appear in one route only"},
		"route key typo":     {minimal + "routes:\n  - from: tetragon\n    to: [logscale]\n    exclude: {namespace: [x]}\n", `routes[0].exclude: unknown key "namespace" (did you mean "namespaces"?)`},
		"route bad label":    {minimal + "routes:\n  - from: tetragon\n    to: [logscale]\n    include: {pod_labels: [app]}\n", `include.pod_labels: "app" must be key=value`},
		"source in no route": {minimal + "  other:\n    type: logscale\n    url: https://x.example\nroutes:\n  - from: tetragon\n    to: [other]\nsources:\n  tetragon: {}\n  second:\n    type: tetragon\n    path: /x/y.log\n", `routes: source "second" is in no route`},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, _, err := Load(writeConfig(t, c.body), nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v\nwant it to contain %q", err, c.want)
			}
		})
	}
}

// Every problem is reported at once, not one per run.
func TestAllErrorsAtOnce(t *testing.T) {
	_, _, err := Load(writeConfig(t, minimal+"    linger: 5\n    batch_events: 0\n    format: csv\nstatus_interval: 30\nlog:\n  level: loud\n"), nil)
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"sinks.logscale.linger", "status_interval"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %s in:\n%v", want, err)
		}
	}
	// Value problems and range problems come in two rounds: decoding first.
	_, _, err = Load(writeConfig(t, minimal+"    batch_events: 0\n    format: csv\nlog:\n  level: loud\n"), nil)
	for _, want := range []string{"sinks.logscale.batch_events", "sinks.logscale.format", "log.level"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %s in:\n%v", want, err)
		}
	}
}

func TestEnvironmentAndFlagsOverrideTheFile(t *testing.T) {
	p := writeConfig(t, minimal+"    concurrency: 3\nstate_dir: /from/file\n")
	t.Setenv("SIEMSHIP_SINKS_LOGSCALE_CONCURRENCY", "4")
	t.Setenv("SIEMSHIP_SINKS_LOGSCALE_BATCH_BYTES", "2MiB")
	t.Setenv("SIEMSHIP_STATE_DIR", "/from/env")
	t.Setenv("SIEMSHIP_SINKS_LOGSCALE_URLL", "typo")
	t.Setenv("SIEMSHIP_LOGSCALE_TOKEN", "a token variable is not a typo")
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	AddFlags(fs)
	if err := fs.Parse([]string{"--state-dir=/from/flag"}); err != nil {
		t.Fatal(err)
	}
	c, warnings, err := Load(p, fs)
	if err != nil {
		t.Fatal(err)
	}
	l := c.Sink("logscale").LogScale
	if l.Concurrency != 4 || l.MaxBytes != 2<<20 || c.StateDir != "/from/flag" {
		t.Fatalf("concurrency=%d batch_bytes=%d state_dir=%s", l.Concurrency, l.MaxBytes, c.StateDir)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "SIEMSHIP_SINKS_LOGSCALE_URLL") {
		t.Fatalf("warnings = %q, want one naming the misspelled variable", warnings)
	}
}

// Named instances: the type defaults to the name, every key of every
// instance can be set from the environment, routes connect them.
func TestNamedComponentsAndRoutes(t *testing.T) {
	p := writeConfig(t, `
sources:
  tetragon:
    path: /var/run/cilium/tetragon/tetragon.log
sinks:
  logscale:
    url: https://cloud.community.humio.com
    token_file: /etc/siemship/logscale/token
  taegis:
    type: http
    url: https://ingest.example.com/v1/abc
    token_file: /etc/siemship/taegis/token
routes:
  - from: tetragon
    to: [logscale]
  - from: tetragon
    to: [taegis]
    include: {event_types: [process_kprobe]}
    exclude: {namespaces: ["kube-*"]}
`)
	t.Setenv("SIEMSHIP_SINKS_TAEGIS_URL", "https://ingest.example.com/v1/def")
	t.Setenv("SIEMSHIP_SINKS_TAEGIS_BATCH_EVENTS", "100")
	t.Setenv("SIEMSHIP_SINKS_TAEGIS_TOKEN", "not a typo either")
	c, warnings, err := Load(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings %q", warnings)
	}
	tg := c.Sink("taegis")
	if tg == nil || tg.Type != "http" || tg.HTTP == nil || tg.HTTP.URL != "https://ingest.example.com/v1/def" || tg.HTTP.MaxEvents != 100 ||
		tg.HTTP.AuthHeader != "Authorization" || tg.HTTP.DeadLetterPath != "/var/lib/siemship/taegis-dead-letter.ndjson" {
		t.Fatalf("taegis sink %+v", tg)
	}
	if c.Sink("logscale").Type != "logscale" || len(c.Routes) != 2 || c.Routes[1].Exclude.Namespaces[0] != "kube-*" ||
		c.Routes[1].Include.EventTypes[0] != "process_kprobe" {
		t.Fatalf("routes %+v", c.Routes)
	}
}

// A plain-http URL to loopback needs no opt-in; to another host it does.
func TestPlainHTTP(t *testing.T) {
	if _, _, err := Load(writeConfig(t, "sinks:\n  logscale:\n    url: http://127.0.0.1:8080\n"), nil); err != nil {
		t.Errorf("loopback: %v", err)
	}
	_, warnings, err := Load(writeConfig(t, "sinks:\n  logscale:\n    url: http://logscale.internal\n    allow_plain_http: true\n"), nil)
	if err != nil {
		t.Errorf("opted in: %v", err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "sink logscale sends its token over plain http to logscale.internal") {
		t.Errorf("opted in without a warning: %q", warnings)
	}
}

func TestNoFileNeedsOnlyTheURL(t *testing.T) {
	_, _, err := Load("", nil)
	if err == nil || !strings.Contains(err.Error(), "sinks.logscale.url") {
		t.Fatalf("no config: err = %v, want only the missing URL", err)
	}
	t.Setenv("SIEMSHIP_SINKS_LOGSCALE_URL", "https://cloud.community.humio.com")
	if _, _, err := Load("", nil); err != nil {
		t.Fatalf("URL from the environment: %v", err)
	}
}
