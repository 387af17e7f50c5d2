package packaging

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/siemship/siemship/internal/config"
)

const (
	chartDir   = "chart/siemship"
	allOptions = "test/packaging/testdata/all-options.yaml"
)

// doc is one document of helm template's output.
type doc struct {
	Source string // template path, e.g. templates/daemonset.yaml
	Text   string // the document without the "# Source:" line
	Kind   string
	Name   string
}

// render runs helm template with the release name siemship.
func render(t *testing.T, namespace string, args ...string) []doc {
	t.Helper()
	out := run(t, helmBin(t), append([]string{"template", "siemship", chartDir, "--namespace", namespace}, args...)...)
	return splitDocs(t, out)
}

func splitDocs(t *testing.T, out string) []doc {
	t.Helper()
	var docs []doc
	for _, part := range strings.Split(out, "\n---\n") {
		part = strings.TrimPrefix(part, "---\n")
		src, rest, ok := strings.Cut(part, "\n")
		if !ok || !strings.HasPrefix(src, "# Source: ") {
			continue // a header comment before the first document
		}
		d := doc{Source: strings.TrimPrefix(src, "# Source: siemship/"), Text: rest}
		var meta struct {
			Kind     string
			Metadata struct{ Name string }
		}
		if err := yaml.Unmarshal([]byte(rest), &meta); err != nil {
			t.Fatalf("%s: %v", d.Source, err)
		}
		d.Kind, d.Name = meta.Kind, meta.Metadata.Name
		docs = append(docs, d)
	}
	if len(docs) == 0 {
		t.Fatalf("no documents in:\n%s", out)
	}
	return docs
}

func find(t *testing.T, docs []doc, kind string) doc {
	t.Helper()
	for _, d := range docs {
		if d.Kind == kind {
			return d
		}
	}
	t.Fatalf("no %s rendered", kind)
	return doc{}
}

// findSource returns the document rendered from the template src (e.g.
// templates/configmap.yaml) with kind; find returns the first of a kind,
// which for ConfigMap, Secret and Service may be the Logpush receiver's.
func findSource(t *testing.T, docs []doc, kind, src string) doc {
	t.Helper()
	for _, d := range docs {
		if d.Kind == kind && d.Source == src {
			return d
		}
	}
	t.Fatalf("no %s rendered from %s", kind, src)
	return doc{}
}

func kinds(docs []doc) []string {
	var ks []string
	for _, d := range docs {
		ks = append(ks, d.Kind)
	}
	slices.Sort(ks)
	return ks
}

// decodeStrict decodes a document into a typed object; a field the type
// does not have (a typo in a template) is an error.
func decodeStrict(t *testing.T, d doc, into any) {
	t.Helper()
	if err := yaml.UnmarshalStrict([]byte(d.Text), into); err != nil {
		t.Fatalf("%s does not decode as %T: %v", d.Source, into, err)
	}
}

func daemonSet(t *testing.T, docs []doc) *appsv1.DaemonSet {
	t.Helper()
	var ds appsv1.DaemonSet
	decodeStrict(t, find(t, docs, "DaemonSet"), &ds)
	return &ds
}

func TestHelmLint(t *testing.T) {
	run(t, helmBin(t), "lint", "--strict", chartDir)
	run(t, helmBin(t), "lint", "--strict", chartDir, "-f", allOptions)
}

