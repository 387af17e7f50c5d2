package cli

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	emulator "github.com/siemship/siemship/internal/emulators/logscale"
	"github.com/siemship/siemship/logscale"
)

// runCLI runs the root command with args, as main does.
func runCLI(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	root := newRoot()
	root.SetArgs(args)
	root.SetOut(&stdout)
	root.SetErr(&stderr)
	err := root.ExecuteContext(context.Background())
	return stdout.String(), stderr.String(), err
}

func TestLogScaleSetupCommand(t *testing.T) {
	s := emulator.New(emulator.Config{APITokens: []string{"api-token-1"}, Repos: []string{"sec"}})
	ts := httptest.NewServer(s)
	defer ts.Close()
	t.Setenv(apiTokenEnv, "api-token-1")
	tokenFile := filepath.Join(t.TempDir(), "ingest-token")

	out, _, err := runCLI(t, "logscale", "setup", "--url", ts.URL, "--repo", "sec", "--token-out", tokenFile,
		"--ingest-url", "https://ingest.example")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(tokenFile); fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %v, want 0600", fi.Mode().Perm())
	}
	if e, ok := s.IngestTokens()[string(tok)]; !ok || e.Parser != "tetragon" || e.Repo != "sec" {
		t.Fatalf("the token written is not the repository's token bound to the parser: %+v", e)
	}
	if strings.Contains(out, string(tok)) || strings.Contains(out, "api-token-1") {
		t.Fatal("a token was printed")
	}
	for _, want := range []string{
		`parser "tetragon" created`,
		`ingest token "siemship" created`,
		"kubectl -n kube-system create secret generic siemship-logscale --from-file=token=" + tokenFile,
		"--set config.sinks.logscale.url=https://ingest.example",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	// With --token-out -, standard output is the token alone.
	out, errOut, err := runCLI(t, "logscale", "setup", "--url", ts.URL, "--repo", "sec", "--token-out", "-", "--dashboard=false")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(out) != string(tok) || !strings.Contains(errOut, `parser "tetragon" updated`) ||
		!strings.Contains(errOut, "--from-file=token=/dev/stdin") {
		t.Fatalf("stdout %q, stderr:\n%s", out, errOut)
	}
}

func TestLogScaleSetupNeedsAnAPIToken(t *testing.T) {
	t.Setenv(apiTokenEnv, "")
	_, _, err := runCLI(t, "logscale", "setup", "--url", "http://127.0.0.1:1", "--repo", "r")
	if err == nil || !strings.Contains(err.Error(), apiTokenEnv) {
		t.Fatalf("err = %v", err)
	}
}

func TestLogScalePackageCommand(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pkg.zip")
	if _, _, err := runCLI(t, "logscale", "package", "-o", path); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	want, _ := logscale.PackageZip()
	if !bytes.Equal(got, want) {
		t.Fatal("the written package differs from PackageZip")
	}
}
