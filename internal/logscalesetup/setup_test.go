package logscalesetup

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	emulator "github.com/siemship/siemship/internal/emulators/logscale"
	"github.com/siemship/siemship/logscale"
)

const (
	apiToken = "api-7d1e-secret"
	repo     = "tetragon-events"
)

// receiver starts the strict LogScale-compatible receiver with one
// repository and one API token.
func receiver(t *testing.T) (*emulator.Server, *httptest.Server) {
	t.Helper()
	s := emulator.New(emulator.Config{APITokens: []string{apiToken}, Repos: []string{repo, "other"}})
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return s, ts
}

func client(t *testing.T, url, token string) *Client {
	t.Helper()
	c, err := NewClient(url, token, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func opts() Options { return Options{Repo: repo, TokenName: "siemship", Dashboard: true} }

func TestSetupCreatesParserDashboardAndBoundToken(t *testing.T) {
	s, ts := receiver(t)
	res, err := Setup(context.Background(), client(t, ts.URL, apiToken), opts())
	if err != nil {
		t.Fatal(err)
	}
	if res.ParserAction != Created || res.DashAction != Created || res.TokenAction != Created {
		t.Fatalf("actions: parser %s, dashboard %s, token %s; want all created", res.ParserAction, res.DashAction, res.TokenAction)
	}

	tmpl, err := logscale.ParseParser(logscale.ParserTemplate())
	if err != nil {
		t.Fatal(err)
	}
	parsers := s.Parsers(repo)
	if len(parsers) != 1 || parsers[0].Name != "tetragon" || parsers[0].ID != res.Parser.ID {
		t.Fatalf("parsers in %s: %+v, want one named tetragon with id %s", repo, parsers, res.Parser.ID)
	}
	if parsers[0].Script != tmpl.Script || len(parsers[0].TestCases) != len(tmpl.TestCases) ||
		strings.Join(parsers[0].FieldsToTag, ",") != "source,event_type" {
		t.Fatalf("parser content differs from the template: %+v", parsers[0])
	}
	if parsers[0].YAML != string(logscale.ParserTemplate()) {
		t.Fatal("the parser was not created from the template")
	}
	dashName, _ := logscale.DashboardName()
	if ds := s.Dashboards(repo); len(ds) != 1 || ds[0].Name != dashName || ds[0].Widgets < 8 {
		t.Fatalf("dashboards: %+v", ds)
	}

	tok := res.Token.Token
	entry, ok := s.IngestTokens()[tok]
	if tok == "" || !ok || entry.Repo != repo || entry.Parser != "tetragon" || entry.Name != "siemship" {
		t.Fatalf("ingest token: %+v (known: %v)", entry, ok)
	}
	// The new token ingests into the repository.
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/api/v1/ingest/humio-structured",
		strings.NewReader(`[{"tags":{"source":"tetragon"},"events":[{"timestamp":1713061094376,"attributes":{"a":"b"}}]}]`))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(s.Events(repo)) != 1 {
		t.Fatalf("ingest with the new token: status %d, %d events stored", resp.StatusCode, len(s.Events(repo)))
	}
	if strings.Contains(res.String(), tok) {
		t.Fatal("the summary shows the token secret")
	}
}

func TestSetupAgainUpdatesInPlace(t *testing.T) {
	s, ts := receiver(t)
	c := client(t, ts.URL, apiToken)
	first, err := Setup(context.Background(), c, opts())
	if err != nil {
		t.Fatal(err)
	}
	second, err := Setup(context.Background(), c, opts())
	if err != nil {
		t.Fatal(err)
	}
	if second.ParserAction != Updated || second.Parser.ID != first.Parser.ID {
		t.Fatalf("second run: parser %s with id %s, want updated in place (id %s)", second.ParserAction, second.Parser.ID, first.Parser.ID)
	}
	if second.DashAction != Replaced || len(s.Dashboards(repo)) != 1 {
		t.Fatalf("second run: dashboard %s, %d dashboards; want replaced, 1", second.DashAction, len(s.Dashboards(repo)))
	}
	if second.TokenAction != Kept || second.Token.Token != first.Token.Token || len(s.IngestTokens()) != 1 {
		t.Fatalf("second run: token %s, %d tokens; want the first one kept", second.TokenAction, len(s.IngestTokens()))
	}
	// The update went through createParserV2: the stored test cases are
	// the template's, converted to LogScale's input shape and back.
	p := s.Parsers(repo)[0]
	tmpl, _ := logscale.ParseParser(logscale.ParserTemplate())
	for i, tc := range tmpl.TestCases {
		got := p.TestCases[i]
		if got.RawString != tc.Event.RawString || len(got.Assertions) != 1 ||
			len(got.Assertions[0].FieldsHaveValues) != len(tc.Assertions[0].FieldsHaveValues) ||
			got.Assertions[0].FieldsHaveValues["#event_type"] != tc.Assertions[0].FieldsHaveValues["#event_type"] {
			t.Fatalf("test case %d after update: %+v", i, got)
		}
	}
}

func TestSetupBindsAnExistingToken(t *testing.T) {
	s, ts := receiver(t)
	s.AddToken("existing-secret", emulator.Token{Name: "siemship", Repo: repo, Parser: "json"})
	res, err := Setup(context.Background(), client(t, ts.URL, apiToken), Options{Repo: repo, TokenName: "siemship"})
	if err != nil {
		t.Fatal(err)
	}
	if res.TokenAction != Bound || res.PreviousParser != "json" || res.Token.Token != "existing-secret" {
		t.Fatalf("token: %s, previous parser %q", res.TokenAction, res.PreviousParser)
	}
	if got := s.IngestTokens()["existing-secret"]; got.Parser != "tetragon" {
		t.Fatalf("token's parser is %q, want tetragon", got.Parser)
	}
	if res.DashAction != Skipped || len(s.Dashboards(repo)) != 0 {
		t.Fatal("dashboard created without Options.Dashboard")
	}
}

func TestSetupErrors(t *testing.T) {
	_, ts := receiver(t)
	_, err := Setup(context.Background(), client(t, ts.URL, "wrong-api-token"), opts())
	if err == nil || !strings.Contains(err.Error(), "401") || strings.Contains(err.Error(), "wrong-api-token") {
		t.Fatalf("wrong API token: %v", err)
	}
	o := opts()
	o.Repo = "missing"
	_, err = Setup(context.Background(), client(t, ts.URL, apiToken), o)
	var ge *GraphQLError
	if !errors.As(err, &ge) || !strings.Contains(err.Error(), `"missing"`) {
		t.Fatalf("unknown repository: %v", err)
	}
	if _, err := NewClient("ftp://x", apiToken, nil); err == nil {
		t.Fatal("ftp URL accepted")
	}
	if _, err := NewClient(ts.URL, " ", nil); err == nil {
		t.Fatal("empty API token accepted")
	}
}