func TestDefaultRender(t *testing.T) {
	docs := render(t, "kube-system")
	want := []string{"ClusterRole", "ClusterRoleBinding", "ConfigMap", "DaemonSet", "ServiceAccount"}
	if got := kinds(docs); !slices.Equal(got, want) {
		t.Fatalf("kinds %v, want %v (no Secret: it is created with kubectl)", got, want)
	}
	ds := daemonSet(t, docs)
	if ds.Namespace != "kube-system" {
		t.Errorf("namespace %q", ds.Namespace)
	}
	pod := ds.Spec.Template.Spec
	c := pod.Containers[0]

	sc := c.SecurityContext
	if sc == nil || *sc.RunAsUser != 0 || *sc.AllowPrivilegeEscalation || !*sc.ReadOnlyRootFilesystem ||
		sc.Privileged == nil || *sc.Privileged || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) ||
		len(sc.Capabilities.Add) != 0 || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("container security context: %+v", sc)
	}
	if pod.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Error("pod seccomp profile is not RuntimeDefault")
	}
	if len(pod.Tolerations) != 1 || pod.Tolerations[0].Operator != corev1.TolerationOpExists || pod.Tolerations[0].Key != "" {
		t.Errorf("tolerations %+v: want one that tolerates every taint, as Tetragon's", pod.Tolerations)
	}
	if pod.PriorityClassName != "system-node-critical" {
		t.Errorf("priority class %q", pod.PriorityClassName)
	}
	if s := ds.Spec.UpdateStrategy; s.Type != appsv1.RollingUpdateDaemonSetStrategyType ||
		s.RollingUpdate.MaxSurge.IntValue() != 0 || s.RollingUpdate.MaxUnavailable.IntValue() != 1 {
		t.Errorf("update strategy %+v", s)
	}
	var nodeName bool
	for _, e := range c.Env {
		nodeName = nodeName || e.Name == "NODE_NAME" && e.ValueFrom != nil && e.ValueFrom.FieldRef.FieldPath == "spec.nodeName"
	}
	if !nodeName {
		t.Error("no NODE_NAME from the downward API")
	}
	if c.LivenessProbe.HTTPGet.Path != "/healthz" || c.ReadinessProbe.HTTPGet.Path != "/readyz" ||
		c.LivenessProbe.HTTPGet.Port.StrVal != "metrics" || c.Ports[0].Name != "metrics" || c.Ports[0].ContainerPort != 9090 {
		t.Errorf("probes or metrics port: %+v %+v %+v", c.LivenessProbe, c.ReadinessProbe, c.Ports)
	}
	r := c.Resources
	if r.Limits.Memory().String() != "128Mi" || r.Requests.Memory().String() != "64Mi" || r.Requests.Cpu().String() != "100m" {
		t.Errorf("resources %+v", r)
	}

	vols := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		vols[v.Name] = v
	}
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m
	}
	exp := vols["tetragon-export"].HostPath
	if exp == nil || exp.Path != "/var/run/cilium/tetragon" || !mounts["tetragon-export"].ReadOnly ||
		mounts["tetragon-export"].MountPath != "/var/run/cilium/tetragon" {
		t.Errorf("export directory: %+v %+v", exp, mounts["tetragon-export"])
	}
	st := vols["state"].HostPath
	if st == nil || st.Path != "/var/lib/siemship" || *st.Type != corev1.HostPathDirectoryOrCreate || mounts["state"].ReadOnly {
		t.Errorf("state directory: %+v %+v", st, mounts["state"])
	}
	if vols["logscale-token"].Secret == nil || vols["logscale-token"].Secret.SecretName != "siemship-logscale" {
		t.Errorf("token secret volume: %+v", vols["logscale-token"])
	}
	for _, m := range c.VolumeMounts {
		if m.Name != "state" && !m.ReadOnly {
			t.Errorf("mount %s is writable", m.Name)
		}
	}
}

// The switch between Tetragon's old and new export directories, and an
// explicit directory, move the hostPath, the mount and the agent's path
// together.
func TestExportDirectory(t *testing.T) {
	for _, tc := range []struct {
		args []string
		dir  string
	}{
		{nil, "/var/run/cilium/tetragon"},
		{[]string{"--set", "tetragon.newExportDirectory=true"}, "/var/log/tetragon"},
		{[]string{"--set", "tetragon.exportDirectory=/data/tetragon/", "--set", "tetragon.exportFilename=x.log"}, "/data/tetragon"},
	} {
		docs := render(t, "kube-system", tc.args...)
		ds := daemonSet(t, docs)
		for _, v := range ds.Spec.Template.Spec.Volumes {
			if v.Name == "tetragon-export" && v.HostPath.Path != tc.dir {
				t.Errorf("%v: hostPath %s, want %s", tc.args, v.HostPath.Path, tc.dir)
			}
		}
		cfg := agentConfig(t, docs)
		if p := cfg.Source("tetragon").Tetragon.Path; filepath.Dir(p) != tc.dir {
			t.Errorf("%v: agent reads %s, want a file in %s", tc.args, p, tc.dir)
		}
	}
}

