package packaging

import (
	"bufio"
	"debug/elf"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

func TestShellcheck(t *testing.T) {
	scripts, err := filepath.Glob(repoPath("hack", "*.sh"))
	if err != nil || len(scripts) < 4 {
		t.Fatalf("scripts: %v %v", scripts, err)
	}
	run(t, shellcheckBin(t), append([]string{"--external-sources", "--severity=style"}, scripts...)...)
}

// manifests/ is what `make manifests` renders from the chart.
func TestManifestsMatchTheChart(t *testing.T) {
	out := t.TempDir()
	cmd := []string{repoPath("hack", "manifests.sh"), out}
	t.Setenv("HELM", helmBin(t))
	run(t, "bash", cmd...)
	for _, name := range []string{"siemship.yaml", filepath.Join("examples", "logscale-secret.yaml")} {
		want, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(repoPath("manifests", name))
		if err != nil || string(got) != string(want) {
			t.Errorf("manifests/%s differs from the chart's rendering: run `make manifests` (%v)", name, err)
		}
	}
	entries, _ := os.ReadDir(repoPath("manifests"))
	for _, e := range entries {
		if !e.IsDir() && e.Name() != "siemship.yaml" {
			t.Errorf("manifests/%s is not rendered by make manifests", e.Name())
		}
	}
}

// staticBinary is the image's binary for arch, as hack/build-static.sh
// built it for the image (version "test"): one build per test binary.
func staticBinary(t *testing.T, arch string) string {
	t.Helper()
	return filepath.Join(imageDir(t), "linux-"+arch, "siemship")
}

// The image's binary is static (no dynamic loader, no shared libraries)
// for both image architectures, so it runs on distroless/static.
func TestImageBinaryIsStatic(t *testing.T) {
	for arch, machine := range map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64} {
		f, err := elf.Open(staticBinary(t, arch))
		if err != nil {
			t.Fatal(err)
		}
		libs, _ := f.ImportedLibraries()
		interp := false
		for _, p := range f.Progs {
			interp = interp || p.Type == elf.PT_INTERP
		}
		if f.Machine != machine || interp || len(libs) != 0 {
			t.Errorf("%s: machine %v, interpreter %v, libraries %v: want a static %v binary", arch, f.Machine, interp, libs, machine)
		}
		f.Close()
	}
	out := run(t, staticBinary(t, runtime.GOARCH), "version")
	if strings.TrimSpace(out) != "siemship test" {
		t.Errorf("version: %q", out)
	}
}

// The Dockerfile builds with hack/build-static.sh for the target platform,
// on distroless/static, as the same unprivileged user as `make image`'s
// image, with the OCI labels.
func TestDockerfile(t *testing.T) {
	data, err := os.ReadFile(repoPath("Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	df := string(data)
	for _, want := range []string{
		"FROM --platform=$BUILDPLATFORM golang:",
		"ARG TARGETARCH",
		`bash hack/build-static.sh /out/siemship "${TARGETARCH}" "${VERSION}"`,
		"FROM gcr.io/distroless/static-debian12",
		"COPY --from=build /out/siemship /usr/local/bin/siemship",
		"USER 65532:65532",
		`ENTRYPOINT ["/usr/local/bin/siemship"]`,
	} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	for _, label := range []string{"title", "description", "source", "version", "revision", "created"} {
		if !strings.Contains(df, "org.opencontainers.image."+label+"=") {
			t.Errorf("Dockerfile lacks the OCI label %s", label)
		}
	}
	mod, err := os.ReadFile(repoPath("go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(mod)
	if goVersion == nil || !strings.Contains(df, "ARG GO_VERSION="+string(goVersion[1])+"\n") {
		t.Errorf("the builder's Go is not the module's (go.mod: %s)", goVersion)
	}
}

// .dockerignore lets in every file the build reads: the module files, the
// build script and every package directory cmd/siemship depends on.
func TestDockerignoreAdmitsTheBuild(t *testing.T) {
	f, err := os.Open(repoPath(".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var allow []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); strings.HasPrefix(line, "!") {
			allow = append(allow, strings.TrimSuffix(line[1:], "/"))
		}
	}
	admitted := func(p string) bool {
		for _, a := range allow {
			if p == a || strings.HasPrefix(p, a+"/") {
				return true
			}
		}
		return false
	}
	out := run(t, "go", "list", "-deps", "-f", "{{if .Module}}{{if .Module.Main}}{{.Dir}}{{end}}{{end}}", "./cmd/siemship")
	need := []string{"go.mod", "go.sum", "hack/build-static.sh"}
	for dir := range strings.FieldsSeq(out) {
		rel, err := filepath.Rel(root(), dir)
		if err != nil {
			t.Fatal(err)
		}
		need = append(need, rel)
	}
	for _, p := range need {
		if !admitted(p) {
			t.Errorf(".dockerignore leaves out %s, which the image build needs", p)
		}
	}
}
