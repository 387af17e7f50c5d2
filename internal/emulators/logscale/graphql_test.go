package logscale

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
)

const parserYAML = `$schema: https://schemas.humio.com/parser/v0.3.0
name: tetragon
script: |
  parseJson()
  | parseTimestamp(field=time)
tagFields:
  - "#event_type"
fieldsToBeRemovedBeforeParsing: []
testCases:
  - event:
      rawString: '{"process_exec":{},"time":"2024-04-14T02:18:14.376Z"}'
    assertions:
      - outputEventIndex: 0
        fieldsHaveValues:
          '#event_type': process_exec
          '@timestamp': '1713061094376'
        fieldsNotPresent: [foo]
`

const dashboardYAML = `$schema: https://schemas.humio.com/dashboard/v0.15.0
name: Tetragon overview
timeSelector: {}
sharedTimeInterval: {enabled: true, isLive: true, start: 1d}
widgets:
  w1:
    type: query
    title: Execs
    x: 0
    y: 0
    width: 6
    height: 4
    queryString: "#event_type=process_exec | timeChart(series=k8s.namespace, function=count(), span=5m)"
    visualization: time-chart
    start: 1d
    end: now
    isLive: true
  n1:
    type: note
    text: hello
parameters:
  ns:
    type: text
    defaultValue: '*'
`

type gqlResponse struct {
	Data   map[string]any
	Errors []gqlError
}

func gql(t *testing.T, ts *httptest.Server, query string, vars map[string]any) gqlResponse {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	r := do(t, ts, request{path: "/graphql", auth: "Bearer " + apiToken, body: b})
	if r.status != 200 {
		t.Fatalf("graphql status %d: %s", r.status, r.body)
	}
	var out gqlResponse
	if err := json.Unmarshal([]byte(r.body), &out); err != nil {
		t.Fatalf("graphql body %q: %v", r.body, err)
	}
	return out
}

// ok runs a query that must succeed and returns its data.
func ok(t *testing.T, ts *httptest.Server, query string, vars map[string]any) map[string]any {
	t.Helper()
	r := gql(t, ts, query, vars)
	if len(r.Errors) > 0 || r.Data == nil {
		t.Fatalf("unexpected errors %+v for %s", r.Errors, query)
	}
	return r.Data
}

// fails runs a query that must fail with an error containing want.
func fails(t *testing.T, ts *httptest.Server, query string, vars map[string]any, want string) {
	t.Helper()
	r := gql(t, ts, query, vars)
	if len(r.Errors) == 0 || !strings.Contains(strings.ToLower(r.Errors[0].Message), strings.ToLower(want)) {
		t.Fatalf("errors %+v, want one containing %q", r.Errors, want)
	}
}

// get walks decoded JSON: get(v, "a", 0, "b").
func get(v any, path ...any) any {
	for _, p := range path {
		switch p := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[p]
		case int:
			l, _ := v.([]any)
			if p >= len(l) {
				return nil
			}
			v = l[p]
		}
	}
	return v
}

const (
	qListParsers  = `query($r:String!){ repository(name:$r){ parsers{ id name } } }`
	qCreateParser = `mutation($view:RepoOrViewName!,$name:String!,$yaml:YAML!){ createParserFromTemplate(input:{viewName:$view,name:$name,yamlTemplate:$yaml}){ id name } }`
	qDeleteParser = `mutation($r:RepoOrViewName!,$id:String!){ deleteParser(input:{repositoryName:$r,id:$id}){ __typename } }`
)

func TestGraphQLAuth(t *testing.T) {
	_, ts := startServer(t, testConfig())
	body := []byte(`{"query":"{ repository(name:\"main\"){ name } }"}`)
	for _, auth := range []string{"", "Bearer nope", "Bearer " + tokMain} {
		if r := do(t, ts, request{path: "/graphql", auth: auth, body: body}); r.status != 401 {
			t.Errorf("auth %q: %d", auth, r.status)
		}
	}
	if r := do(t, ts, request{path: "/graphql", auth: "Bearer " + apiToken, body: []byte(`nope`)}); r.status != 400 {
		t.Errorf("bad body: %d", r.status)
	}
}

