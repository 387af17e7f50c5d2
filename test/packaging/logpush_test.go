package packaging

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/siemship/siemship/internal/config"
)

// logpushValues enables the Logpush receiver with HTTPS from an existing
// kubernetes.io/tls Secret, the example Ingress, and a second sink, so the
// receiver must ship to the same two sinks as the DaemonSet.
const logpushValues = `logpush:
  enabled: true
  tls:
    existingSecret: logpush-tls
  ingress:
    enabled: true
    className: nginx
    annotations:
      nginx.ingress.kubernetes.io/backend-protocol: HTTPS
    tls:
      - secretName: logpush-public-tls
        hosts: [logpush.example.com]
config:
  sinks:
    taegis:
      type: http
      url: https://ingest.example.com/v1/abc
sinkSecrets:
  taegis:
    existingSecret: taegis-key
    secretKey: key
`

// receiver is the rendered Logpush receiver: its documents decoded.
type receiver struct {
	deploy  appsv1.Deployment
	svc     corev1.Service
	pdb     policyv1.PodDisruptionBudget
	cfg     *config.Config // its ConfigMap, through the agent's loader
	mounts  map[string]string
	volumes map[string]corev1.Volume
}

func logpushReceiver(t *testing.T, docs []doc) *receiver {
	t.Helper()
	var r receiver
	decodeStrict(t, findSource(t, docs, "Deployment", "templates/logpush/deployment.yaml"), &r.deploy)
	decodeStrict(t, findSource(t, docs, "Service", "templates/logpush/service.yaml"), &r.svc)
	decodeStrict(t, findSource(t, docs, "PodDisruptionBudget", "templates/logpush/pdb.yaml"), &r.pdb)
	r.cfg = loadConfigMap(t, findSource(t, docs, "ConfigMap", "templates/logpush/configmap.yaml"))
	r.mounts, r.volumes = map[string]string{}, map[string]corev1.Volume{}
	for _, m := range r.deploy.Spec.Template.Spec.Containers[0].VolumeMounts {
		r.mounts[m.Name] = m.MountPath
	}
	for _, v := range r.deploy.Spec.Template.Spec.Volumes {
		r.volumes[v.Name] = v
	}
	return &r
}

// secretFile is the path where the pod finds key item of the Secret volume vol.
func (r *receiver) secretFile(t *testing.T, vol, item string) string {
	t.Helper()
	v, ok := r.volumes[vol]
	if !ok || v.Secret == nil {
		t.Fatalf("no Secret volume %s: %+v", vol, v)
	}
	for _, it := range v.Secret.Items {
		if it.Key == item {
			return filepath.Join(r.mounts[vol], it.Path)
		}
	}
	t.Fatalf("Secret volume %s does not project key %s: %+v", vol, item, v.Secret.Items)
	return ""
}

func containerPort(c corev1.Container, name string) int32 {
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	return 0
}