// agentConfig loads the DaemonSet's rendered ConfigMap's config.yaml with
// the agent's own loader, which rejects unknown keys and invalid values.
func agentConfig(t *testing.T, docs []doc) *config.Config {
	t.Helper()
	return loadConfigMap(t, findSource(t, docs, "ConfigMap", "templates/configmap.yaml"))
}

// loadConfigMap loads a rendered ConfigMap's config.yaml with the agent's loader.
func loadConfigMap(t *testing.T, d doc) *config.Config {
	t.Helper()
	cfg, _ := loadConfigMapTLS(t, d)
	return cfg
}

// sinkTLSPath is a file the chart mounts from a sinkTLS Secret.
var sinkTLSPath = regexp.MustCompile(`/etc/siemship/sink-tls/[a-z][a-z0-9_]*/[^"\s]+`)

// loadConfigMapTLS loads a rendered ConfigMap's config.yaml with the
// agent's loader. The loader checks that ca_file, cert_file and key_file
// exist; those the chart points into its sinkTLS mounts exist only in the
// pod, so empty stand-ins are made in a temporary directory and the
// configuration points there. podPath maps a loaded path back to the path
// the ConfigMap names.
func loadConfigMapTLS(t *testing.T, d doc) (cfg *config.Config, podPath func(string) string) {
	t.Helper()
	var cm corev1.ConfigMap
	decodeStrict(t, d, &cm)
	root := t.TempDir()
	for _, p := range sinkTLSPath.FindAllString(cm.Data["config.yaml"], -1) {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, p), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	text := sinkTLSPath.ReplaceAllStringFunc(cm.Data["config.yaml"], func(p string) string { return filepath.Join(root, p) })
	podPath = func(p string) string {
		if rest, ok := strings.CutPrefix(p, root); ok {
			return rest
		}
		return p
	}
	path := writeTemp(t, "config.yaml", text)
	t.Setenv("SIEMSHIP_LOGSCALE_TOKEN", "test-ingest-token")
	t.Setenv("NODE_NAME", "node-1")
	cfg, _, err := config.Load(path, nil)
	if err != nil {
		t.Fatalf("the agent rejects the rendered configuration: %v\n%s", err, cm.Data["config.yaml"])
	}
	return cfg, podPath
}

// configKeys lists the keys a ConfigMap must hold: every key the agent
// accepts, for the source named source of type typ and the sink logscale.
func configKeys(source, typ string) []string {
	var keys []string
	for _, k := range config.Keys() {
		switch {
		case k == "routes", strings.HasSuffix(k, ".<name>.type"):
			// Optional: no routes means every source to every sink; types are implied by the names.
		case strings.HasPrefix(k, "sources.<name>."):
			rest := strings.TrimPrefix(k, "sources.<name>.")
			if slices.Contains(config.TypeKeys("sources", typ), rest) {
				keys = append(keys, "sources."+source+"."+rest)
			}
		case strings.HasPrefix(k, "sinks.<name>."):
			rest := strings.TrimPrefix(k, "sinks.<name>.")
			if slices.Contains(config.TypeKeys("sinks", "logscale"), rest) {
				keys = append(keys, "sinks.logscale."+rest)
			}
		default:
			keys = append(keys, k)
		}
	}
	return keys
}

func hasKey(tree map[string]any, key string) bool {
	var cur any = tree
	for part := range strings.SplitSeq(key, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return false
		}
		if cur, ok = m[part]; !ok {
			return false
		}
	}
	return true
}

