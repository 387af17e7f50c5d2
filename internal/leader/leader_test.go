package leader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/siemship/siemship/internal/testenv/kube"
)

var (
	kenvOnce sync.Once
	kenv     *kube.Env
	kenvErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if kenv != nil {
		kenv.Close()
	}
	os.Exit(code)
}

func startKube(t *testing.T) *kube.Env {
	t.Helper()
	kenvOnce.Do(func() { kenv, kenvErr = kube.Start() })
	if kenvErr != nil {
		t.Fatalf("start kube-apiserver: %v", kenvErr)
	}
	return kenv
}

// fast are short durations, so that tests see renewals and takeovers.
func fast(ns string) Config {
	c := DefaultConfig()
	c.Enabled, c.Namespace = true, ns
	c.LeaseDuration, c.RenewDeadline, c.RetryPeriod = 3*time.Second, 2*time.Second, 500*time.Millisecond
	return c
}

func newElector(t *testing.T, cfg Config, rc *rest.Config, id string) *Elector {
	t.Helper()
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Identity = id
	e, err := NewWithClient(cfg, client, prometheus.NewRegistry(), slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// campaign runs e until the returned stop is called (or the test ends).
func campaign(t *testing.T, e *Elector) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = e.Run(ctx) })
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(stop)
	return stop
}

func waitFor(t *testing.T, timeout time.Duration, what string, ch <-chan struct{}) time.Duration {
	t.Helper()
	start := time.Now()
	select {
	case <-ch:
		return time.Since(start)
	case <-time.After(timeout):
		t.Fatalf("%s: not within %v", what, timeout)
		return 0
	}
}

func namespace(t *testing.T, env *kube.Env, name string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := env.Client.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return name
}