// The receiver is a stateless Deployment: at least two replicas, no
// hostPath, state_dir on an emptyDir; its configuration (loaded by the
// agent's own loader) has a logpush source whose TLS pair, secret file,
// port and state are where the pod spec puts them, and exactly the
// DaemonSet's sinks with their tokens mounted at the same paths.
func TestLogpushReceiverRender(t *testing.T) {
	t.Setenv("SIEMSHIP_SINKS_TAEGIS_TOKEN", "x")
	docs := render(t, "siemship", "-f", writeTemp(t, "logpush.yaml", logpushValues))
	r := logpushReceiver(t, docs)
	pod := r.deploy.Spec.Template.Spec
	c := pod.Containers[0]

	if *r.deploy.Spec.Replicas < 2 {
		t.Errorf("%d replicas", *r.deploy.Spec.Replicas)
	}
	if s := r.deploy.Spec.Strategy.RollingUpdate; s == nil || s.MaxUnavailable.IntValue() != 0 || s.MaxSurge.IntValue() != 1 {
		t.Errorf("rollout %+v: a new pod must be ready before an old one stops", s)
	}
	for _, v := range pod.Volumes {
		if v.HostPath != nil {
			t.Errorf("volume %s is a hostPath: the receiver keeps no state on the node", v.Name)
		}
	}
	if r.volumes["state"].EmptyDir == nil || r.cfg.StateDir != r.mounts["state"] {
		t.Errorf("state_dir %s; state volume %+v mounted at %s", r.cfg.StateDir, r.volumes["state"], r.mounts["state"])
	}
	if *pod.AutomountServiceAccountToken || r.cfg.Kubernetes.Enabled {
		t.Error("the receiver has Kubernetes API access or metadata enabled")
	}
	if sc := pod.SecurityContext; sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || *c.SecurityContext.AllowPrivilegeEscalation ||
		!*c.SecurityContext.ReadOnlyRootFilesystem || c.SecurityContext.Capabilities.Drop[0] != "ALL" {
		t.Errorf("security context: pod %+v, container %+v", pod.SecurityContext, c.SecurityContext)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources %+v", c.Resources)
	}
	if c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.LivenessProbe.HTTPGet.Path != "/healthz" ||
		c.ReadinessProbe.HTTPGet.Port.StrVal != "metrics" || r.cfg.Listen != ":9090" || containerPort(c, "metrics") != 9090 {
		t.Errorf("probes %+v %+v, listen %s", c.ReadinessProbe, c.LivenessProbe, r.cfg.Listen)
	}

	if len(r.cfg.Sources) != 1 {
		t.Fatalf("sources %+v: want the logpush source alone", r.cfg.Sources)
	}
	src := r.cfg.Source("cloudflare")
	if src == nil || src.Logpush == nil {
		t.Fatalf("no logpush source cloudflare: %+v", r.cfg.Sources)
	}
	lp := src.Logpush
	if lp.AllowPlainHTTP || lp.TLSCertFile != r.secretFile(t, "logpush-tls", "tls.crt") || lp.TLSKeyFile != r.secretFile(t, "logpush-tls", "tls.key") {
		t.Errorf("TLS pair %s %s (plain %v); mounts %v", lp.TLSCertFile, lp.TLSKeyFile, lp.AllowPlainHTTP, r.mounts)
	}
	if tls := r.volumes["logpush-tls"].Secret; tls.SecretName != "logpush-tls" {
		t.Errorf("TLS Secret %s", tls.SecretName)
	}
	if lp.SecretFile != r.secretFile(t, "logpush-auth", "secret") || r.volumes["logpush-auth"].Secret.SecretName != "siemship-logpush-auth" {
		t.Errorf("secret_file %s; auth volume %+v", lp.SecretFile, r.volumes["logpush-auth"].Secret)
	}
	if lp.Listen != ":8443" || containerPort(c, "logpush") != 8443 {
		t.Errorf("listen %s; container port %d", lp.Listen, containerPort(c, "logpush"))
	}
	var configEnv string
	for _, e := range c.Env {
		if e.Name == "SIEMSHIP_CONFIG" {
			configEnv = e.Value
		}
	}
	if filepath.Dir(configEnv) != r.mounts["config"] || r.volumes["config"].ConfigMap.Name != r.deploy.Name {
		t.Errorf("SIEMSHIP_CONFIG=%s; config volume %+v at %s", configEnv, r.volumes["config"].ConfigMap, r.mounts["config"])
	}

	// Every key of the source, the sinks and the top level is spelled out
	// (the Kubernetes metadata, off, needs only its switch).
	var cm corev1.ConfigMap
	decodeStrict(t, findSource(t, docs, "ConfigMap", "templates/logpush/configmap.yaml"), &cm)
	var tree map[string]any
	if err := yaml.Unmarshal([]byte(cm.Data["config.yaml"]), &tree); err != nil {
		t.Fatal(err)
	}
	for _, key := range configKeys("cloudflare", config.TypeLogpush) {
		if strings.HasPrefix(key, "kubernetes.") && key != "kubernetes.enabled" {
			continue
		}
		if !hasKey(tree, key) {
			t.Errorf("the receiver's ConfigMap lacks the key %s", key)
		}
	}

	// The same sinks as the DaemonSet, their tokens mounted at the same paths.
	ds := agentConfig(t, docs)
	if len(r.cfg.Sinks) != 2 || !reflect.DeepEqual(r.cfg.Sinks, ds.Sinks) {
		t.Errorf("receiver sinks %+v\nDaemonSet sinks %+v", r.cfg.Sinks, ds.Sinks)
	}
	dsMounts := map[string]string{}
	for _, m := range daemonSet(t, docs).Spec.Template.Spec.Containers[0].VolumeMounts {
		dsMounts[m.Name] = m.MountPath
	}
	for _, name := range []string{"logscale-token", "sink-taegis-token"} {
		if r.mounts[name] == "" || r.mounts[name] != dsMounts[name] {
			t.Errorf("token mount %s at %q, the DaemonSet's at %q", name, r.mounts[name], dsMounts[name])
		}
	}

	// Selectors: the Service and the budget find the receiver's pods; the
	// DaemonSet's selector does not (its pods are not the receiver's).
	podLabels := labels.Set(r.deploy.Spec.Template.Labels)
	if !labels.SelectorFromSet(r.svc.Spec.Selector).Matches(podLabels) {
		t.Errorf("Service selector %v misses the pods %v", r.svc.Spec.Selector, podLabels)
	}
	if !labels.SelectorFromSet(r.pdb.Spec.Selector.MatchLabels).Matches(podLabels) || r.pdb.Spec.MaxUnavailable.IntValue() != 1 {
		t.Errorf("budget %+v misses the pods %v", r.pdb.Spec, podLabels)
	}
	dsSel := daemonSet(t, docs).Spec.Selector.MatchLabels
	if labels.SelectorFromSet(dsSel).Matches(podLabels) {
		t.Errorf("the DaemonSet's selector %v matches the receiver's pods", dsSel)
	}
	if labels.SelectorFromSet(r.deploy.Spec.Selector.MatchLabels).Matches(labels.Set(daemonSet(t, docs).Spec.Template.Labels)) {
		t.Error("the receiver's selector matches the DaemonSet's pods")
	}
	var target bool
	for _, p := range r.svc.Spec.Ports {
		target = target || p.Name == "logpush" && p.TargetPort.StrVal == "logpush"
	}
	if !target {
		t.Errorf("Service ports %+v: none targets the container port logpush", r.svc.Spec.Ports)
	}

	var ing networkingv1.Ingress
	decodeStrict(t, findSource(t, docs, "Ingress", "templates/logpush/ingress.yaml"), &ing)
	be := ing.Spec.Rules[0].HTTP.Paths[0].Backend.Service
	if be.Name != r.svc.Name || be.Port.Name != "logpush" || ing.Spec.TLS[0].SecretName != "logpush-public-tls" ||
		ing.Annotations["nginx.ingress.kubernetes.io/backend-protocol"] != "HTTPS" {
		t.Errorf("Ingress backend %+v, tls %+v", be, ing.Spec.TLS)
	}

	// Without logpush.enabled nothing of the receiver is rendered.
	for _, d := range render(t, "siemship") {
		if strings.Contains(d.Source, "logpush") {
			t.Errorf("%s rendered with logpush disabled", d.Source)
		}
	}
}

