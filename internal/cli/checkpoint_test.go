package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/siemship/siemship/internal/checkpoints"
	"github.com/siemship/siemship/internal/sources/falconapi"
)

func runCheckpointCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

// show prints every source's checkpoint in words; reset removes the
// Tetragon reader's (start_at applies) and sets a falcon_api resource's
// high-water mark (or drops it so start_from applies).
func TestCheckpointShowAndReset(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	cfg := filepath.Join(dir, "siemship.yaml")
	os.WriteFile(cfg, []byte("state_dir: "+state+`
sources:
  tetragon:
    path: `+filepath.Join(dir, "tetragon.log")+`
  falcon:
    type: falcon_api
    base_url: http://127.0.0.1:1
    resources: [hosts, alerts]
sinks:
  logscale:
    url: https://cloud.community.humio.com
`), 0o644)
	store, err := checkpoints.Open(state)
	if err != nil {
		t.Fatal(err)
	}
	store.Save("tetragon", map[string]any{"version": 1, "path": "/var/run/cilium/tetragon/tetragon.log",
		"position": map[string]any{"file": map[string]any{"name": "tetragon.log"}, "offset": 4096}})
	store.Save("falcon", falconapi.State{Version: 1, Resources: map[string]falconapi.Position{
		"hosts":  {Timestamp: "2025-06-01T10:00:00.123Z", IDs: []string{"a", "b"}},
		"alerts": {Timestamp: "2025-06-02T00:00:00Z"}}})

	out, err := runCheckpointCLI(t, "checkpoint", "show", "--config", cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"delivered up to byte 4096 of /var/run/cilium/tetragon/tetragon.log",
		"hosts: delivered up to 2025-06-01T10:00:00.123Z (and 2 record(s) at exactly that time)", "alerts: delivered up to 2025-06-02T00:00:00Z"} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}
	if _, err := runCheckpointCLI(t, "checkpoint", "reset", "--config", cfg, "--source", "falcon", "--resource", "hosts", "--to", "2025-05-01T00:00:00Z"); err != nil {
		t.Fatal(err)
	}
	var st falconapi.State
	store.Load("falcon", &st)
	if p := st.Resources["hosts"]; p.Timestamp != "2025-05-01T00:00:00Z" || len(p.IDs) != 0 || st.Resources["alerts"].Timestamp != "2025-06-02T00:00:00Z" {
		t.Errorf("after reset --resource hosts --to: %+v", st)
	}
	if _, err := runCheckpointCLI(t, "checkpoint", "reset", "--config", cfg, "--source", "falcon"); err != nil {
		t.Fatal(err)
	}
	st = falconapi.State{}
	store.Load("falcon", &st)
	if len(st.Resources) != 0 {
		t.Errorf("after reset without --to, positions remain: %+v", st)
	}
	if _, err := runCheckpointCLI(t, "checkpoint", "reset", "--config", cfg, "--source", "tetragon"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(store.Path("tetragon")); !os.IsNotExist(err) {
		t.Errorf("tetragon checkpoint still there: %v", err)
	}
	out, _ = runCheckpointCLI(t, "checkpoint", "show", "--config", cfg)
	if !strings.Contains(out, "source tetragon (tetragon, "+store.Path("tetragon")+"): no checkpoint") {
		t.Errorf("show after reset:\n%s", out)
	}
	if _, err := runCheckpointCLI(t, "checkpoint", "reset", "--config", cfg, "--source", "falcon", "--resource", "detections"); err == nil {
		t.Error("an unknown resource was accepted")
	}
}