// TestTakeoverAndFencing: one leader at a time; a standby's write is
// refused; a graceful stop releases the Lease so the standby leads at once
// and reads what the leader wrote; a write by anyone else makes the leader
// abdicate on its next write.
func TestTakeoverAndFencing(t *testing.T) {
	env := startKube(t)
	ns := namespace(t, env, "takeover")
	ctx := context.Background()
	a, b := newElector(t, fast(ns), env.Admin, "a"), newElector(t, fast(ns), env.Admin, "b")
	stopA := campaign(t, a)
	waitFor(t, 10*time.Second, "a leads", a.Leading())
	campaign(t, b)
	if err := a.ConfigMap().Save(ctx, "falcon", []byte(`{"p":1}`)); err != nil {
		t.Fatal(err)
	}
	storeA := a.ConfigMap()
	if err := storeA.Save(ctx, "falcon", []byte(`{"p":2}`)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // b has observed a's lease by now
	if err := b.ConfigMap().Save(ctx, "falcon", []byte(`{"p":0}`)); !errors.Is(err, ErrNotHolding) {
		t.Fatalf("standby write: %v, want ErrNotHolding", err)
	}
	if ok, msg := b.Gate("falcon", nil).Ready(); !ok || !strings.Contains(msg, "held by a") {
		t.Errorf("standby Ready = %v %q", ok, msg)
	}
	stopA()
	d := waitFor(t, 5*time.Second, "b leads after a released", b.Leading())
	t.Logf("takeover after a graceful release: %v", d)
	if d > fast(ns).RetryPeriod*3 {
		t.Errorf("takeover after release took %v", d)
	}
	storeB := b.ConfigMap()
	got, ok, err := storeB.Load(ctx, "falcon")
	if err != nil || !ok || string(got) != `{"p":2}` {
		t.Fatalf("b loaded %q %v %v", got, ok, err)
	}
	// Someone else writes the ConfigMap: b's next write conflicts, b stops leading.
	cm, err := env.Client.CoreV1().ConfigMaps(ns).Get(ctx, fast(ns).OffsetsConfigMap, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data["falcon"] = `{"p":9}`
	if _, err := env.Client.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := storeB.Save(ctx, "falcon", []byte(`{"p":3}`)); !errors.Is(err, ErrConflict) {
		t.Fatalf("write after a foreign write: %v, want ErrConflict", err)
	}
	waitFor(t, time.Second, "b lost", b.Lost())
	if !errors.Is(b.Err(), ErrLost) {
		t.Errorf("Err = %v", b.Err())
	}
}

// TestRoleMinimal runs the election and the offsets store as a
// ServiceAccount bound to the chart's Role (files/falcon-role.yaml), then to
// that Role minus one rule or one verb: the full Role does everything
// (create and renew the Lease, create, read and update the ConfigMap), each
// cut one fails with an error naming the missing permission.
func TestRoleMinimal(t *testing.T) {
	env := startKube(t)
	full := repoRole(t)
	type variant struct {
		name    string
		rules   []rbacv1.PolicyRule
		missing string
	}
	variants := []variant{{"full", full.Rules, ""}}
	for i, rule := range full.Rules {
		msg := func(verb string) string {
			return fmt.Sprintf("cannot %s resource %q in API group %q", verb, rule.Resources[0], rule.APIGroups[0])
		}
		rules := slices.Delete(slices.Clone(full.Rules), i, i+1)
		variants = append(variants, variant{fmt.Sprintf("without rule %d (%s %v)", i, rule.Resources[0], rule.Verbs), rules, msg(rule.Verbs[0])})
		if len(rule.Verbs) == 1 {
			continue
		}
		for j, verb := range rule.Verbs {
			rules := slices.Clone(full.Rules)
			rules[i] = *rule.DeepCopy()
			rules[i].Verbs = slices.Delete(slices.Clone(rule.Verbs), j, j+1)
			variants = append(variants, variant{"without " + verb + " " + rule.Resources[0], rules, msg(verb)})
		}
	}
	for i, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			ns := fmt.Sprintf("role-%d", i)
			rc, err := env.RoleServiceAccountConfig(context.Background(), "siemship-falcon", ns, v.rules)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "kubeconfig")
			if err := kube.WriteKubeconfig(path, rc); err != nil {
				t.Fatal(err)
			}
			cfg := fast(ns)
			cfg.Kubeconfig = path // as the agent is configured outside a cluster
			e, err := New(cfg, prometheus.NewRegistry(), slog.New(slog.NewTextHandler(t.Output(), nil)))
			if err != nil {
				t.Fatal(err)
			}
			errs := exercise(t, e)
			if v.missing == "" {
				if len(errs) > 0 {
					t.Fatalf("the full Role fails: %v", errs)
				}
				return
			}
			for _, err := range errs {
				if strings.Contains(err, v.missing) {
					t.Logf("reported: %s", err)
					return
				}
			}
			t.Fatalf("no error names %q; errors: %v", v.missing, errs)
		})
	}
}

// exercise campaigns, then loads and saves twice (create, then update) and
// renews for two renew deadlines, returning every error it saw.
func exercise(t *testing.T, e *Elector) []string {
	ctx := context.Background()
	stop := campaign(t, e)
	defer stop()
	var errs []string
	note := func(err error) {
		if err != nil {
			errs = append(errs, err.Error())
		}
	}
	select {
	case <-e.Leading():
	case <-time.After(5 * time.Second):
		_, _, err := e.State()
		note(fmt.Errorf("never led: %w", err))
		return errs
	}
	store := e.ConfigMap()
	_, _, err := store.Load(ctx, "falcon")
	note(err)
	note(store.Save(ctx, "falcon", []byte("1")))
	note(store.Save(ctx, "falcon", []byte("2")))
	select {
	case <-e.Lost():
		_, _, err := e.State()
		note(fmt.Errorf("%w (last lease error: %w)", e.Err(), err))
	case <-time.After(2 * e.cfg.RenewDeadline):
	}
	return errs
}

func repoRole(t *testing.T) *rbacv1.Role {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		dir = filepath.Dir(dir)
	}
	f, err := os.Open(filepath.Join(dir, "chart", "siemship", "files", "falcon-role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var role rbacv1.Role
	if err := utilyaml.NewYAMLOrJSONDecoder(f, 4096).Decode(&role); err != nil {
		t.Fatalf("decode falcon-role.yaml: %v", err)
	}
	if role.Kind != "Role" || len(role.Rules) == 0 {
		t.Fatalf("falcon-role.yaml: kind %q with %d rules", role.Kind, len(role.Rules))
	}
	return &role
}