// TLS terminated at the Ingress, plain HTTP to the pods; the shared
// secret from a chart-created Secret that never reaches the ConfigMap;
// routes of the receiver's own source (the all-options file).
func TestLogpushReceiverPlainHTTPBehindIngress(t *testing.T) {
	docs := render(t, "siemship-all", "-f", allOptions)
	r := logpushReceiver(t, docs)
	lp := r.cfg.Source("cf_zone").Logpush
	if !lp.AllowPlainHTTP || lp.TLSCertFile != "" || r.volumes["logpush-tls"].Name != "" {
		t.Errorf("plain HTTP %v, TLS pair %q, TLS volume %+v", lp.AllowPlainHTTP, lp.TLSCertFile, r.volumes["logpush-tls"])
	}
	if *r.deploy.Spec.Replicas != 3 || lp.Listen != ":9443" || containerPort(r.deploy.Spec.Template.Spec.Containers[0], "logpush") != 9443 {
		t.Errorf("replicas %d, listen %s", *r.deploy.Spec.Replicas, lp.Listen)
	}
	if lp.AuthHeader != "X-Logpush-Key" || lp.Dataset != "http_requests" || len(r.cfg.Routes) != 1 || r.cfg.Routes[0].From != "cf_zone" {
		t.Errorf("source %+v, routes %+v", lp, r.cfg.Routes)
	}
	var secret corev1.Secret
	decodeStrict(t, findSource(t, docs, "Secret", "templates/logpush/secret.yaml"), &secret)
	if secret.StringData["shared-secret"] != "not-a-real-logpush-secret" || r.volumes["logpush-auth"].Secret.SecretName != secret.Name ||
		lp.SecretFile != r.secretFile(t, "logpush-auth", "shared-secret") {
		t.Errorf("Secret %s %v; volume %+v; secret_file %s", secret.Name, secret.StringData, r.volumes["logpush-auth"].Secret, lp.SecretFile)
	}
	for _, d := range docs {
		if d.Kind == "ConfigMap" && strings.Contains(d.Text, "not-a-real-logpush-secret") {
			t.Errorf("the Logpush secret is in the ConfigMap %s", d.Source)
		}
	}
}