func TestGraphQLParsers(t *testing.T) {
	s, ts := startServer(t, testConfig())
	vars := map[string]any{"view": "main", "name": "tetragon", "yaml": parserYAML}
	if ps := get(ok(t, ts, qListParsers, map[string]any{"r": "main"}), "repository", "parsers").([]any); len(ps) != 0 {
		t.Fatalf("parsers %v", ps)
	}
	created := ok(t, ts, qCreateParser, vars)
	id, _ := get(created, "createParserFromTemplate", "id").(string)
	if id == "" || get(created, "createParserFromTemplate", "name") != "tetragon" {
		t.Fatalf("created %v", created)
	}
	fails(t, ts, qCreateParser, vars, "already exists")
	ps := s.Parsers("main")
	if len(ps) != 1 || ps[0].Script == "" || len(ps[0].TestCases) != 1 ||
		ps[0].TestCases[0].Assertions[0].FieldsHaveValues["@timestamp"] != "1713061094376" {
		t.Fatalf("stored parser %+v", ps)
	}
	list := ok(t, ts, qListParsers, map[string]any{"r": "main"})
	if get(list, "repository", "parsers", 0, "id") != id {
		t.Fatalf("list %v", list)
	}
	del := ok(t, ts, qDeleteParser, map[string]any{"r": "main", "id": id})
	if get(del, "deleteParser", "__typename") != "BooleanResultType" || len(s.Parsers("main")) != 0 {
		t.Fatalf("delete %v", del)
	}
	fails(t, ts, qDeleteParser, map[string]any{"r": "main", "id": id}, "not found")

	// createParserV2 with overwrite keeps the id.
	const qV2 = `mutation($in:CreateParserInputV2!){ createParserV2(input:$in){ id name testCases{ event{ rawString } outputAssertions{ outputEventIndex assertions{ fieldsHaveValues{ fieldName expectedValue } fieldsNotPresent } } } } }`
	in := map[string]any{"name": "p2", "script": "parseJson()", "repositoryName": "main", "fieldsToTag": []string{},
		"fieldsToBeRemovedBeforeParsing": []string{}, "allowOverwritingExistingParser": true,
		"testCases": []any{map[string]any{"event": map[string]any{"rawString": "{}"}, "outputAssertions": []any{
			map[string]any{"outputEventIndex": 0, "assertions": map[string]any{"fieldsHaveValues": []any{
				map[string]any{"fieldName": "a", "expectedValue": "1"}}}}}}}}
	first := get(ok(t, ts, qV2, map[string]any{"in": in}), "createParserV2")
	second := get(ok(t, ts, qV2, map[string]any{"in": in}), "createParserV2")
	if get(first, "id") != get(second, "id") || get(second, "testCases", 0, "outputAssertions", 0, "assertions", "fieldsHaveValues", 0, "expectedValue") != "1" {
		t.Fatalf("createParserV2: %v then %v", first, second)
	}
	in["allowOverwritingExistingParser"] = false
	fails(t, ts, qV2, map[string]any{"in": in}, "already exists")

	const qTest = `mutation($in:ParserTestRunInput!){ testParserV2(input:$in){ __typename ... on ParserTestRunCompleted { results { outputEvents { fields { fieldName value } } outputFailures { outputEventIndex } } } } }`
	tin := map[string]any{"repositoryName": "main", "parserName": "p2", "script": "parseJson()", "fieldsToTag": []string{},
		"fieldsToBeRemovedBeforeParsing": []string{}, "testCases": in["testCases"]}
	res := ok(t, ts, qTest, map[string]any{"in": tin})
	if get(res, "testParserV2", "__typename") != "ParserTestRunCompleted" ||
		len(get(res, "testParserV2", "results", 0, "outputFailures").([]any)) != 0 {
		t.Fatalf("testParserV2 %v", res)
	}
	tin["script"] = " "
	res = ok(t, ts, qTest, map[string]any{"in": tin})
	if get(res, "testParserV2", "__typename") != "ParserTestRunAborted" || get(res, "testParserV2", "results") != nil {
		t.Fatalf("empty script: %v", res)
	}

	// parseTimestamp runs: LogScale's default format takes nine fractional
	// digits, so a millisecond time fails its test case with @error; a
	// format with a three-digit section passes and gives @timestamp.
	const qTestFailures = `mutation($in:ParserTestRunInput!){ testParserV2(input:$in){ __typename ... on ParserTestRunCompleted { results { outputEvents { fields { fieldName value } } outputFailures { outputEventIndex failures { parsingErrors } } } } ... on ParserTestRunAborted { errorMessage } } }`
	tin["testCases"] = []any{map[string]any{"event": map[string]any{"rawString": `{"time":"2022-05-11T12:54:45.615Z"}`}, "outputAssertions": []any{
		map[string]any{"outputEventIndex": 0, "assertions": map[string]any{"fieldsNotPresent": []string{"@error"}, "fieldsHaveValues": []any{
			map[string]any{"fieldName": "@timestamp", "expectedValue": "1652273685615"}}}}}}}
	tin["script"] = "parseJson() | parseTimestamp(field=time)"
	res = ok(t, ts, qTestFailures, map[string]any{"in": tin})
	errs := get(res, "testParserV2", "results", 0, "outputFailures", 0, "failures", "parsingErrors")
	if list, _ := errs.([]any); len(list) != 2 || !strings.Contains(fmt.Sprint(list), "fraction needs 9 digits") {
		t.Fatalf("default format on a millisecond time: %v", res)
	}
	tin["script"] = `parseJson() | parseTimestamp(field=time, format="yyyy-MM-dd'T'HH:mm:ss[.SSS]XXXXX")`
	res = ok(t, ts, qTestFailures, map[string]any{"in": tin})
	fields := fmt.Sprint(get(res, "testParserV2", "results", 0, "outputEvents", 0, "fields"))
	if len(get(res, "testParserV2", "results", 0, "outputFailures").([]any)) != 0 || !strings.Contains(fields, "1652273685615") {
		t.Fatalf("a matching format: %v", res)
	}
	tin["script"] = `parseJson() | parseTimestamp(field=time, format="EEE, dd MMM yyyy")`
	res = ok(t, ts, qTestFailures, map[string]any{"in": tin})
	if get(res, "testParserV2", "__typename") != "ParserTestRunAborted" || !strings.Contains(fmt.Sprint(get(res, "testParserV2", "errorMessage")), "not supported by the emulator") {
		t.Fatalf("a pattern the emulator cannot check: %v", res)
	}
}