// The ConfigMap holds a complete configuration that the agent accepts, and
// its paths and port are where the pod spec puts the files and the port.
func TestConfigMapIsTheAgentsConfiguration(t *testing.T) {
	for name, args := range map[string][]string{"defaults": nil, "all options": {"-f", allOptions}} {
		t.Run(name, func(t *testing.T) {
			docs := render(t, "kube-system", args...)
			cfg := agentConfig(t, docs)

			var cm corev1.ConfigMap
			decodeStrict(t, findSource(t, docs, "ConfigMap", "templates/configmap.yaml"), &cm)
			var tree map[string]any
			if err := yaml.Unmarshal([]byte(cm.Data["config.yaml"]), &tree); err != nil {
				t.Fatal(err)
			}
			for _, key := range configKeys("tetragon", config.TypeTetragon) {
				// Leader election, off (only the Falcon Deployment elects), needs only its switch.
				if strings.HasPrefix(key, "leader_election.") && key != "leader_election.enabled" {
					continue
				}
				if !hasKey(tree, key) {
					t.Errorf("the ConfigMap lacks the key %s", key)
				}
			}

			ds := daemonSet(t, docs)
			c := ds.Spec.Template.Spec.Containers[0]
			mounts := map[string]string{}
			for _, m := range c.VolumeMounts {
				mounts[m.Name] = m.MountPath
			}
			if p := cfg.Source("tetragon").Tetragon.Path; filepath.Dir(p) != mounts["tetragon-export"] {
				t.Errorf("agent reads %s; export directory mounted at %s", p, mounts["tetragon-export"])
			}
			if cfg.StateDir != mounts["state"] {
				t.Errorf("state_dir %s; state mounted at %s", cfg.StateDir, mounts["state"])
			}
			var secretKey string
			for _, v := range ds.Spec.Template.Spec.Volumes {
				if v.Name == "logscale-token" {
					secretKey = v.Secret.Items[0].Path
				}
			}
			if tf := cfg.Sink("logscale").LogScale.TokenFile; tf != filepath.Join(mounts["logscale-token"], secretKey) {
				t.Errorf("token_file %s; secret key %s mounted at %s", tf, secretKey, mounts["logscale-token"])
			}
			if cfg.Listen != ":"+strconv.Itoa(int(c.Ports[0].ContainerPort)) {
				t.Errorf("listen %s; container port %d", cfg.Listen, c.Ports[0].ContainerPort)
			}
			var configEnv string
			for _, e := range c.Env {
				if e.Name == "SIEMSHIP_CONFIG" {
					configEnv = e.Value
				}
			}
			if filepath.Dir(configEnv) != mounts["config"] || filepath.Base(configEnv) != "config.yaml" {
				t.Errorf("SIEMSHIP_CONFIG=%s; ConfigMap mounted at %s", configEnv, mounts["config"])
			}
			if strings.Contains(cm.Data["config.yaml"], "not-a-real-token") {
				t.Error("the ingest token is in the ConfigMap")
			}
		})
	}
}

// walkSchema calls leaf for every value path whose schema has no fixed
// properties (a scalar, a list, or a free-form map).
func walkSchema(schema map[string]any, path []string, leaf func([]string)) {
	props, ok := schema["properties"].(map[string]any)
	if !ok {
		leaf(path)
		return
	}
	for k, sub := range props {
		walkSchema(sub.(map[string]any), append(slices.Clone(path), k), leaf)
	}
}

func lookup(tree map[string]any, path []string) (any, bool) {
	var cur any = tree
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[p]; !ok {
			return nil, false
		}
	}
	return cur, true
}

