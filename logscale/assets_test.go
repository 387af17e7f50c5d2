package logscale

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tidwall/gjson"
	"go.yaml.in/yaml/v3"

	emulator "github.com/siemship/siemship/internal/emulators/logscale"
	"github.com/siemship/siemship/internal/event"
	"github.com/siemship/siemship/internal/processing/tetragonparse"
	"github.com/siemship/siemship/internal/secret"
	sink "github.com/siemship/siemship/internal/sinks/logscale"
	"github.com/siemship/siemship/internal/tetragongen"
)

const (
	apiToken    = "api-secret"
	ingestToken = "ingest-secret"
	repo        = "tetragon"
)

func receiver(t *testing.T) (*emulator.Server, *httptest.Server) {
	t.Helper()
	s := emulator.New(emulator.Config{
		APITokens: []string{apiToken},
		Tokens:    map[string]emulator.Token{ingestToken: {Name: "siemship", Repo: repo}},
	})
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return s, ts
}

func postZip(t *testing.T, url string, zip []byte) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(zip))
	req.Header.Set("Authorization", "Bearer "+apiToken)
	req.Header.Set("Content-Type", "application/zip")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

func TestPackageIsAcceptedAndInstalls(t *testing.T) {
	zip, err := PackageZip()
	if err != nil {
		t.Fatal(err)
	}
	again, _ := PackageZip()
	if !bytes.Equal(zip, again) {
		t.Fatal("the package zip is not reproducible")
	}
	s, ts := receiver(t)
	code, body := postZip(t, ts.URL+"/api/v1/packages/analyze?view="+repo, zip)
	if code != http.StatusOK || !strings.Contains(body, `"parsers":1`) || !strings.Contains(body, `"dashboards":1`) {
		t.Fatalf("analyze: %d %s", code, body)
	}
	code, body = postZip(t, ts.URL+"/api/v1/packages/install?view="+repo+"&overwrite=true&queryOwnershipType=organization", zip)
	if code != http.StatusOK {
		t.Fatalf("install: %d %s", code, body)
	}
	ps := s.Parsers(repo)
	if len(ps) != 1 || ps[0].Name != "tetragon" || ps[0].Package != "siemship/tetragon" || len(ps[0].TestCases) == 0 {
		t.Fatalf("installed parsers: %+v", ps)
	}
	if ds := s.Dashboards(repo); len(ds) != 1 {
		t.Fatalf("installed dashboards: %+v", ds)
	}
	// The receiver is strict: a broken template in the package is refused.
	if code, _ := postZip(t, ts.URL+"/api/v1/packages/analyze?view="+repo, zip[:len(zip)/2]); code != http.StatusBadRequest {
		t.Fatalf("a truncated zip: %d, want 400", code)
	}
}

func TestTemplatesHaveTheContractShape(t *testing.T) {
	p, err := ParseParser(ParserTemplate())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.TagFields, []string{"source", "event_type"}) {
		t.Fatalf("tagFields %v: the structured path tags source and event_type", p.TagFields)
	}
	if len(p.TestCases) < 5 {
		t.Fatalf("%d test cases", len(p.TestCases))
	}
	var m map[string]any
	if err := yaml.Unmarshal(Manifest(), &m); err != nil {
		t.Fatal(err)
	}
	if m["name"] != "siemship/tetragon" || m["type"] != "application" {
		t.Fatalf("manifest: %v", m)
	}
	// The files on disk are the embedded ones (go:embed reads at build time).
	dir := "package"
	for _, name := range []string{ParserPath, DashboardPath, ManifestPath} {
		disk, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !bytes.Equal(disk, read(name)) {
			t.Fatalf("%s differs from the embedded copy (%v)", name, err)
		}
	}
}

// eventTypeRule is the parser script's rule for #event_type: the line's first
// key, "unknown" when that is one of the common fields.
var (
	firstKeyRe = regexp.MustCompile(`^\s*\{\s*"([a-z0-9_]{1,64})"`)
	commonKeys = regexp.MustCompile(`^(node_name|time|cluster_name|node_labels|aggregation_info)$`)
)

