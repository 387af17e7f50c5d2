package config

import (
	"strings"
	"testing"
	"time"
)

// The falcon_api example loads: resources, interval, start_from
// and the per-resource filter map; secrets come from the environment
// variables SecretEnv names.
func TestFalconAPISource(t *testing.T) {
	c, warnings, err := Load(writeConfig(t, `
sources:
  falcon:
    type: falcon_api
    cloud: eu-1
    client_id_file: /etc/siemship/falcon/client_id
    client_secret_file: /etc/siemship/falcon/client_secret
    resources: [hosts, alerts, vulnerabilities, filevantage, incidents, behaviors]
    interval: 30s
    start_from: 2025-06-01T00:00:00Z
    filter:
      alerts: "severity:>=50"
sinks:
  logscale:
    url: https://cloud.community.humio.com
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range warnings {
		if strings.Contains(w, "CLIENT") {
			t.Errorf("secret env warned about: %s", w)
		}
	}
	f := c.Source("falcon").FalconAPI
	if f == nil || f.Cloud != "eu-1" || len(f.Resources) != 6 || f.Interval != 30*time.Second || f.Filter["alerts"] != "severity:>=50" {
		t.Fatalf("loaded %+v", f)
	}
	env := strings.Join(c.SecretEnv(), " ")
	if !strings.Contains(env, "SIEMSHIP_SOURCES_FALCON_CLIENT_ID") || !strings.Contains(env, "SIEMSHIP_SOURCES_FALCON_CLIENT_SECRET") {
		t.Errorf("SecretEnv: %s", env)
	}
	_, _, err = Load(writeConfig(t, `
sources:
  falcon:
    type: falcon_api
    resources: [hosts, detections]
    start_from: yesterday
    filter: {alerts: " x"}
sinks:
  logscale:
    url: https://cloud.community.humio.com
`), nil)
	for _, want := range []string{`sources.falcon.resources: must list only`, `sources.falcon.start_from: must be a duration`, `sources.falcon.filter.alerts`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not contain %q", err, want)
		}
	}
}
