package logscale

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestCommandConfig(t *testing.T) {
	env := map[string]string{
		EnvTokens:    " envtok=repo-a , envtok2=repo-b:kv ,",
		EnvAPITokens: "api1,api2",
	}
	o := cmdOptions{tokens: []string{"flagtok=repo-c:tetragon"}, apiTokens: []string{"api3"}, maxBody: "1MiB", discard: true}
	cfg, err := o.config(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Token{
		"envtok":  {Repo: "repo-a"},
		"envtok2": {Repo: "repo-b", Parser: "kv"},
		"flagtok": {Repo: "repo-c", Parser: "tetragon"},
	}
	if len(cfg.Tokens) != len(want) || cfg.MaxBodyBytes != 1<<20 || !cfg.Discard || len(cfg.APITokens) != 3 {
		t.Fatalf("config %+v", cfg)
	}
	for k, v := range want {
		if cfg.Tokens[k] != v {
			t.Errorf("token %s: %+v, want %+v", k, cfg.Tokens[k], v)
		}
	}
	for _, bad := range []string{"secret-token", "secret-token=", "=repo"} {
		o := cmdOptions{tokens: []string{bad}, maxBody: "1MiB"}
		_, err := o.config(func(string) string { return "" })
		if err == nil || strings.Contains(err.Error(), "secret-token") {
			t.Errorf("spec %q: error %v (must fail without echoing the token)", bad, err)
		}
	}
	if _, err := (&cmdOptions{maxBody: "lots"}).config(func(string) string { return "" }); err == nil {
		t.Error("bad --max-body accepted")
	}
}

// syncBuffer is a bytes.Buffer safe for the command's logger and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestCommandServesAndStops(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	t.Setenv(EnvTokens, "cmdtok=main")

	cmd := NewCommand()
	var logs syncBuffer
	cmd.SetErr(&logs)
	cmd.SetArgs([]string{"--listen", addr, "--log-interval", "50ms", "--api-token", "api"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()

	base := "http://" + addr
	waitFor(t, func() bool {
		resp, err := http.Get(base + "/api/v1/status")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == 200
	})
	req, _ := http.NewRequest(http.MethodPost, base+structuredPath, strings.NewReader(validBodies["humio-structured"]))
	req.Header.Set("Authorization", "Bearer cmdtok")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("ingest through the command: %d", resp.StatusCode)
	}
	waitFor(t, func() bool { return strings.Contains(logs.String(), "events=1") })

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("command returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("command did not stop after cancel")
	}
	if strings.Contains(logs.String(), "cmdtok") {
		t.Error("a token appeared in the logs")
	}
	if _, err := http.Get(base + "/api/v1/status"); err == nil {
		t.Error("still serving after stop")
	}
}