func TestGraphQLValidation(t *testing.T) {
	_, ts := startServer(t, testConfig())
	cases := []struct {
		name, query string
		vars        map[string]any
		want        string
	}{
		{"syntax", `query { repository(name:"main") { parsers { id }`, nil, "expected"},
		{"unknown field", `query { repository(name:"main") { parserz { id } } }`, nil, "parserz"},
		{"unknown repo", qListParsers, map[string]any{"r": "nope"}, "not found"},
		{"deleted repo", qListParsers, map[string]any{"r": "gone"}, "not found"},
		{"missing variable", qListParsers, nil, "must be defined"},
		{"variable of the wrong type", `mutation($r:String!,$id:String!){ deleteParser(input:{repositoryName:$r,id:$id}){ __typename } }`,
			map[string]any{"r": "main", "id": "x"}, "RepoOrViewName"},
		{"unused variable", `query($r:String!,$x:String){ repository(name:$r){ name } }`, map[string]any{"r": "main"}, "never used"},
		{"missing selection", `query { repository(name:"main") }`, nil, "must have a selection"},
		{"bad template", qCreateParser, map[string]any{"view": "main", "name": "x", "yaml": "name: [unclosed"}, "invalid parser template"},
		{"template without schema", qCreateParser, map[string]any{"view": "main", "name": "x", "yaml": "name: x\nscript: y\n"}, "$schema"},
		{"two operations without a name", `query a { repository(name:"main"){ name } } query b { repository(name:"main"){ name } }`, nil, "operationName"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { fails(t, ts, c.query, c.vars, c.want) })
	}
}