func eventTypeRule(raw string) string {
	m := firstKeyRe.FindStringSubmatch(raw)
	if m == nil || commonKeys.MatchString(m[1]) {
		return "unknown"
	}
	return m[1]
}

// agentParse runs siemship's own Tetragon parser on one line.
func agentParse(raw string) event.Event {
	b := event.NewBatch("tetragon", []event.Event{{Raw: []byte(raw), Size: len(raw)}}, func() {})
	tetragonparse.New(prometheus.NewRegistry(), slog.New(slog.DiscardHandler)).Parse(b)
	return b.Events[0]
}

// The parser's script decides #event_type and @timestamp the way siemship's
// parser does (the script itself needs LogScale's engine to run; its rules
// are mirrored here and checked against the agent on varied events).
func TestParserRulesMatchTheAgent(t *testing.T) {
	var lines []string
	p, _ := ParseParser(ParserTemplate())
	for _, tc := range p.TestCases {
		lines = append(lines, tc.Event.RawString)
	}
	gen := tetragongen.New(7, "node-a")
	for i := range 300 {
		lines = append(lines, string(gen.Line(nil, i)))
	}
	for _, l := range lines {
		ev := agentParse(l)
		if got := eventTypeRule(l); got != ev.Type {
			t.Fatalf("parser rule says %q, agent says %q for %.80s", got, ev.Type, l)
		}
		// parseTimestamp with java.time semantics (the emulator's), not
		// Go's RFC 3339 parser, which takes any fraction width.
		ms, err := emulator.ScriptTimestamp(p.Script, l)
		if err != nil || ms != ev.Time {
			t.Fatalf("the parser's parseTimestamp gives %d, the agent %d (%v) for time %s", ms, ev.Time, err, gjson.Get(l, "time"))
		}
	}
}

// The parser's test cases pass where the emulator can run them
// (parseJson and parseTimestamp with java.time semantics), and they cover
// every width of Tetragon's times: 0, 3, 6 and 9 fractional digits.
func TestParserTestCasesPassInTheEmulator(t *testing.T) {
	failures, err := emulator.CheckParserTemplate(string(ParserTemplate()))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range failures {
		t.Error(f)
	}
	p, _ := ParseParser(ParserTemplate())
	widths := map[int]bool{}
	fraction := regexp.MustCompile(`:\d\d(?:\.(\d+))?Z$`)
	for _, tc := range p.TestCases {
		m := fraction.FindStringSubmatch(gjson.Get(tc.Event.RawString, "time").String())
		asserted := false
		for _, a := range tc.Assertions {
			_, has := a.FieldsHaveValues["@timestamp"]
			asserted = asserted || has
		}
		if m != nil && asserted {
			widths[len(m[1])] = true
		}
	}
	for _, w := range []int{0, 3, 6, 9} {
		if !widths[w] {
			t.Errorf("no test case asserts @timestamp of a time with %d fractional digits", w)
		}
	}

	// The check can fail: with LogScale's default format (a fixed
	// nine-digit fraction) the millisecond and second test cases fail.
	broken := strings.Replace(string(ParserTemplate()), `parseTimestamp(field=time, format="yyyy-MM-dd'T'HH:mm:ss[.SSSSSSSSS][.SSSSSS][.SSS]XXXXX")`, "parseTimestamp(field=time)", 1)
	if broken == string(ParserTemplate()) {
		t.Fatal("the parser's parseTimestamp call is not the one this test knows")
	}
	failures, err = emulator.CheckParserTemplate(broken)
	if err != nil || !strings.Contains(strings.Join(failures, "\n"), "fraction needs 9 digits") {
		t.Errorf("the default format passed the test cases: %q %v", failures, err)
	}
}

// ship sends lines through siemship's real LogScale sink (format structured
// or hec) into the receiver and returns what it stored.
func ship(t *testing.T, format string, lines []string) []emulator.StoredEvent {
	t.Helper()
	s, ts := receiver(t)
	cfg := sink.DefaultConfig()
	cfg.URL, cfg.Format, cfg.Token, cfg.Linger = ts.URL, format, secret.Secret(ingestToken), 10*time.Millisecond
	sk, err := sink.New(cfg, "test", prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	evs := make([]event.Event, len(lines))
	for i, l := range lines {
		evs[i] = agentParse(l)
	}
	done := make(chan struct{})
	b := event.NewBatch("tetragon", evs, func() { close(done) })
	b.Expect(1)
	in := make(chan *event.Batch, 1)
	in <- b
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- sk.Run(ctx, in) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("events not acknowledged")
	}
	cancel()
	<-stopped
	return s.Events(repo)
}

