package packaging

import (
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/siemship/siemship/internal/config"
	"github.com/siemship/siemship/internal/leader"
	"github.com/siemship/siemship/internal/sources/falconapi"
)

// falconValues enables the Falcon Deployment with the default Secret and a
// second sink, so it must ship to the same two sinks as the DaemonSet.
const falconValues = `falcon:
  enabled: true
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

// falconPods is the rendered Falcon Deployment: its documents decoded (the
// receiver's fields without the Service, plus its RBAC).
type falconPods struct {
	receiver
	sa   corev1.ServiceAccount
	role rbacv1.Role
	rb   rbacv1.RoleBinding
}

func falconDeployment(t *testing.T, docs []doc) *falconPods {
	t.Helper()
	var f falconPods
	decodeStrict(t, findSource(t, docs, "Deployment", "templates/falcon/deployment.yaml"), &f.deploy)
	decodeStrict(t, findSource(t, docs, "PodDisruptionBudget", "templates/falcon/pdb.yaml"), &f.pdb)
	decodeStrict(t, findSource(t, docs, "ServiceAccount", "templates/falcon/serviceaccount.yaml"), &f.sa)
	decodeStrict(t, findSource(t, docs, "Role", "templates/falcon/role.yaml"), &f.role)
	decodeStrict(t, findSource(t, docs, "RoleBinding", "templates/falcon/rolebinding.yaml"), &f.rb)
	f.cfg = loadConfigMap(t, findSource(t, docs, "ConfigMap", "templates/falcon/configmap.yaml"))
	f.mounts, f.volumes = map[string]string{}, map[string]corev1.Volume{}
	for _, m := range f.deploy.Spec.Template.Spec.Containers[0].VolumeMounts {
		f.mounts[m.Name] = m.MountPath
	}
	for _, v := range f.deploy.Spec.Template.Spec.Volumes {
		f.volumes[v.Name] = v
	}
	return &f
}

// falconRoleFile is chart/siemship/files/falcon-role.yaml, the Role
// internal/leader's TestRoleMinimal proves sufficient and minimal.
func falconRoleFile(t *testing.T) rbacv1.Role {
	t.Helper()
	data, err := os.ReadFile(repoPath(chartDir, "files", "falcon-role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.Role
	if err := yaml.UnmarshalStrict(data, &role); err != nil || len(role.Rules) == 0 {
		t.Fatalf("files/falcon-role.yaml: %v (%d rules)", err, len(role.Rules))
	}
	return role
}

// checkFalconRole: the rendered Role is the proven file with, in place of
// its fixed names, the Lease and ConfigMap the agent's configuration names,
// in the namespace the configuration names; the binding gives it to the
// pods' ServiceAccount and nothing else.
func checkFalconRole(t *testing.T, f *falconPods, namespace string) {
	t.Helper()
	le := f.cfg.LeaderElection
	want := falconRoleFile(t).Rules
	for i := range want {
		want[i] = *want[i].DeepCopy()
		switch {
		case len(want[i].ResourceNames) == 0:
		case slices.Equal(want[i].Resources, []string{"leases"}):
			want[i].ResourceNames = []string{le.LeaseName}
		case slices.Equal(want[i].Resources, []string{"configmaps"}):
			want[i].ResourceNames = []string{le.OffsetsConfigMap}
		default:
			t.Fatalf("files/falcon-role.yaml: a named rule on %v", want[i].Resources)
		}
	}
	if !reflect.DeepEqual(f.role.Rules, want) {
		t.Errorf("Role rules\n%+v\nwant files/falcon-role.yaml with the configured names\n%+v", f.role.Rules, want)
	}
	var named []string
	for _, r := range f.role.Rules {
		named = append(named, r.ResourceNames...)
	}
	if !slices.Equal(named, []string{le.LeaseName, le.OffsetsConfigMap}) {
		t.Errorf("the Role names %v; the configuration lease %s, ConfigMap %s", named, le.LeaseName, le.OffsetsConfigMap)
	}
	if le.Namespace != namespace || f.role.Namespace != namespace || f.rb.Namespace != namespace || f.sa.Namespace != namespace {
		t.Errorf("namespaces: config %q, Role %q, RoleBinding %q, ServiceAccount %q; release %q",
			le.Namespace, f.role.Namespace, f.rb.Namespace, f.sa.Namespace, namespace)
	}
	pod := f.deploy.Spec.Template.Spec
	if f.rb.RoleRef.Kind != "Role" || f.rb.RoleRef.Name != f.role.Name || len(f.rb.Subjects) != 1 ||
		f.rb.Subjects[0].Kind != "ServiceAccount" || f.rb.Subjects[0].Name != f.sa.Name || f.rb.Subjects[0].Namespace != namespace ||
		pod.ServiceAccountName != f.sa.Name || pod.AutomountServiceAccountToken == nil || !*pod.AutomountServiceAccountToken {
		t.Errorf("binding %+v to %s; pods run as %s (automount %v)", f.rb.RoleRef, f.rb.Subjects, pod.ServiceAccountName, pod.AutomountServiceAccountToken)
	}
}

// The Falcon source is a leader-elected Deployment: at least two replicas,
// no hostPath, state_dir on an emptyDir (the offsets are in a ConfigMap);
// its configuration, loaded by the agent's own loader, has one
// falcon_stream source whose credential files are where the pod mounts the
// Secret, leader election on with this release's Lease and ConfigMap (the
// Role's names), and exactly the DaemonSet's sinks with their tokens
// mounted at the same paths.
func TestFalconDeploymentRender(t *testing.T) {
	t.Setenv("SIEMSHIP_SINKS_TAEGIS_TOKEN", "x")
	docs := render(t, "security", "-f", writeTemp(t, "falcon.yaml", falconValues))
	f := falconDeployment(t, docs)
	pod := f.deploy.Spec.Template.Spec
	c := pod.Containers[0]

	if *f.deploy.Spec.Replicas != 2 {
		t.Errorf("%d replicas, want 2 (a leader and a standby)", *f.deploy.Spec.Replicas)
	}
	if s := f.deploy.Spec.Strategy.RollingUpdate; s == nil || s.MaxUnavailable.IntValue() != 0 || s.MaxSurge.IntValue() != 1 {
		t.Errorf("rollout %+v: a new standby must be ready before an old pod stops", s)
	}
	for _, v := range pod.Volumes {
		if v.HostPath != nil {
			t.Errorf("volume %s is a hostPath: the offsets live in a ConfigMap", v.Name)
		}
	}
	if f.volumes["state"].EmptyDir == nil || f.cfg.StateDir != f.mounts["state"] {
		t.Errorf("state_dir %s; state volume %+v mounted at %s", f.cfg.StateDir, f.volumes["state"], f.mounts["state"])
	}
	if f.cfg.Kubernetes.Enabled {
		t.Error("Kubernetes metadata enabled: the Role does not grant it")
	}
	if sc := pod.SecurityContext; sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || *sc.RunAsUser == 0 || *c.SecurityContext.AllowPrivilegeEscalation ||
		!*c.SecurityContext.ReadOnlyRootFilesystem || c.SecurityContext.Capabilities.Drop[0] != "ALL" {
		t.Errorf("security context: pod %+v, container %+v", pod.SecurityContext, c.SecurityContext)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources %+v", c.Resources)
	}
	if c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.LivenessProbe.HTTPGet.Path != "/healthz" ||
		c.ReadinessProbe.HTTPGet.Port.StrVal != "metrics" || c.LivenessProbe.HTTPGet.Port.StrVal != "metrics" ||
		f.cfg.Listen != ":9090" || containerPort(c, "metrics") != 9090 {
		t.Errorf("probes %+v %+v, listen %s", c.ReadinessProbe, c.LivenessProbe, f.cfg.Listen)
	}
	var configEnv string
	for _, e := range c.Env {
		if e.Name == "SIEMSHIP_CONFIG" {
			configEnv = e.Value
		}
	}
	if configEnv != f.mounts["config"]+"/config.yaml" || f.volumes["config"].ConfigMap.Name != f.deploy.Name {
		t.Errorf("SIEMSHIP_CONFIG=%s; config volume %+v at %s", configEnv, f.volumes["config"].ConfigMap, f.mounts["config"])
	}
	if f.deploy.Spec.Template.Annotations["checksum/config"] == "" {
		t.Error("no checksum/config: a configuration change would not roll the pods")
	}

	// The source and its credentials.
	if len(f.cfg.Sources) != 1 {
		t.Fatalf("sources %+v: want the falcon source alone", f.cfg.Sources)
	}
	src := f.cfg.Source("falcon")
	if src == nil || src.Falcon == nil || src.Type != config.TypeFalcon || !config.LeaderOnly(src.Type) {
		t.Fatalf("no falcon_stream source falcon: %+v", f.cfg.Sources)
	}
	fc := src.Falcon
	if fc.ClientIDFile != f.secretFile(t, "falcon-credentials", "client_id") || fc.ClientSecretFile != f.secretFile(t, "falcon-credentials", "client_secret") {
		t.Errorf("client_id_file %s, client_secret_file %s; mounts %v", fc.ClientIDFile, fc.ClientSecretFile, f.mounts)
	}
	if name := f.volumes["falcon-credentials"].Secret.SecretName; name != "siemship-falcon-api" {
		t.Errorf("credentials Secret %s", name)
	}
	if fc.Cloud != "auto" || fc.AppID != "siemship" || fc.StartAt != "oldest" || len(fc.EventTypes) != 0 || fc.BaseURL != "" || fc.MemberCID != "" {
		t.Errorf("source defaults %+v", fc)
	}

	// Leader election: on, the release's names (equal to the agent's
	// defaults for the release siemship), client-go's durations.
	le := f.cfg.LeaderElection
	if !le.Enabled || le.LeaseName != "siemship-falcon" || le.OffsetsConfigMap != "siemship-falcon-offsets" ||
		le.Identity != "" || le.Kubeconfig != "" ||
		le.LeaseDuration != 15*time.Second || le.RenewDeadline != 10*time.Second || le.RetryPeriod != 2*time.Second {
		t.Errorf("leader_election %+v", le)
	}
	checkFalconRole(t, f, "security")

	// Every key of the source, the sinks and the top level is spelled out
	// (the Kubernetes metadata, off, needs only its switch).
	var cm corev1.ConfigMap
	decodeStrict(t, findSource(t, docs, "ConfigMap", "templates/falcon/configmap.yaml"), &cm)
	var tree map[string]any
	if err := yaml.Unmarshal([]byte(cm.Data["config.yaml"]), &tree); err != nil {
		t.Fatal(err)
	}
	for _, key := range configKeys("falcon", config.TypeFalcon) {
		if strings.HasPrefix(key, "kubernetes.") && key != "kubernetes.enabled" {
			continue
		}
		if !hasKey(tree, key) {
			t.Errorf("the Falcon ConfigMap lacks the key %s", key)
		}
	}

	// The same sinks as the DaemonSet, their tokens mounted at the same paths.
	ds := agentConfig(t, docs)
	if len(f.cfg.Sinks) != 2 || !reflect.DeepEqual(f.cfg.Sinks, ds.Sinks) {
		t.Errorf("Falcon sinks %+v\nDaemonSet sinks %+v", f.cfg.Sinks, ds.Sinks)
	}
	dsPod := daemonSet(t, docs).Spec.Template
	dsMounts := map[string]string{}
	for _, m := range dsPod.Spec.Containers[0].VolumeMounts {
		dsMounts[m.Name] = m.MountPath
	}
	for _, name := range []string{"logscale-token", "sink-taegis-token"} {
		if f.mounts[name] == "" || f.mounts[name] != dsMounts[name] {
			t.Errorf("token mount %s at %q, the DaemonSet's at %q", name, f.mounts[name], dsMounts[name])
		}
	}

	// Selectors: the budget finds the Falcon pods, the DaemonSet's selector
	// does not, and the Deployment's does not find the DaemonSet's pods.
	podLabels := labels.Set(f.deploy.Spec.Template.Labels)
	if !labels.SelectorFromSet(f.deploy.Spec.Selector.MatchLabels).Matches(podLabels) {
		t.Errorf("the Deployment's selector misses its pods %v", podLabels)
	}
	if !labels.SelectorFromSet(f.pdb.Spec.Selector.MatchLabels).Matches(podLabels) || f.pdb.Spec.MaxUnavailable.IntValue() != 1 {
		t.Errorf("budget %+v misses the pods %v", f.pdb.Spec, podLabels)
	}
	if labels.SelectorFromSet(daemonSet(t, docs).Spec.Selector.MatchLabels).Matches(podLabels) {
		t.Error("the DaemonSet's selector matches the Falcon pods")
	}
	if labels.SelectorFromSet(f.deploy.Spec.Selector.MatchLabels).Matches(labels.Set(dsPod.Labels)) {
		t.Error("the Falcon selector matches the DaemonSet's pods")
	}

	// Without falcon.enabled nothing of it is rendered.
	for _, d := range render(t, "security") {
		if strings.Contains(d.Source, "falcon") {
			t.Errorf("%s rendered with falcon disabled", d.Source)
		}
	}
}

// Another release gets its own Lease and ConfigMap, and the Role follows
// the configuration; the agent's defaults are not hard-wired.
func TestFalconNamesFollowTheRelease(t *testing.T) {
	t.Setenv("SIEMSHIP_SINKS_TAEGIS_TOKEN", "x")
	out := run(t, helmBin(t), "template", "blue", chartDir, "--namespace", "soc", "-f", writeTemp(t, "falcon.yaml", falconValues))
	f := falconDeployment(t, splitDocs(t, out))
	if le := f.cfg.LeaderElection; le.LeaseName != "blue-siemship-falcon" || le.OffsetsConfigMap != "blue-siemship-falcon-offsets" {
		t.Errorf("lease %s, ConfigMap %s", le.LeaseName, le.OffsetsConfigMap)
	}
	checkFalconRole(t, f, "soc")
}

// Every Falcon value reaches the configuration or the pod spec; the
// credentials are in a chart-created Secret and never in a ConfigMap.
func TestFalconAllOptions(t *testing.T) {
	docs := render(t, "siemship-all", "-f", allOptions)
	f := falconDeployment(t, docs)
	pod := f.deploy.Spec.Template.Spec
	c := pod.Containers[0]
	src := f.cfg.Source("crowdstrike")
	if src == nil || src.Falcon == nil {
		t.Fatalf("no falcon_stream source crowdstrike: %+v", f.cfg.Sources)
	}
	fc := src.Falcon
	if fc.Cloud != "eu-1" || fc.BaseURL != "https://falcon-proxy.example.com" || !fc.AllowPlainHTTP || fc.MemberCID != "0123456789abcdef0123456789abcdef" ||
		fc.AppID != "siemshipprod" || fc.FallbackAppID != "siemshipprod2" || fc.AppIDWait != 10*time.Minute ||
		!slices.Equal(fc.EventTypes, []string{"DetectionSummaryEvent", "UserActivityAuditEvent"}) || fc.StartAt != "newest" ||
		fc.ReadTimeout != 2*time.Minute || fc.RetryInitial != 2*time.Second || fc.RetryMax != 5*time.Minute || fc.MaxBatchEvents != 1000 ||
		fc.BatchBytes != 4<<20 || fc.Linger != 500*time.Millisecond || fc.MaxEventBytes != 2<<20 || fc.CheckpointInterval != 5*time.Second {
		t.Errorf("source %+v", fc)
	}
	le := f.cfg.LeaderElection
	if le.LeaseName != "tetragon-shipper-falcon" || le.OffsetsConfigMap != "tetragon-shipper-falcon-offsets" ||
		le.LeaseDuration != 30*time.Second || le.RenewDeadline != 20*time.Second || le.RetryPeriod != 4*time.Second {
		t.Errorf("leader_election %+v", le)
	}
	checkFalconRole(t, f, "siemship-all")
	if f.cfg.BufferBytes != 32<<20 || f.cfg.MemoryLimit != 80<<20 || len(f.cfg.Routes) != 2 ||
		f.cfg.Routes[0].From != "crowdstrike" || f.cfg.Routes[1].From != "crowdstrike_api" ||
		!slices.Equal(f.cfg.Routes[1].To, []string{"logscale", "taegis"}) || f.cfg.Routes[1].Include == nil ||
		!slices.Equal(f.cfg.Routes[1].Include.EventTypes, []string{"falcon_alerts", "falcon_incidents"}) {
		t.Errorf("buffer %d, memory limit %d, routes %+v", f.cfg.BufferBytes, f.cfg.MemoryLimit, f.cfg.Routes)
	}

	// The falcon_api source next to it, with its own Secret and keys.
	api := f.cfg.Source("crowdstrike_api")
	if api == nil || api.FalconAPI == nil || !config.LeaderOnly(api.Type) || len(f.cfg.Sources) != 2 {
		t.Fatalf("no leader-only falcon_api source crowdstrike_api: %+v", f.cfg.Sources)
	}
	ac := api.FalconAPI
	if ac.Cloud != "us-2" || ac.BaseURL != "https://falcon-api-proxy.example.com" || ac.MemberCID != "fedcba9876543210fedcba9876543210" ||
		!slices.Equal(ac.Resources, []string{"hosts", "alerts", "incidents"}) || ac.Interval != 5*time.Minute ||
		ac.StartFrom != "2025-06-01T00:00:00Z" ||
		!maps.Equal(ac.Filter, map[string]string{"alerts": "severity:>=50", "hosts": "platform_name:'Linux'"}) {
		t.Errorf("falcon_api source %+v", ac)
	}
	if f.volumes["falcon-api-credentials"].Secret.SecretName != "falcon-poller" ||
		ac.ClientIDFile != f.secretFile(t, "falcon-api-credentials", "poller-id") ||
		ac.ClientSecretFile != f.secretFile(t, "falcon-api-credentials", "poller-secret") {
		t.Errorf("falcon_api credentials %s %s; volume %+v", ac.ClientIDFile, ac.ClientSecretFile, f.volumes["falcon-api-credentials"].Secret)
	}
	// The stream's chart-created Secret projects the stream's keys alone.
	if items := f.volumes["falcon-credentials"].Secret.Items; len(items) != 2 {
		t.Errorf("falcon-credentials projects %+v, want the stream's id and secret", items)
	}
	if *f.deploy.Spec.Replicas != 3 || pod.TerminationGracePeriodSeconds == nil || *pod.TerminationGracePeriodSeconds != 45 ||
		pod.PriorityClassName != "high-priority" || pod.NodeSelector["node-role.example.com/security"] != "true" ||
		len(pod.Tolerations) != 1 || pod.Affinity.PodAntiAffinity == nil || c.Resources.Limits.Cpu().String() != "1" ||
		f.deploy.Spec.Template.Annotations["example.com/team"] != "soc" || f.deploy.Spec.Template.Labels["tier"] != "soc" ||
		f.pdb.Spec.MaxUnavailable.IntValue() != 2 {
		t.Errorf("pod spec %+v", f.deploy.Spec)
	}
	var secret corev1.Secret
	decodeStrict(t, findSource(t, docs, "Secret", "templates/falcon/secret.yaml"), &secret)
	if secret.StringData["id"] != "not-a-real-falcon-client-id" || secret.StringData["secret"] != "not-a-real-falcon-client-secret" ||
		f.volumes["falcon-credentials"].Secret.SecretName != secret.Name ||
		fc.ClientIDFile != f.secretFile(t, "falcon-credentials", "id") || fc.ClientSecretFile != f.secretFile(t, "falcon-credentials", "secret") {
		t.Errorf("Secret %s %v; volume %+v; files %s %s", secret.Name, secret.StringData, f.volumes["falcon-credentials"].Secret, fc.ClientIDFile, fc.ClientSecretFile)
	}
	for _, d := range docs {
		if d.Kind == "ConfigMap" && strings.Contains(d.Text, "not-a-real-falcon-client") {
			t.Errorf("the Falcon credentials are in the ConfigMap %s", d.Source)
		}
	}
}

// falconAPIValues, over falconValues, adds the falcon_api source with its
// defaults and the stream's Secret, and routes naming both sources.
const falconAPIValues = `falcon:
  api:
    enabled: true
  routes:
    - from: falcon
      to: [logscale, taegis]
    - from: falcon_api
      to: [logscale]
      include: {event_types: [falcon_alerts, falcon_hosts]}
