package k8smeta

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/siemship/siemship/internal/event"
)

// These tests need no API server: they drive parsing, splicing and the
// store directly.

func TestClosingBrace(t *testing.T) {
	for _, c := range []struct {
		raw   string
		ok    bool
		comma bool
		at    int
	}{
		{`{"a":1}`, true, true, 6},
		{`{"a":1}  ` + "\r\n", true, true, 6},
		{`{"a":1 }`, true, true, 7},
		{`{}`, true, false, 1},
		{`{ }`, true, false, 2},
		{`}`, false, false, 0},
		{`  }`, false, false, 0},
		{`{"a":1`, false, false, 0},
		{``, false, false, 0},
		{`[1]`, false, false, 0},
	} {
		at, comma, ok := closingBrace([]byte(c.raw))
		if ok != c.ok || (ok && (comma != c.comma || at != c.at)) {
			t.Errorf("closingBrace(%q) = %d, %v, %v; want %d, %v, %v", c.raw, at, comma, ok, c.at, c.comma, c.ok)
		}
	}
}

func TestShortContainerID(t *testing.T) {
	full := "551e161c47d8ff0eb665438a7bcd5b4e3ef5a297282b40a92b7c77d6bd168eb3"
	for _, in := range []string{"containerd://" + full, "cri-o://" + full, "docker://" + full, full} {
		if got := shortContainerID(in); got != full[:31] {
			t.Errorf("shortContainerID(%q) = %q", in, got)
		}
	}
	if got := shortContainerID(""); got != "" {
		t.Errorf("empty id: %q", got)
	}
}

func TestAllowlist(t *testing.T) {
	a := allowlist{"team", "app.kubernetes.io/*"}
	got := a.filter(map[string]string{"team": "x", "teams": "y", "app.kubernetes.io/name": "z", "app": "w"})
	if len(got) != 2 || got["team"] != "x" || got["app.kubernetes.io/name"] != "z" {
		t.Errorf("filter = %v", got)
	}
	if !(allowlist{"*"}).allows("anything") || (allowlist{}).allows("x") {
		t.Error("'*' must allow every key and an empty list none")
	}
}

// offlineEnricher has a store but no API server; it counts as synced.
func offlineEnricher(t testing.TB) *Enricher {
	t.Helper()
	cfg := DefaultConfig()
	cfg.NodeName = "n1"
	cfg.WaitForPod = 0 // no informer would ever fill the store
	m := newMetrics()
	e := &Enricher{
		cfg: cfg, store: newStore(cfg.Groups), metrics: m, health: newHealth(discardLogger(), m),
		missed: make(map[podKey]time.Time),
	}
	e.health.setSynced()
	return e
}

func TestEnrichOffline(t *testing.T) {
	e := offlineEnricher(t)
	line := []byte(`{"process_exec":{"process":{"binary":"/bin/sh"}}, "node_name":"n1" }`)
	b := event.NewBatch("tetragon", []event.Event{{Raw: line, Type: "process_exec"}, {Raw: []byte(`{}`), Type: ""}}, nil)
	e.Enrich(b)
	want := `{"process_exec":{"process":{"binary":"/bin/sh"}}, "node_name":"n1" ,"k8s":{"match":"host"}}`
	if got := string(b.Events[0].Raw); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if got := string(b.Events[1].Raw); got != `{}` {
		t.Errorf("event without a process changed: %s", got)
	}
}

func TestDisabled(t *testing.T) {
	e, err := New(Config{}, nil, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	line := []byte(`{"process_exec":{"process":{"binary":"/bin/sh"}}}`)
	b := event.NewBatch("tetragon", []event.Event{{Raw: line, Type: "process_exec"}}, nil)
	e.Enrich(b)
	if string(b.Events[0].Raw) != string(line) {
		t.Errorf("disabled enricher changed the event: %s", b.Events[0].Raw)
	}
	if ok, msg := e.Ready(); !ok {
		t.Errorf("disabled enricher not ready: %s", msg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := e.Run(ctx); err != nil {
		t.Errorf("Run: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Setenv("NODE_NAME", "")
	cfg := DefaultConfig()
	if _, err := New(cfg, prometheus.NewRegistry(), discardLogger()); err == nil || !strings.Contains(err.Error(), "node name") {
		t.Errorf("New without a node name: %v", err)
	}
	t.Setenv("NODE_NAME", "from-env")
	if got := cfg.nodeName(); got != "from-env" {
		t.Errorf("node name from NODE_NAME = %q", got)
	}
	cfg.PodRetention = 0
	if err := cfg.validate(); err == nil {
		t.Error("zero pod retention accepted")
	}
}

// FuzzEnrich feeds arbitrary lines through parsing and splicing: the result
// is either the input unchanged or the input with one more member, and is
// valid JSON whenever the input was a JSON object.
func FuzzEnrich(f *testing.F) {
	for _, s := range []string{
		`{"process_exec":{"process":{"pod":{"namespace":"a","name":"b","uid":"u"},"docker":"0123456789abcdef0123456789abcde"},"parent":{"docker":"x"}},"time":"t"}`,
		`{"process_kprobe":{"process":{"binary":"/bin/vi"}}}`,
		`{"rate_limit_info":{"number_of_dropped_process_events":"1"}}`,
		`{}`, `{"a":"\u00e9\"}"}`, `not json`, `{"process_exec":{"process":{"pod":{"uid":1}}}`,
	} {
		f.Add([]byte(s), "")
	}
	e := offlineEnricher(f)
	f.Fuzz(func(t *testing.T, raw []byte, typ string) {
		orig := bytes.Clone(raw)
		b := event.NewBatch("fuzz", []event.Event{{Raw: raw, Type: typ}}, nil)
		e.Enrich(b)
		out := b.Events[0].Raw
		if !bytes.Equal(raw, orig) {
			t.Fatal("Enrich modified the input bytes")
		}
		if bytes.Equal(out, orig) {
			return
		}
		if !bytes.Contains(out, []byte(`"k8s":{`)) {
			t.Fatalf("changed without a k8s member: %q", out)
		}
		var v map[string]any
		if json.Valid(orig) && json.Unmarshal(orig, &v) == nil && !json.Valid(out) {
			t.Fatalf("valid object %q became invalid %q", orig, out)
		}
	})
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