func TestGraphQLDashboards(t *testing.T) {
	s, ts := startServer(t, testConfig())
	const (
		qCreate = `mutation($view:RepoOrViewName!,$name:String!,$yaml:YAML!){ createDashboardFromTemplateV2(input:{viewName:$view,name:$name,yamlTemplate:$yaml}){ id name } }`
		qList   = `query($v:String!){ searchDomain(name:$v){ dashboards{ id name } } }`
		qDelete = `mutation($id:String!){ deleteDashboard(input:{id:$id}){ __typename } }`
	)
	created := ok(t, ts, qCreate, map[string]any{"view": "main", "name": "Overview", "yaml": dashboardYAML})
	id := get(created, "createDashboardFromTemplateV2", "id")
	if id == nil || get(created, "createDashboardFromTemplateV2", "name") != "Overview" {
		t.Fatalf("created %v", created)
	}
	if ds := s.Dashboards("main"); len(ds) != 1 || ds[0].Widgets != 2 {
		t.Fatalf("stored %+v", ds)
	}
	if got := get(ok(t, ts, qList, map[string]any{"v": "main"}), "searchDomain", "dashboards", 0, "id"); got != id {
		t.Fatalf("list: %v", got)
	}
	if got := ok(t, ts, qDelete, map[string]any{"id": id}); get(got, "deleteDashboard", "__typename") != "DeleteDashboardMutation" {
		t.Fatalf("delete %v", got)
	}
	if ds := get(ok(t, ts, qList, map[string]any{"v": "main"}), "searchDomain", "dashboards").([]any); len(ds) != 0 {
		t.Fatalf("after delete %v", ds)
	}
	fails(t, ts, qDelete, map[string]any{"id": id}, "not found")
	fails(t, ts, qCreate, map[string]any{"view": "nope", "name": "x", "yaml": dashboardYAML}, "not found")
	bad := strings.Replace(dashboardYAML, "time-chart", "3d-pie", 1)
	fails(t, ts, qCreate, map[string]any{"view": "main", "name": "x", "yaml": bad}, "visualization")
}

func TestGraphQLIngestTokens(t *testing.T) {
	s, ts := startServer(t, testConfig())
	ok(t, ts, qCreateParser, map[string]any{"view": "main", "name": "tetragon", "yaml": parserYAML})
	// Inline literals, an alias and a named fragment, as real clients send.
	added := ok(t, ts, `mutation { t: addIngestTokenV3(input:{repositoryName:"main",name:"agent",parser:"tetragon"}){ ...Tok } }
		fragment Tok on IngestToken { name token parser { name } }`, nil)
	secret, _ := get(added, "t", "token").(string)
	if secret == "" || get(added, "t", "name") != "agent" || get(added, "t", "parser", "name") != "tetragon" {
		t.Fatalf("added %v", added)
	}
	if r := ingest(t, ts, "/api/v1/ingest/humio-unstructured", secret, `[{"messages":["line"]}]`); r.status != 200 {
		t.Fatalf("new token cannot ingest: %d", r.status)
	}
	if evs := s.Events("main"); len(evs) != 1 || evs[0].Tags["type"] != "tetragon" {
		t.Fatalf("events %+v", evs)
	}
	fails(t, ts, `mutation { addIngestTokenV3(input:{repositoryName:"main",name:"agent"}){ name } }`, nil, "already exists")
	fails(t, ts, `mutation { addIngestTokenV3(input:{repositoryName:"main",name:"x",parser:"nope"}){ name } }`, nil, "parser")
	fails(t, ts, `mutation { addIngestTokenV3(input:{repositoryName:"nope",name:"x"}){ name } }`, nil, "not found")

	const qAssign = `mutation($r:String!,$n:String!,$p:String!){ assignParserToIngestTokenV2(input:{repositoryName:$r,tokenName:$n,parser:$p}){ __typename } }`
	ok(t, ts, qAssign, map[string]any{"r": "main", "n": "agent", "p": "json"})
	fails(t, ts, qAssign, map[string]any{"r": "main", "n": "nobody", "p": "json"}, "not found")
	fails(t, ts, qAssign, map[string]any{"r": "main", "n": "agent", "p": "nope"}, "parser")
	list := ok(t, ts, `query($r:String!){ repository(name:$r){ ingestTokens{ name parser{ name } } } }`, map[string]any{"r": "main"})
	var found bool
	for _, tok := range get(list, "repository", "ingestTokens").([]any) {
		if get(tok, "name") == "agent" {
			found = get(tok, "parser", "name") == "json"
		}
		if get(tok, "name") == "" {
			t.Error("token without a name")
		}
	}
	if !found || s.IngestTokens()[secret].Parser != "json" {
		t.Fatalf("assignment not visible: %v", list)
	}
	ok(t, ts, `mutation { removeIngestToken(repositoryName:"main",name:"agent"){ result } }`, nil)
	if r := ingest(t, ts, "/api/v1/ingest/humio-unstructured", secret, `[{"messages":["line"]}]`); r.status != 401 {
		t.Fatalf("removed token still ingests: %d", r.status)
	}
}