`

// falcon.api.enabled adds a falcon_api source to the same leader-elected
// Deployment: its configuration, loaded by the agent's own loader, has both
// sources, each leader-only, under the same leader_election; the falcon_api
// source has every key spelled out, the agent's defaults and the files of
// the stream's Secret (one API client, both scopes), projected once; the
// Deployment's routes name both sources; and the Role, its binding and
// ServiceAccount are exactly the stream-only render's: the same Lease and
// ConfigMap, whose one more key is the API checkpoint.
func TestFalconAPIRender(t *testing.T) {
	t.Setenv("SIEMSHIP_SINKS_TAEGIS_TOKEN", "x")
	base := writeTemp(t, "falcon.yaml", falconValues)
	streamOnly := falconDeployment(t, render(t, "security", "-f", base))
	docs := render(t, "security", "-f", base, "-f", writeTemp(t, "falcon-api.yaml", falconAPIValues))
	f := falconDeployment(t, docs)

	if len(f.cfg.Sources) != 2 {
		t.Fatalf("sources %+v: want falcon and falcon_api", f.cfg.Sources)
	}
	stream, api := f.cfg.Source("falcon"), f.cfg.Source("falcon_api")
	if stream == nil || stream.Type != config.TypeFalcon || api == nil || api.Type != config.TypeFalconAPI || api.FalconAPI == nil {
		t.Fatalf("sources %+v: want falcon_stream falcon and falcon_api falcon_api", f.cfg.Sources)
	}
	for _, s := range f.cfg.Sources {
		if !config.LeaderOnly(s.Type) {
			t.Errorf("source %s (%s) is not leader-only: every replica would poll", s.Name, s.Type)
		}
	}
	if le := f.cfg.LeaderElection; !le.Enabled || !reflect.DeepEqual(le, streamOnly.cfg.LeaderElection) {
		t.Errorf("leader_election %+v, the stream-only render's %+v", le, streamOnly.cfg.LeaderElection)
	}
	if !reflect.DeepEqual(stream.Falcon, streamOnly.cfg.Source("falcon").Falcon) {
		t.Errorf("the stream source changed with falcon_api on:\n%+v\n%+v", stream.Falcon, streamOnly.cfg.Source("falcon").Falcon)
	}

	// The credentials: the stream's Secret, its two keys projected once,
	// read by both sources.
	ac := *api.FalconAPI
	id, secret := f.secretFile(t, "falcon-credentials", "client_id"), f.secretFile(t, "falcon-credentials", "client_secret")
	if ac.ClientIDFile != id || ac.ClientSecretFile != secret || stream.Falcon.ClientIDFile != id || stream.Falcon.ClientSecretFile != secret {
		t.Errorf("falcon_api files %s %s, falcon_stream files %s %s; mounted %s %s",
			ac.ClientIDFile, ac.ClientSecretFile, stream.Falcon.ClientIDFile, stream.Falcon.ClientSecretFile, id, secret)
	}
	v := f.volumes["falcon-credentials"].Secret
	if v.SecretName != "siemship-falcon-api" || len(v.Items) != 2 {
		t.Errorf("credentials volume %+v: want siemship-falcon-api, client_id and client_secret once each", v)
	}
	if _, ok := f.volumes["falcon-api-credentials"]; ok {
		t.Error("a second credentials volume without falcon.api.credentials.existingSecret")
	}

	// The agent's defaults, spelled out.
	want := falconapi.DefaultConfig()
	want.ClientIDFile, want.ClientSecretFile = id, secret
	if len(ac.Filter) == 0 {
		ac.Filter = nil
	}
	if !reflect.DeepEqual(ac, want) {
		t.Errorf("falcon_api source\n%+v\nwant the agent's defaults\n%+v", ac, want)
	}
	var cm corev1.ConfigMap
	decodeStrict(t, findSource(t, docs, "ConfigMap", "templates/falcon/configmap.yaml"), &cm)
	var tree map[string]any
	if err := yaml.Unmarshal([]byte(cm.Data["config.yaml"]), &tree); err != nil {
		t.Fatal(err)
	}
	for _, key := range configKeys("falcon_api", config.TypeFalconAPI) {
		if strings.HasPrefix(key, "sources.falcon_api.") && !hasKey(tree, key) {
			t.Errorf("the Falcon ConfigMap lacks the key %s", key)
		}
	}

	// Routes from both sources, by the event types falcon_api gives.
	r := f.cfg.Routes
	if len(r) != 2 || r[0].From != "falcon" || r[1].From != "falcon_api" || !slices.Equal(r[1].To, []string{"logscale"}) || r[1].Include == nil ||
		!slices.Equal(r[1].Include.EventTypes, []string{falconapi.EventType("alerts"), falconapi.EventType("hosts")}) {
		t.Errorf("routes %+v", r)
	}

	// The same Role (Lease and ConfigMap), binding and identity; the pods
	// roll with the new configuration.
	checkFalconRole(t, f, "security")
	if !reflect.DeepEqual(f.role, streamOnly.role) || !reflect.DeepEqual(f.rb, streamOnly.rb) || !reflect.DeepEqual(f.sa, streamOnly.sa) {
		t.Errorf("RBAC changed with falcon_api on:\nRole %+v\nwas  %+v", f.role, streamOnly.role)
	}
	if a, b := f.deploy.Spec.Template.Annotations["checksum/config"], streamOnly.deploy.Spec.Template.Annotations["checksum/config"]; a == b {
		t.Error("the same checksum/config with another configuration: the pods would not roll")
	}
}

// The falcon_api client's Secret: its own (falcon.api.credentials.
// existingSecret), mounted apart, or the stream's, with the same or other
// keys. The pods project exactly the keys the running sources read, so a
// Secret holding only the API client's keys is enough when the stream is
// off (a projected key that is missing keeps the pod from starting).
// Either way the Role is the stream-only render's.
func TestFalconAPICredentials(t *testing.T) {
	streamOnly := falconDeployment(t, render(t, "security", "-f", writeTemp(t, "falcon.yaml", falconValues)))
	for name, tc := range map[string]struct {
		values        string
		vol, secret   string
		id, key       string   // the falcon_api client's keys
		items         []string // the keys the volume projects
		streamRunning bool
	}{
		"API only with its own Secret": {values: `falcon:
  enabled: true
  stream: {enabled: false}
  api:
    enabled: true
    credentials: {existingSecret: falcon-poller, clientIdKey: id, clientSecretKey: secret}
