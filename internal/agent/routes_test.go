package agent

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/siemship/siemship/internal/emulators/httpingest"
)

// End to end in one process: a real Tetragon source feeds an unfiltered
// route to LogScale and a filtered one to an HTTP ingest sink. LogScale gets
// every event, the HTTP sink only the kprobes, the filtered events are
// counted, and the checkpoint reaches the end of the file although most
// events never went to the filtered sink.
func TestFilteredAndUnfilteredRoutesEndToEnd(t *testing.T) {
	ingest := httpingest.New(httpingest.Config{Keys: []string{"taegis-key"}, Path: "/v1/abc"})
	srv := httptest.NewServer(ingest)
	defer srv.Close()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "taegis-key")
	os.WriteFile(keyFile, []byte("taegis-key\n"), 0o600)
	r := newRig(t, fmt.Sprintf(`  taegis:
    type: http
    url: %s/v1/abc
    token_file: %s
    linger: 50ms
routes:
  - from: tetragon
    to: [logscale]
  - name: kprobes
    from: tetragon
    to: [taegis]
    include: {event_types: [process_kprobe]}
`, srv.URL, keyFile))
	r.write(400)
	data, _ := os.ReadFile(r.path)
	kprobes := strings.Count(string(data), `{"process_kprobe":`)
	if kprobes == 0 || kprobes == 400 {
		t.Fatalf("the generator wrote %d kprobes of 400: the test needs a mix", kprobes)
	}
	r.start()
	r.waitEvents(400)
	r.eventually(func() bool { return len(ingest.Events()) >= kprobes }, "taegis has %d kprobes", kprobes)
	for _, l := range ingest.Events() {
		if !gjson.GetBytes(l, "process_kprobe").Exists() {
			t.Fatalf("taegis got an event its route filters out: %.200s", l)
		}
	}
	_, metrics := r.get("/metrics")
	want := fmt.Sprintf(`siemship_route_events_total{outcome="filtered",route="kprobes"} %d`, 400-kprobes)
	if !strings.Contains(metrics, want) {
		t.Errorf("/metrics lacks %s:\n%s", want, grep(metrics, "siemship_route_events_total"))
	}
	r.stop()
	if err := <-r.done; err != nil {
		t.Fatal(err)
	}
	var st struct {
		Position struct{ Offset int64 } `json:"position"`
	}
	raw, err := os.ReadFile(filepath.Join(r.dir, "state", "tetragon.json"))
	if err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(raw, &st)
	if st.Position.Offset != int64(len(data)) {
		t.Fatalf("checkpoint at %d, want the end of the file (%d)", st.Position.Offset, len(data))
	}
	if n := len(ingest.Events()); n != kprobes {
		t.Errorf("taegis stored %d events, want exactly the %d kprobes", n, kprobes)
	}
}

func grep(text, prefix string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