func readYAML(t *testing.T, path string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(repoPath(path))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(data, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

// values.yaml, values.schema.json and the all-options file describe the
// same keys, and the all-options file changes every one of them.
func TestAllOptionsCoverEveryValue(t *testing.T) {
	data, err := os.ReadFile(repoPath(chartDir, "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(data, &schema); err != nil {
		t.Fatal(err)
	}
	defaults, all := readYAML(t, chartDir+"/values.yaml"), readYAML(t, allOptions)
	walkSchema(schema, nil, func(path []string) {
		key := strings.Join(path, ".")
		def, inDefaults := lookup(defaults, path)
		if !inDefaults {
			if !slices.Contains([]string{"livenessProbe.successThreshold", "readinessProbe.successThreshold"}, key) {
				t.Errorf("%s is in the schema but not in values.yaml", key)
			}
			return
		}
		got, ok := lookup(all, path)
		// The schema refuses both monitors at once; the all-options file
		// enables the ServiceMonitor, TestAllOptionsRender the PodMonitor.
		// The all-options file runs both Falcon sources; TestFalconAPICredentials
		// switches the stream off.
		if key == "metrics.podMonitor.enabled" || key == "falcon.stream.enabled" {
			return
		}
		if !ok || reflect.DeepEqual(got, def) {
			t.Errorf("the all-options file does not change %s", key)
		}
	})
}

func TestSchemaRejectsTyposAndWrongTypes(t *testing.T) {
	bad := writeTemp(t, "bad.yaml", "config:\n  sinks:\n    logscale:\n      tags:\n        source: mine\n")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--set", "image.tagg=1.0"}, "tagg"},
		{[]string{"--set", "config.sinks.logscale.batchevents=100"}, "batchevents"},
		{[]string{"--set", "tetragon.newExportDir=true"}, "newExportDir"},
		{[]string{"--set", "config.log.level=verbose"}, "/config/log/level"},
		{[]string{"--set", "config.status_interval=30"}, "/config/status_interval"},
		{[]string{"--set", "config.sinks.logscale.batch_events=many"}, "/config/sinks/logscale/batch_events"},
		{[]string{"--set", "tetragon.newExportDirectory=yes"}, "/tetragon/newExportDirectory"},
		{[]string{"--set", "config.sinks.logscale.url=cloud.community.humio.com"}, "/config/sinks/logscale/url"},
		{[]string{"--set", "config.sinks.logscale.url=https://cloud.community.humio.com/api/v1/ingest/humio-structured"}, "/config/sinks/logscale/url"},
		{[]string{"-f", bad}, "/config/sinks/logscale/tags"},
		{[]string{"--set", "metrics.serviceMonitor.enabled=true", "--set", "metrics.podMonitor.enabled=true"}, "/metrics/podMonitor/enabled"},
		{[]string{"--set", "updateStrategy.type=Recreate"}, "/updateStrategy/type"},
		{[]string{"--set", "prometheusRule.lagFor=10 minutes"}, "/prometheusRule/lagFor"},
	} {
		_, errOut, err := tryRun(helmBin(t), append([]string{"template", "siemship", chartDir}, tc.args...)...)
		if err == nil || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: err %v, want a schema error naming %q:\n%s", tc.args, err, tc.want, errOut)
		}
	}
}

// The ClusterRole is files/clusterrole.yaml byte for byte: the file the
// Kubernetes metadata tests proved sufficient and minimal.
func TestClusterRoleIsTheProvenFile(t *testing.T) {
	want, err := os.ReadFile(repoPath(chartDir, "files", "clusterrole.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	check := func(where string, docs []doc) {
		t.Helper()
		d := find(t, docs, "ClusterRole")
		if got := strings.TrimSuffix(d.Text, "\n") + "\n"; got != string(want) {
			t.Errorf("%s: the ClusterRole differs from files/clusterrole.yaml:\n%s", where, got)
		}
	}
	docs := render(t, "kube-system")
	check("helm template", docs)
	manifests, err := os.ReadFile(repoPath("manifests", "siemship.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	check("manifests/siemship.yaml", splitDocs(t, string(manifests)))

	var crb struct {
		RoleRef struct{ Name string } `json:"roleRef"`
	}
	if err := yaml.Unmarshal([]byte(find(t, docs, "ClusterRoleBinding").Text), &crb); err != nil || crb.RoleRef.Name != find(t, docs, "ClusterRole").Name {
		t.Errorf("the binding refers to %q (%v)", crb.RoleRef.Name, err)
	}
}

func TestAllOptionsRender(t *testing.T) {
	docs := render(t, "kube-system", "-f", allOptions)
	// The LogScale token, the taegis one, the Logpush secret and the Falcon
	// credentials; the Logpush receiver's ConfigMap, Deployment, Service,
	// Ingress and budget; the Falcon Deployment's ConfigMap, budget,
	// ServiceAccount, Role and RoleBinding.
	want := []string{"ConfigMap", "ConfigMap", "ConfigMap", "DaemonSet", "Deployment", "Deployment", "Ingress",
		"PodDisruptionBudget", "PodDisruptionBudget", "PrometheusRule", "Role", "RoleBinding",
		"Secret", "Secret", "Secret", "Secret", "Service", "Service", "ServiceAccount", "ServiceMonitor"}
	if got := kinds(docs); !slices.Equal(got, want) {
		t.Fatalf("kinds %v, want %v", got, want)
	}
	ds := daemonSet(t, docs)
	pod := ds.Spec.Template.Spec
	c := pod.Containers[0]
	if c.Image != "registry.example.com/security/siemship@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" {
		t.Errorf("image %s: the digest wins over the tag", c.Image)
	}
	if pod.ServiceAccountName != "shipper-sa" || *pod.AutomountServiceAccountToken {
		t.Errorf("service account %s, automount %v: no API access without Kubernetes metadata", pod.ServiceAccountName, *pod.AutomountServiceAccountToken)
	}
	var secret corev1.Secret
	decodeStrict(t, findSource(t, docs, "Secret", "templates/secret.yaml"), &secret)
	for _, v := range pod.Volumes {
		if v.Name == "logscale-token" && (v.Secret.SecretName != secret.Name || v.Secret.Items[0].Key != "ingest-token") {
			t.Errorf("token volume %+v does not use the chart's Secret %s", v.Secret, secret.Name)
		}
	}
	if secret.StringData["ingest-token"] != "not-a-real-token" {
		t.Errorf("secret data %v", secret.StringData)
	}

	// The monitors select the pods' labels and scrape the named port.
	var svc corev1.Service
	decodeStrict(t, findSource(t, docs, "Service", "templates/service.yaml"), &svc)
	for k, v := range svc.Spec.Selector {
		if pod := ds.Spec.Template.Labels; pod[k] != v {
			t.Errorf("Service selector %s=%s does not match the pods", k, v)
		}
	}
	for _, kind := range []string{"ServiceMonitor", "PodMonitor"} {
		var m struct {
			Spec struct {
				Selector struct {
					MatchLabels map[string]string `json:"matchLabels"`
				} `json:"selector"`
				Endpoints    []struct{ Port string } `json:"endpoints"`
				PodEndpoints []struct{ Port string } `json:"podMetricsEndpoints"`
			} `json:"spec"`
			Metadata struct{ Labels map[string]string } `json:"metadata"`
		}
		from := docs
		if kind == "PodMonitor" {
			from = render(t, "kube-system", "-f", allOptions, "--set", "metrics.serviceMonitor.enabled=false", "--set", "metrics.podMonitor.enabled=true")
		}
		if err := yaml.Unmarshal([]byte(find(t, from, kind).Text), &m); err != nil {
			t.Fatal(err)
		}
		eps := append(m.Spec.Endpoints, m.Spec.PodEndpoints...)
		if len(eps) != 1 || eps[0].Port != "metrics" || m.Metadata.Labels["release"] != "prometheus" {
			t.Errorf("%s: endpoints %+v, labels %v", kind, eps, m.Metadata.Labels)
		}
		for k, v := range m.Spec.Selector.MatchLabels {
			labels := ds.Spec.Template.Labels
			if kind == "ServiceMonitor" {
				labels = svc.Labels
			}
			if labels[k] != v {
				t.Errorf("%s selects %s=%s, which its target lacks", kind, k, v)
			}
		}
	}
}

// Any number of sinks, each with its token from an existing or a
// chart-created Secret, and routes: the rendered configuration is what the
// agent accepts (its own loader, as `siemship check --config-only` runs it),
// and each token file is where the pod mounts that sink's Secret.
func TestChartSinksAndRoutes(t *testing.T) {
	values := writeTemp(t, "sinks.yaml", `config:
  sinks:
    taegis:
      type: http
      url: https://ingest.example.com/v1/abc
      batch_bytes: 2MiB
    backup:
      type: logscale
      url: https://cloud.us.humio.com
  routes:
    - from: tetragon
      to: [logscale, backup]
    - from: tetragon
      to: [taegis]
      include: {event_types: [process_kprobe]}
      exclude: {namespaces: ["kube-*"]}
sinkSecrets:
  taegis:
    existingSecret: taegis-key
    secretKey: key
  backup:
    createSecret: true
    token: backup-token-value
`)
	docs := render(t, "kube-system", "-f", values)
	t.Setenv("SIEMSHIP_SINKS_BACKUP_TOKEN", "x")
	cfg := agentConfig(t, docs)
	if len(cfg.Sinks) != 3 || len(cfg.Routes) != 2 || cfg.Sink("taegis").HTTP == nil || cfg.Sink("backup").LogScale == nil {
		t.Fatalf("sinks %+v routes %+v", cfg.Sinks, cfg.Routes)
	}
	ds := daemonSet(t, docs)
	mounts := map[string]string{}
	for _, m := range ds.Spec.Template.Spec.Containers[0].VolumeMounts {
		mounts[m.Name] = m.MountPath
	}
	secrets := map[string]string{}
	for _, v := range ds.Spec.Template.Spec.Volumes {
		if v.Secret != nil {
			secrets[v.Name] = v.Secret.SecretName + "/" + v.Secret.Items[0].Path
		}
	}
	if got := cfg.Sink("taegis").HTTP.TokenFile; got != mounts["sink-taegis-token"]+"/key" || secrets["sink-taegis-token"] != "taegis-key/key" {
		t.Errorf("taegis token_file %s, mounts %v, secrets %v", got, mounts, secrets)
	}
	if got := cfg.Sink("backup").LogScale.TokenFile; got != mounts["sink-backup-token"]+"/token" || secrets["sink-backup-token"] != "siemship-backup/token" {
		t.Errorf("backup token_file %s, mounts %v, secrets %v", got, mounts, secrets)
	}
	var created int
	for _, d := range docs {
		if d.Kind == "Secret" && strings.Contains(d.Text, "backup-token-value") {
			created++
		}
	}
	if created != 1 {
		t.Errorf("%d Secrets hold the backup token, want the chart-created one", created)
	}
	var cm corev1.ConfigMap
	decodeStrict(t, find(t, docs, "ConfigMap"), &cm)
	if strings.Contains(cm.Data["config.yaml"], "backup-token-value") {
		t.Error("a token reached the ConfigMap")
	}
	for _, tc := range []struct{ set, want string }{
		{"config.sinks.taegis.type=kafka", "/config/sinks/taegis"},
		{"config.sinks.Taegis.type=http", "Taegis"},
		{"config.routes[0].form=tetragon", "form"},
		{"sinkSecrets.taegis.secretkey=x", "secretkey"},
	} {
		_, errOut, err := tryRun(helmBin(t), "template", "siemship", chartDir, "-f", values, "--set", tc.set)
		if err == nil || !strings.Contains(errOut, tc.want) {
			t.Errorf("--set %s: err %v, want a schema error naming %q:\n%s", tc.set, err, tc.want, errOut)
		}
	}
}