`, vol: "falcon-api-credentials", secret: "falcon-poller", id: "id", key: "secret", items: []string{"id", "secret"}},
		"API only with other keys of the stream Secret": {values: `falcon:
  enabled: true
  stream: {enabled: false}
  api:
    enabled: true
    credentials: {clientIdKey: api_id, clientSecretKey: api_secret}
`, vol: "falcon-credentials", secret: "siemship-falcon-api", id: "api_id", key: "api_secret", items: []string{"api_id", "api_secret"}},
		"both with other keys of the stream Secret": {values: `falcon:
  enabled: true
  api:
    enabled: true
    credentials: {clientIdKey: api_id, clientSecretKey: api_secret}
`, vol: "falcon-credentials", secret: "siemship-falcon-api", id: "api_id", key: "api_secret",
			items: []string{"client_id", "client_secret", "api_id", "api_secret"}, streamRunning: true},
	} {
		t.Run(name, func(t *testing.T) {
			docs := render(t, "security", "-f", writeTemp(t, "falcon-api.yaml", tc.values))
			f := falconDeployment(t, docs)
			api := f.cfg.Source("falcon_api")
			if api == nil || api.FalconAPI == nil || !config.LeaderOnly(api.Type) {
				t.Fatalf("no leader-only falcon_api source: %+v", f.cfg.Sources)
			}
			if stream := f.cfg.Source("falcon"); (stream != nil) != tc.streamRunning || len(f.cfg.Sources) != 1+btoi(tc.streamRunning) {
				t.Errorf("sources %+v, stream running %v", f.cfg.Sources, tc.streamRunning)
			}
			for _, name := range []string{"falcon-credentials", "falcon-api-credentials"} {
				_, vol := f.volumes[name]
				_, mount := f.mounts[name]
				if vol != (name == tc.vol) || mount != vol {
					t.Errorf("volume %s: %v, mounted %v; want only %s", name, vol, mount, tc.vol)
				}
			}
			v := f.volumes[tc.vol].Secret
			var items []string
			for _, it := range v.Items {
				items = append(items, it.Key)
			}
			if v.SecretName != tc.secret || !slices.Equal(items, tc.items) {
				t.Errorf("volume %s: Secret %s projecting %v, want %s projecting %v", tc.vol, v.SecretName, items, tc.secret, tc.items)
			}
			if c := api.FalconAPI; c.ClientIDFile != f.secretFile(t, tc.vol, tc.id) || c.ClientSecretFile != f.secretFile(t, tc.vol, tc.key) {
				t.Errorf("client_id_file %s, client_secret_file %s; mounts %v", c.ClientIDFile, c.ClientSecretFile, f.mounts)
			}
			checkFalconRole(t, f, "security")
			if !reflect.DeepEqual(f.role.Rules, streamOnly.role.Rules) {
				t.Errorf("Role rules %+v, the stream-only render's %+v", f.role.Rules, streamOnly.role.Rules)
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// The README's falcon.yaml renders both sources into a configuration the
// agent accepts, the falcon_api source with the example's keys and the
// stream's Secret.
func TestReadmeFalconExampleRenders(t *testing.T) {
	readme, err := os.ReadFile(repoPath("README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var example string
	for _, b := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(readme), -1) {
		if strings.HasPrefix(b[1], "# falcon.yaml\n") {
			example = b[1]
		}
	}
	if example == "" {
		t.Fatal("no README example # falcon.yaml")
	}
	f := falconDeployment(t, render(t, "kube-system", "-f", writeTemp(t, "falcon.yaml", example)))
	stream, api := f.cfg.Source("falcon"), f.cfg.Source("falcon_api")
	if stream == nil || api == nil || api.FalconAPI == nil || len(f.cfg.Sources) != 2 {
		t.Fatalf("sources %+v: want falcon and falcon_api", f.cfg.Sources)
	}
	if c := api.FalconAPI; c.Filter["alerts"] != "severity:>=50" || c.ClientIDFile != stream.Falcon.ClientIDFile || c.ClientSecretFile != stream.Falcon.ClientSecretFile {
		t.Errorf("falcon_api source %+v", c)
	}
}

// The schema keeps at least two replicas and refuses typos and values the
// agent would refuse; a chart-created Secret needs both credentials.
func TestFalconRefusesBadValues(t *testing.T) {
	on := []string{"--set", "falcon.enabled=true"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--set", "falcon.replicas=1"}, "/falcon/replicas"},
		{[]string{"--set", "falcon.replica=3"}, "replica"},
		{[]string{"--set", "falcon.leaderelection.lease_duration=30s"}, "leaderelection"},
		{[]string{"--set", "falcon.config.appid=x"}, "appid"},
		{[]string{"--set", "falcon.config.start_at=end"}, "/falcon/config/start_at"},
		{[]string{"--set", "falcon.config.cloud=us-3"}, "/falcon/config/cloud"},
		{[]string{"--set", "falcon.config.app_id=siem-ship"}, "/falcon/config/app_id"},
		{[]string{"--set", "falcon.leaderElection.lease_duration=15"}, "/falcon/leaderElection/lease_duration"},
		{[]string{"--set", "falcon.credentials.createSecret=true", "--set", "falcon.credentials.clientSecret=s"}, "falcon.credentials.clientId is required"},
		{[]string{"--set", "falcon.credentials.existingSecret="}, "falcon.credentials.existingSecret is required"},
		{[]string{"--set", "falcon.stream.enabled=false"}, "enable falcon.stream.enabled (event streams), falcon.api.enabled (API resources) or both"},
		{[]string{"--set", "falcon.stream.enable=false"}, "enable"},
		{[]string{"--set", "falcon.api.enabled=true", "--set", "falcon.api.sourceName=falcon"}, "falcon.api.sourceName: \"falcon\" is falcon.sourceName too"},
		{[]string{"--set", "falcon.api.sourcename=x"}, "sourcename"},
		{[]string{"--set", "falcon.api.sourceName=Falcon-API"}, "/falcon/api/sourceName"},
		{[]string{"--set", "falcon.api.config.resources={hosts,detections}"}, "/falcon/api/config/resources"},
		{[]string{"--set", "falcon.api.config.resources={hosts,hosts}"}, "/falcon/api/config/resources"},
		{[]string{"--set", "falcon.api.config.interval=60"}, "/falcon/api/config/interval"},
		{[]string{"--set", "falcon.api.config.start_from=yesterday"}, "/falcon/api/config/start_from"},
		{[]string{"--set", "falcon.api.config.filter.alert=severity:>=50"}, "/falcon/api/config/filter"},
		{[]string{"--set", "falcon.api.config.filter.alerts= severity:>=50"}, "/falcon/api/config/filter/alerts"},
		{[]string{"--set", "falcon.api.config.cloud=us-3"}, "/falcon/api/config/cloud"},
		{[]string{"--set", "falcon.api.config.allow_plain_http=yes"}, "/falcon/api/config/allow_plain_http"},
		{[]string{"--set", "falcon.api.credentials.clientIdKey=a/b"}, "/falcon/api/credentials/clientIdKey"},
	} {
		_, errOut, err := tryRun(helmBin(t), append(append([]string{"template", "siemship", chartDir}, on...), tc.args...)...)
		if err == nil || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: err %v, want an error naming %q:\n%s", tc.args, err, tc.want, errOut)
		}
	}
}

// The Falcon objects are accepted by the real API server, applied
// server-side; then the ServiceAccount they create, with a token the API
// server mints for it, runs the agent's own elector and offsets store on
// the Lease and ConfigMap its configuration names: it leads, creates and
// updates the offsets ConfigMap, and is refused everything else (another
// ConfigMap, another Lease, Secrets).
func TestFalconAppliedToTheAPIServer(t *testing.T) {
	const ns = "siemship-falcon"
	ensureNamespace(t, ns)
	t.Setenv("SIEMSHIP_SINKS_TAEGIS_TOKEN", "x")
	var fd []doc
	docs := render(t, ns, "-f", writeTemp(t, "falcon.yaml", falconValues))
	for _, d := range docs {
		if strings.HasPrefix(d.Source, "templates/falcon/") {
			fd = append(fd, d)
		}
	}
	f := falconDeployment(t, docs)

	// The all-options objects (created Secret, other names) pass server validation too.
	ensureNamespace(t, "siemship-all")
	var all []doc
	for _, d := range render(t, "siemship-all", "-f", allOptions) {
		if strings.HasPrefix(d.Source, "templates/falcon/") {
			all = append(all, d)
		}
	}
	kubectl(t, "apply", "--server-side", "--dry-run=server", "--field-manager=siemship-test", "-f", joinDocs(t, all))

	// So do the falcon_api renders: next to the stream, and alone with its own Secret.
	for _, extra := range []string{falconAPIValues, "falcon:\n  stream: {enabled: false}\n  api:\n    enabled: true\n    credentials: {existingSecret: falcon-poller}\n"} {
		var api []doc
		for _, d := range render(t, ns, "-f", writeTemp(t, "falcon.yaml", falconValues), "-f", writeTemp(t, "falcon-api.yaml", extra)) {
			if strings.HasPrefix(d.Source, "templates/falcon/") {
				api = append(api, d)
			}
		}
		kubectl(t, "apply", "--server-side", "--dry-run=server", "--field-manager=siemship-test", "-f", joinDocs(t, api))
	}

	// helm install (server dry run, before the objects exist) says how to create the Secret and find the leader.
	conf, _ := cluster(t)
	notes := run(t, helmBin(t), "install", "siemship", chartDir, "--namespace", ns, "--kubeconfig", conf,
		"--dry-run=server", "--set", "rbac.create=false", "-f", writeTemp(t, "falcon.yaml", falconValues))
	for _, want := range []string{
		"kubectl -n siemship-falcon create secret generic siemship-falcon-api --from-literal=client_id=<client id> --from-literal=client_secret=<client secret>",
		"kubectl -n siemship-falcon rollout status deployment/siemship-falcon",
		"kubectl -n siemship-falcon get lease siemship-falcon",
		"ConfigMap siemship-falcon-offsets",
	} {
		if !strings.Contains(notes, want) {
			t.Errorf("helm install output lacks %q:\n%s", want, notes)
		}
	}

	file := joinDocs(t, fd)
	out := kubectl(t, "apply", "--server-side", "--field-manager=siemship-test", "-f", file)
	for _, want := range []string{"deployment.apps/siemship-falcon", "serviceaccount/siemship-falcon", "configmap/siemship-falcon",
		"role.rbac.authorization.k8s.io/siemship-falcon", "rolebinding.rbac.authorization.k8s.io/siemship-falcon",
		"poddisruptionbudget.policy/siemship-falcon"} {
		if !strings.Contains(out, want) {
			t.Errorf("apply output lacks %s:\n%s", want, out)
		}
	}
	var stored appsv1.Deployment
	if err := json.Unmarshal([]byte(kubectl(t, "-n", ns, "get", "deployment", "siemship-falcon", "-o", "json")), &stored); err != nil {
		t.Fatal(err)
	}
	if *stored.Spec.Replicas != 2 || stored.Spec.Template.Spec.ServiceAccountName != "siemship-falcon" {
		t.Errorf("stored Deployment: replicas %d, service account %s", *stored.Spec.Replicas, stored.Spec.Template.Spec.ServiceAccountName)
	}
	t.Cleanup(func() { kubectl(t, "delete", "-f", file) })

	// The pods' identity: a token for the chart's ServiceAccount.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	expiry := int64(600)
	tr, err := kenv.Client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, f.sa.Name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rc := rest.CopyConfig(kenv.Admin)
	rc.BearerToken, rc.UserAgent = tr.Status.Token, "siemship-falcon-test"
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}

	le := f.cfg.LeaderElection
	e, err := leader.NewWithClient(le, client, prometheus.NewRegistry(), slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- e.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("campaign: %v", err)
		}
	}()
	select {
	case <-e.Leading():
	case <-time.After(le.LeaseDuration):
		_, _, err := e.State()
		t.Fatalf("never led on lease %s/%s: %v", ns, le.LeaseName, err)
	}
	store := e.ConfigMap()
	if _, ok, err := store.Load(ctx, "falcon"); err != nil || ok {
		t.Fatalf("load before the first checkpoint: %v %v", ok, err)
	}
	for _, v := range []string{`{"0":41}`, `{"0":42}`} { // create, then update
		if err := store.Save(ctx, "falcon", []byte(v)); err != nil {
			t.Fatalf("save %s: %v", v, err)
		}
	}
	// The falcon_api source's checkpoint is one more key of the same
	// ConfigMap: the same Role covers it.
	const apiCheckpoint = `{"hosts":{"timestamp":"2025-06-01T00:00:00.000Z","ids":["hos-00000001"]}}`
	if err := store.Save(ctx, "falcon_api", []byte(apiCheckpoint)); err != nil {
		t.Fatalf("save the falcon_api checkpoint: %v", err)
	}
	if got, ok, err := store.Load(ctx, "falcon_api"); err != nil || !ok || string(got) != apiCheckpoint {
		t.Fatalf("load the falcon_api checkpoint: %q %v %v", got, ok, err)
	}
	cm, err := kenv.Client.CoreV1().ConfigMaps(ns).Get(ctx, le.OffsetsConfigMap, metav1.GetOptions{})
	if err != nil || cm.Data["falcon"] != `{"0":42}` || cm.Data["falcon_api"] != apiCheckpoint {
		t.Fatalf("offsets ConfigMap %s: %v %v", le.OffsetsConfigMap, cm, err)
	}
	t.Cleanup(func() {
		_ = kenv.Client.CoreV1().ConfigMaps(ns).Delete(context.Background(), le.OffsetsConfigMap, metav1.DeleteOptions{})
	})
	lease, err := kenv.Client.CoordinationV1().Leases(ns).Get(ctx, le.LeaseName, metav1.GetOptions{})
	if err != nil || lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity != e.Identity() {
		t.Fatalf("lease %s: %+v %v", le.LeaseName, lease, err)
	}
	t.Cleanup(func() {
		_ = kenv.Client.CoordinationV1().Leases(ns).Delete(context.Background(), le.LeaseName, metav1.DeleteOptions{})
	})

	// Nothing else: the ServiceAccount reads neither its own configuration
	// ConfigMap nor another Lease nor any Secret, and lists nothing.
	forbidden := func(what string, err error) {
		t.Helper()
		if !apierrors.IsForbidden(err) {
			t.Errorf("%s: %v, want Forbidden", what, err)
		}
	}
	_, err = client.CoreV1().ConfigMaps(ns).Get(ctx, f.deploy.Name, metav1.GetOptions{})
	forbidden("get the configuration ConfigMap", err)
	_, err = client.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
	forbidden("list ConfigMaps", err)
	_, err = client.CoordinationV1().Leases(ns).Get(ctx, "another-lease", metav1.GetOptions{})
	forbidden("get another Lease", err)
	_, err = client.CoreV1().Secrets(ns).Get(ctx, "siemship-falcon-api", metav1.GetOptions{})
	forbidden("get the credentials Secret", err)
	_, err = client.CoordinationV1().Leases("default").Get(ctx, le.LeaseName, metav1.GetOptions{})
	forbidden("get the Lease name in another namespace", err)
}
