package packaging

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// policy is the part of a TracingPolicy these checks read.
type policy struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name   string            `json:"name"`
		Labels map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec struct {
		PodSelector *map[string]any `json:"podSelector"`
		Kprobes     []struct {
			Call    string   `json:"call"`
			Syscall *bool    `json:"syscall"`
			Message string   `json:"message"`
			Tags    []string `json:"tags"`
			Args    []struct {
				Index int    `json:"index"`
				Type  string `json:"type"`
			} `json:"args"`
			Selectors []struct {
				MatchArgs []struct {
					Index  int      `json:"index"`
					Values []string `json:"values"`
				} `json:"matchArgs"`
			} `json:"selectors"`
		} `json:"kprobes"`
	} `json:"spec"`
}

func policyFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(repoPath("tracingpolicies", "*.yaml"))
	if err != nil || len(files) < 5 {
		t.Fatalf("tracing policies: %v %v", files, err)
	}
	return files
}

func readPolicies(t *testing.T) map[string]policy {
	t.Helper()
	out := map[string]policy{}
	for _, f := range policyFiles(t) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(data), "# siemship-") {
			t.Errorf("%s does not open with a comment saying what it reports", filepath.Base(f))
		}
		for part := range strings.SplitSeq(string(data), "\n---\n") {
			var p policy
			if err := yaml.Unmarshal([]byte(part), &p); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			out[p.Metadata.Name] = p
		}
	}
	return out
}

// The policies are Tetragon TracingPolicies as Tetragon's CRD schema
// describes them: the CRDs are installed into the API server, which then
// validates the policies (unknown fields and enum values included).
func TestTracingPoliciesAcceptedByTetragonsCRDs(t *testing.T) {
	crds := filepath.Join(root(), "testdata", "tetragon-crds")
	kubectl(t, "apply", "--server-side", "--field-manager=siemship-test", "-f", crds)
	kubectl(t, "wait", "--for=condition=Established", "--timeout=60s",
		"crd/tracingpolicies.cilium.io", "crd/tracingpoliciesnamespaced.cilium.io")

	out := kubectl(t, "apply", "--server-side", "--field-manager=siemship-test", "-f", repoPath("tracingpolicies"))
	var want []string
	for name := range readPolicies(t) {
		want = append(want, "tracingpolicy.cilium.io/"+name)
	}
	got := strings.Fields(kubectl(t, "get", "tracingpolicies", "-o", "name"))
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("stored policies %v, want %v\n%s", got, want, out)
	}
	kubectl(t, "delete", "-f", repoPath("tracingpolicies"))

	// The check can fail: a misspelled field and an unknown operator are
	// refused by the CRD's schema.
	for _, tc := range []struct{ from, to, want string }{
		{"    - call: security_bprm_check", "    - cal: security_bprm_check", "cal"},
		{"operator: Prefix", "operator: StartsWith", "StartsWith"},
	} {
		data, _ := os.ReadFile(repoPath("tracingpolicies", "exec-from-writable-dirs.yaml"))
		broken := strings.Replace(string(data), tc.from, tc.to, 1)
		if broken == string(data) {
			t.Fatalf("%q not found in the policy", tc.from)
		}
		errOut, err := kubectlErr(t, "apply", "--dry-run=server", "-f", writeTemp(t, "broken.yaml", broken))
		if err == nil || !strings.Contains(errOut, tc.want) {
			t.Errorf("a policy with %q was accepted: %v %s", tc.to, err, errOut)
		}
	}
}

// Tetragon-specific rules the CRD schema cannot express.
func TestTracingPoliciesAreConsistent(t *testing.T) {
	for name, p := range readPolicies(t) {
		if p.APIVersion != "cilium.io/v1alpha1" || p.Kind != "TracingPolicy" {
			t.Errorf("%s: %s %s", name, p.APIVersion, p.Kind)
		}
		if !strings.HasPrefix(name, "siemship-") || p.Metadata.Labels["app.kubernetes.io/part-of"] != "siemship" {
			t.Errorf("%s: name or part-of label", name)
		}
		if len(p.Spec.Kprobes) == 0 {
			t.Errorf("%s: no kprobes", name)
		}
		for _, k := range p.Spec.Kprobes {
			// syscall defaults to true in the CRD: a kernel function hooked as a
			// syscall would silently attach to nothing.
			if k.Syscall == nil || *k.Syscall != strings.HasPrefix(k.Call, "sys_") {
				t.Errorf("%s: %s must say syscall: %v explicitly", name, k.Call, strings.HasPrefix(k.Call, "sys_"))
			}
			if k.Message == "" || len(k.Message) > 256 || len(k.Tags) == 0 || len(k.Tags) > 16 {
				t.Errorf("%s: %s needs a message (≤ 256 characters) and 1 to 16 tags", name, k.Call)
			}
			declared := map[int]bool{}
			for _, a := range k.Args {
				declared[a.Index] = true
			}
			for _, s := range k.Selectors {
				for _, m := range s.MatchArgs {
					if !declared[m.Index] || len(m.Values) == 0 {
						t.Errorf("%s: %s filters on argument %d, which it does not read (or has no values)", name, k.Call, m.Index)
					}
				}
			}
		}
	}
}
