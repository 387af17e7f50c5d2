package packaging

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/siemship/siemship/internal/sinks/syslog"
)

// An ALog-style syslog sink over TLS with a client certificate from a
// cert-manager-shaped Secret (default keys), and a RELP-over-TLS relay with
// only a CA under another key.
const syslogValues = `config:
  sinks:
    alog:
      type: syslog
      address: alog.example.com:6514
      transport: tls
      format: rfc3164
      body: kv
      timezone: Asia/Tokyo
      ack: peer
      tls_server_name: alog.example.com
    relay:
      type: syslog
      address: relay.example.com:2514
      transport: relp
      tls_server_name: relay.example.com
      relp_window: 64
sinkTLS:
  alog:
    existingSecret: alog-tls
  relay:
    existingSecret: relay-ca
    caKey: bundle.pem
    certKey: ""
    keyKey: ""
logpush:
  enabled: true
  tls:
    existingSecret: logpush-tls
`

// The syslog sinks render into both ConfigMaps (the DaemonSet's and the
// Logpush receiver's) as configurations the agent's own loader accepts,
// with ca_file, cert_file and key_file set by the chart; each of those
// paths is a file the pod mounts from the named Secret under that key.
func TestChartSyslogSinkTLS(t *testing.T) {
	values := writeTemp(t, "syslog.yaml", syslogValues)
	docs := render(t, "kube-system", "-f", values)
	for _, c := range []struct{ configMap, workload string }{
		{"templates/configmap.yaml", "templates/daemonset.yaml"},
		{"templates/logpush/configmap.yaml", "templates/logpush/deployment.yaml"},
	} {
		t.Run(filepath.Base(filepath.Dir(c.workload))+"/"+filepath.Base(c.workload), func(t *testing.T) {
			cfg, podPath := loadConfigMapTLS(t, findSource(t, docs, "ConfigMap", c.configMap))
			var spec corev1.PodSpec
			if strings.HasSuffix(c.workload, "daemonset.yaml") {
				var ds appsv1.DaemonSet
				decodeStrict(t, findSource(t, docs, "DaemonSet", c.workload), &ds)
				spec = ds.Spec.Template.Spec
			} else {
				var d appsv1.Deployment
				decodeStrict(t, findSource(t, docs, "Deployment", c.workload), &d)
				spec = d.Spec.Template.Spec
			}
			alog, relay := cfg.Sink("alog"), cfg.Sink("relay")
			if alog == nil || alog.Syslog == nil || relay == nil || relay.Syslog == nil {
				t.Fatalf("sinks %+v: want syslog sinks alog and relay", cfg.Sinks)
			}
			a := alog.Syslog
			if a.Format != syslog.FormatRFC3164 || a.Body != syslog.BodyKV || a.Timezone != "Asia/Tokyo" || a.Transport != syslog.TransportTLS || a.Ack != syslog.AckPeer {
				t.Errorf("alog: format %s body %s timezone %s transport %s ack %s", a.Format, a.Body, a.Timezone, a.Transport, a.Ack)
			}
			want := map[string]string{ // pod path → Secret/key
				"/etc/siemship/sink-tls/alog/ca.crt":      "alog-tls/ca.crt",
				"/etc/siemship/sink-tls/alog/tls.crt":     "alog-tls/tls.crt",
				"/etc/siemship/sink-tls/alog/tls.key":     "alog-tls/tls.key",
				"/etc/siemship/sink-tls/relay/bundle.pem": "relay-ca/bundle.pem",
			}
			got := map[string]string{}
			for _, p := range []string{a.CAFile, a.CertFile, a.KeyFile, relay.Syslog.CAFile} {
				p = podPath(p)
				got[p] = secretItem(t, spec, p)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("files the configuration names → Secret/key the pod mounts there:\n got %v\nwant %v", got, want)
			}
			if relay.Syslog.CertFile != "" || relay.Syslog.KeyFile != "" {
				t.Errorf("relay: cert_file %q key_file %q, want none (certKey and keyKey empty)", relay.Syslog.CertFile, relay.Syslog.KeyFile)
			}
		})
	}

	for _, tc := range []struct {
		set  []string
		want string
	}{
		{[]string{"sinkTLS.alog.cakey=ca.pem"}, "cakey"},
		{[]string{"sinkTLS.alog.existingSecret="}, "/sinkTLS/alog/existingSecret"},
		{[]string{"config.sinks.alog.transprot=tls"}, "/config/sinks/alog"},
		{[]string{"config.sinks.alog.ack=maybe"}, "/config/sinks/alog"},
		{[]string{"config.sinks.alog.timezone="}, "/config/sinks/alog"},
		{[]string{"config.sinks.alog.address=alog.example.com"}, "/config/sinks/alog"},
		{[]string{"config.sinks.relay.relp_window=lots"}, "/config/sinks/relay"},
		{[]string{"sinkTLS.nosuch.existingSecret=x"}, "there is no sink nosuch"},
		{[]string{"config.sinks.taegis.type=http", "config.sinks.taegis.url=https://ingest.example.com/v1", "sinkTLS.taegis.existingSecret=x"}, "only syslog sinks"},
	} {
		args := []string{"template", "siemship", chartDir, "-f", values}
		for _, s := range tc.set {
			args = append(args, "--set", s)
		}
		_, errOut, err := tryRun(helmBin(t), args...)
		if err == nil || !strings.Contains(errOut, tc.want) {
			t.Errorf("--set %v: err %v, want an error naming %q:\n%s", tc.set, err, tc.want, errOut)
		}
	}
}