// The schema keeps at least two replicas; HTTPS without a TLS Secret is an
// error naming what to set.
func TestLogpushReceiverRefusesBadValues(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--set", "logpush.enabled=true", "--set", "logpush.tls.existingSecret=x", "--set", "logpush.replicas=1"}, "/logpush/replicas"},
		{[]string{"--set", "logpush.enabled=true"}, "logpush.tls.existingSecret is required"},
		{[]string{"--set", "logpush.enabled=true", "--set", "logpush.tls.enabled=false", "--set", "logpush.auth.createSecret=true"}, "logpush.auth.secret is required"},
		{[]string{"--set", "logpush.sourcename=x"}, "sourcename"},
		{[]string{"--set", "logpush.config.response_timeout=60"}, "/logpush/config/response_timeout"},
	} {
		_, errOut, err := tryRun(helmBin(t), append([]string{"template", "siemship", chartDir}, tc.args...)...)
		if err == nil || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: err %v, want an error naming %q:\n%s", tc.args, err, tc.want, errOut)
		}
	}
}

// The receiver's objects are accepted by the real API server, applied
// server-side (not only dry-run), and stored as rendered.
func TestLogpushReceiverAppliedToTheAPIServer(t *testing.T) {
	ensureNamespace(t, "siemship-logpush")
	var lp []doc
	for _, d := range render(t, "siemship-logpush", "-f", writeTemp(t, "logpush.yaml", logpushValues)) {
		if strings.HasPrefix(d.Source, "templates/logpush/") {
			lp = append(lp, d)
		}
	}
	file := joinDocs(t, lp)
	out := kubectl(t, "apply", "--server-side", "--field-manager=siemship-test", "-f", file)
	for _, want := range []string{"deployment.apps/siemship-logpush", "service/siemship-logpush", "configmap/siemship-logpush",
		"poddisruptionbudget.policy/siemship-logpush", "ingress.networking.k8s.io/siemship-logpush"} {
		if !strings.Contains(out, want) {
			t.Errorf("apply output lacks %s:\n%s", want, out)
		}
	}
	var stored appsv1.Deployment
	if err := json.Unmarshal([]byte(kubectl(t, "-n", "siemship-logpush", "get", "deployment", "siemship-logpush", "-o", "json")), &stored); err != nil {
		t.Fatal(err)
	}
	if *stored.Spec.Replicas != 2 || stored.Spec.Template.Spec.Volumes[len(stored.Spec.Template.Spec.Volumes)-1].EmptyDir == nil {
		t.Errorf("stored Deployment: replicas %d, volumes %+v", *stored.Spec.Replicas, stored.Spec.Template.Spec.Volumes)
	}
	kubectl(t, "delete", "-f", file)

	// The all-options receiver (LoadBalancer, plain HTTP, created Secret) passes server validation too.
	var all []doc
	ensureNamespace(t, "siemship-all")
	for _, d := range render(t, "siemship-all", "-f", allOptions) {
		if strings.HasPrefix(d.Source, "templates/logpush/") {
			all = append(all, d)
		}
	}
	kubectl(t, "apply", "--server-side", "--dry-run=server", "--field-manager=siemship-test", "-f", joinDocs(t, all))

	// helm install (server dry run) prints the destination_conf to give Cloudflare.
	conf, _ := cluster(t)
	notes := run(t, helmBin(t), "install", "siemship", chartDir, "--namespace", "siemship-logpush", "--kubeconfig", conf,
		"--dry-run=server", "--set", "rbac.create=false", "-f", writeTemp(t, "logpush.yaml", logpushValues))
	for _, want := range []string{
		"kubectl -n siemship-logpush rollout status deployment/siemship-logpush",
		"https://logpush.example.com/<dataset>?header_Authorization=Bearer%20<secret>&tags=dataset:<dataset>",
	} {
		if !strings.Contains(notes, want) {
			t.Errorf("helm install output lacks %q:\n%s", want, notes)
		}
	}
}