// Every assertion of the parser's test cases holds for the events siemship
// sends itself, on both of its formats: the parser path and the agent's
// paths name tags and fields alike, so one dashboard serves all of them.
func TestParserTestCasesHoldOnTheAgentPaths(t *testing.T) {
	p, err := ParseParser(ParserTemplate())
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, tc := range p.TestCases {
		lines = append(lines, tc.Event.RawString)
	}
	for _, format := range []string{sink.FormatStructured, sink.FormatHEC} {
		t.Run(format, func(t *testing.T) {
			stored := ship(t, format, lines)
			if len(stored) != len(lines) {
				t.Fatalf("%d events stored, want %d", len(stored), len(lines))
			}
			byRaw := map[string]emulator.StoredEvent{}
			for _, ev := range stored {
				byRaw[ev.Attributes] = ev // requests group events by type: match by content
			}
			for i, tc := range p.TestCases {
				ev, ok := byRaw[tc.Event.RawString]
				if !ok {
					t.Fatalf("test case %d: not stored as sent", i)
				}
				fields := ev.Fields()
				for _, a := range tc.Assertions {
					for k, want := range a.FieldsHaveValues {
						var got string
						switch {
						case strings.HasPrefix(k, "#"):
							got = ev.Tags[k[1:]]
						case k == "@timestamp":
							got = strconv.FormatInt(ev.Timestamp, 10)
						default:
							got = fields[k]
						}
						if got != want {
							t.Errorf("test case %d: %s = %q on the %s path, the parser test case wants %q", i, k, got, format, want)
						}
					}
					for _, k := range a.FieldsNotPresent {
						if _, ok := fields[k]; ok {
							t.Errorf("test case %d: %s present", i, k)
						}
					}
				}
			}
		})
	}
}

// fieldRef finds event fields named in dashboard queries.
var fieldRef = regexp.MustCompile(`\b(process_[a-z]+(?:\.[a-z_]+|\[\d+\])+)`)

// Fields Tetragon writes that the sample data lacks, with why they exist.
var knownWithoutSample = map[string]string{
	"process_kprobe.message":         "set by a TracingPolicy's message (all of tracingpolicies/ set one)",
	"process_tracepoint.policy_name": "tracepoint events of a TracingPolicy",
	"process_lsm.policy_name":        "LSM hook events of a TracingPolicy",
	"process_uprobe.policy_name":     "uprobe events of a TracingPolicy",
}

// The dashboard's queries name fields that Tetragon's events have, so a
// typo in a field name fails here rather than as an empty widget.
func TestDashboardFieldsExist(t *testing.T) {
	var d struct {
		Widgets map[string]struct {
			Type        string `yaml:"type"`
			QueryString string `yaml:"queryString"`
		} `yaml:"widgets"`
	}
	if err := yaml.Unmarshal(DashboardTemplate(), &d); err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	add := func(raw string) {
		for k := range (emulator.StoredEvent{Attributes: raw}).Fields() {
			have[k] = true
		}
	}
	p, _ := ParseParser(ParserTemplate())
	for _, tc := range p.TestCases {
		add(tc.Event.RawString)
	}
	gen := tetragongen.New(3, "node-b")
	for i := range 200 {
		add(string(gen.Line(nil, i)))
	}
	queries := 0
	for id, w := range d.Widgets {
		if w.Type != "query" {
			continue
		}
		queries++
		if !strings.Contains(w.QueryString, "#source=tetragon") {
			t.Errorf("widget %s does not select #source=tetragon", id)
		}
		for _, m := range fieldRef.FindAllString(w.QueryString, -1) {
			if !have[m] && knownWithoutSample[m] == "" {
				t.Errorf("widget %s names %s, which no Tetragon event has", id, m)
			}
		}
	}
	if queries < 6 {
		t.Fatalf("%d query widgets", queries)
	}
}