// secretItem returns "Secret/key" of the Secret volume item the pod's
// first container finds at path, failing if none is mounted there.
func secretItem(t *testing.T, spec corev1.PodSpec, path string) string {
	t.Helper()
	vols := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		vols[v.Name] = v
	}
	for _, m := range spec.Containers[0].VolumeMounts {
		if m.MountPath != filepath.Dir(path) {
			continue
		}
		v := vols[m.Name]
		if v.Secret == nil {
			t.Fatalf("%s is mounted from %+v, not a Secret", m.MountPath, v)
		}
		for _, it := range v.Secret.Items {
			if it.Path == filepath.Base(path) {
				return v.Secret.SecretName + "/" + it.Key
			}
		}
		t.Fatalf("the Secret %s mounted at %s has no item %s (items %+v)", v.Secret.SecretName, m.MountPath, filepath.Base(path), v.Secret.Items)
	}
	t.Fatalf("nothing is mounted at %s, where the configuration names %s", filepath.Dir(path), path)
	return ""
}

// The schema's syslogSink takes exactly the keys the syslog sink defines
// (its Config's mapstructure tags, plus type): a key added to the sink
// must reach the chart, and the chart must not accept a key the agent
// rejects.
func TestSchemaSyslogSinkIsTheSinksConfig(t *testing.T) {
	data, err := os.ReadFile(repoPath(chartDir, "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Definitions map[string]struct {
			Properties map[string]any `json:"properties"`
		} `json:"definitions"`
	}
	if err := json.Unmarshal(data, &schema); err != nil {
		t.Fatal(err)
	}
	var inSchema []string
	for k := range schema.Definitions["syslogSink"].Properties {
		inSchema = append(inSchema, k)
	}
	want := []string{"type"}
	rt := reflect.TypeFor[syslog.Config]()
	for i := range rt.NumField() {
		if tag := rt.Field(i).Tag.Get("mapstructure"); tag != "" {
			want = append(want, tag)
		}
	}
	slices.Sort(inSchema)
	slices.Sort(want)
	if !slices.Equal(inSchema, want) {
		t.Errorf("syslogSink properties %v, the sink's keys %v", inSchema, want)
	}
}

// The README's ALog-style example (Helm values with sinkTLS) renders into
// a configuration the agent accepts, with the certificates where the pod
// mounts them.
func TestReadmeSyslogExampleRenders(t *testing.T) {
	readme, err := os.ReadFile(repoPath("README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var example string
	for _, b := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(readme), -1) {
		if strings.Contains(b[1], "sinkTLS:") {
			example = b[1]
		}
	}
	if example == "" {
		t.Fatal("no README example with sinkTLS")
	}
	docs := render(t, "kube-system", "-f", writeTemp(t, "readme-syslog.yaml", example))
	cfg, podPath := loadConfigMapTLS(t, findSource(t, docs, "ConfigMap", "templates/configmap.yaml"))
	s := cfg.Sink("alog")
	if s == nil || s.Syslog == nil || s.Syslog.Format != syslog.FormatRFC3164 || s.Syslog.Body != syslog.BodyKV || s.Syslog.Timezone != "Asia/Tokyo" {
		t.Fatalf("alog sink %+v", s)
	}
	spec := daemonSet(t, docs).Spec.Template.Spec
	for _, p := range []string{s.Syslog.CAFile, s.Syslog.CertFile, s.Syslog.KeyFile} {
		if got := secretItem(t, spec, podPath(p)); !strings.HasPrefix(got, "alog-tls/") {
			t.Errorf("%s is mounted from %s, want the Secret alog-tls", podPath(p), got)
		}
	}
}
