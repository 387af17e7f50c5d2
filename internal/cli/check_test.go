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

	"github.com/siemship/siemship/internal/config"
	emulator "github.com/siemship/siemship/internal/emulators/logscale"
)

func runCheck(t *testing.T, url, token string) (string, error) {
	t.Helper()
	dir := t.TempDir()
	export := filepath.Join(dir, "tetragon.log")
	os.WriteFile(export, nil, 0o600)
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("sinks:\n  logscale:\n    url: %s\nsources:\n  tetragon:\n    path: %s\n", url, export)), 0o600)
	t.Setenv(config.TokenEnv, token)
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
		{"accepted", srv.URL, "good", true, []string{"configuration: ok", "reachable", "ingest token: accepted"}},
		{"unknown token", srv.URL, "tok-9c1e-unk", false, []string{"REJECTED", "does not know it (401)"}},
		{"blocked token", srv.URL, "tok-7f3a-blk", false, []string{"REJECTED", "blocked (403)"}},
		{"unreachable", deadURL, "good", false, []string{"PROBLEM", "unreachable", "not checked"}},
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
