package cli

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	emulator "github.com/siemship/siemship/internal/emulators/logscale"
	"github.com/siemship/siemship/internal/sinks/logscale"
)

func runCheck(t *testing.T, url, token string) (string, error) {
	t.Helper()
	dir := t.TempDir()
	export := filepath.Join(dir, "tetragon.log")
	os.WriteFile(export, nil, 0o600)
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("state_dir: %s\nsinks:\n  logscale:\n    url: %s\nsources:\n  tetragon:\n    path: %s\n", filepath.Join(dir, "state"), url, export)), 0o600)
	t.Setenv(logscale.LegacyTokenEnv, token)
	var out bytes.Buffer
	root := newRoot()
	root.SetOut(&out)
	root.SetArgs([]string{"check", "--config", cfg})
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

func TestCheckSaysInPlainWordsWhatIsWrong(t *testing.T) {
	recv := emulator.New(emulator.Config{Tokens: map[string]emulator.Token{
		"good": {Name: "good", Repo: "r"}, "tok-7f3a-blk": {Name: "b", Repo: "r", Blocked: true},
	}})
	srv := httptest.NewServer(recv)
	defer srv.Close()
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	deadURL := "http://" + closed.Addr().String()
	closed.Close()

	cases := []struct {
		name, url, token string
		ok               bool
		want             []string
	}{
		{"accepted", srv.URL, "good", true, []string{"configuration: ok", "state_dir: ", "is writable", "source tetragon: ", "is readable",
			"sink logscale: token from environment variable SIEMSHIP_LOGSCALE_TOKEN", "sink logscale: reachable, token accepted"}},
		{"unknown token", srv.URL, "tok-9c1e-unk", false, []string{"sink logscale: PROBLEM: the ingest token was rejected: LogScale does not know it (401)"}},
		{"blocked token", srv.URL, "tok-7f3a-blk", false, []string{"sink logscale: PROBLEM: the ingest token was rejected: it is blocked (403)"}},
		{"unreachable", deadURL, "good", false, []string{"sink logscale: PROBLEM: LogScale is unreachable at"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := runCheck(t, c.url, c.token)
			if (err == nil) != c.ok {
				t.Fatalf("err = %v, want ok=%v\n%s", err, c.ok, out)
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if strings.Contains(out, c.token) && c.token != "good" {
				t.Errorf("output contains the token:\n%s", out)
			}
		})
	}
}

func TestCheckRejectsAnInvalidConfigNamingTheKey(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte("sinks:\n  logscale:\n    url: https://x\n    batch_evnts: 10\n"), 0o600)
	var out bytes.Buffer
	root := newRoot()
	root.SetOut(&out)
	root.SetArgs([]string{"check", "--config", cfg})
	if err := root.ExecuteContext(context.Background()); err == nil || !strings.Contains(out.String(), `unknown key "sinks.logscale.batch_evnts"`) {
		t.Fatalf("err = %v, output:\n%s", err, out.String())
	}
}

// check catches what run would then fail on: an unwritable state
// directory, a missing kubeconfig, a missing token, and says so.
func TestCheckCatchesWhatRunFailsOn(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	os.WriteFile(blocker, nil, 0o600)
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`state_dir: %s/sub
kubernetes:
  enabled: true
  node_name: n1
  kubeconfig: %s/missing-kubeconfig
sources:
  tetragon:
    path: %s/nowhere/tetragon.log
sinks:
  logscale:
    url: https://127.0.0.1:1
    token_file: %s/no-token
`, blocker, dir, dir, dir)), 0o600)
	var out bytes.Buffer
	root := newRoot()
	root.SetOut(&out)
	root.SetArgs([]string{"check", "--config", cfg})
	err := root.ExecuteContext(context.Background())
	if err == nil || !strings.Contains(out.String(), "kubernetes.kubeconfig: must be a readable kubeconfig file") {
		t.Fatalf("err = %v, output:\n%s", err, out.String())
	}
	os.WriteFile(cfg, []byte(fmt.Sprintf(`state_dir: %s/sub
sources:
  tetragon:
    path: %s/nowhere/tetragon.log
sinks:
  logscale:
    url: https://127.0.0.1:1
    token_file: %s/no-token
`, blocker, dir, dir)), 0o600)
	out.Reset()
	root = newRoot()
	root.SetOut(&out)
	root.SetArgs([]string{"check", "--config", cfg})
	err = root.ExecuteContext(context.Background())
	for _, want := range []string{
		"state_dir: PROBLEM: state_dir " + blocker + "/sub cannot be created",
		"source tetragon: PROBLEM: directory " + dir + "/nowhere does not exist",
		"sink logscale: PROBLEM: read LogScale ingest token file (sinks.logscale.token_file)",
		"3 problem(s) found",
	} {
		if !strings.Contains(out.String()+fmt.Sprint(err), want) {
			t.Errorf("output lacks %q:\n%s\n%v", want, out.String(), err)
		}
	}
}

func TestVersionFlag(t *testing.T) {
	var out bytes.Buffer
	root := newRoot()
	root.SetOut(&out)
	root.SetArgs([]string{"--version"})
	if err := root.ExecuteContext(context.Background()); err != nil || !strings.HasPrefix(out.String(), "siemship ") {
		t.Fatalf("--version: %v %q", err, out.String())
	}
}
