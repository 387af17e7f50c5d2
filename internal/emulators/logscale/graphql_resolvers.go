package logscale

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

func (s *Server) queryRoot() obj {
	repo := func(args map[string]any) (any, error) {
		name, _ := args["name"].(string)
		if !s.repoExists(name) {
			return nil, fmt.Errorf("repository or view %q not found", name)
		}
		return s.repoObj(name), nil
	}
	return obj{"__typename": "Query", "repository": fieldFunc(repo), "searchDomain": fieldFunc(repo)}
}

func (s *Server) mutationRoot() obj {
	m := obj{"__typename": "Mutation"}
	for name, fn := range map[string]fieldFunc{
		"createParserFromTemplate":      s.createParserFromTemplate,
		"createParserV2":                s.createParserV2,
		"deleteParser":                  s.deleteParser,
		"testParserV2":                  s.testParserV2,
		"createDashboardFromTemplateV2": s.createDashboard,
		"deleteDashboard":               s.deleteDashboard,
		"addIngestTokenV3":              s.addIngestToken,
		"assignParserToIngestTokenV2":   s.assignParser,
		"unassignIngestToken":           s.unassignParser,
		"removeIngestToken":             s.removeIngestToken,
	} {
		m[name] = fn
	}
	return m
}

func (s *Server) repoObj(name string) obj {
	parsers := s.Parsers(name)
	return obj{
		"__typename": "Repository", "id": name, "name": name,
		"dashboards":   dashboardObjs(s.Dashboards(name)),
		"parsers":      parserObjs(parsers),
		"ingestTokens": s.tokenObjs(name),
		"parser": fieldFunc(func(args map[string]any) (any, error) {
			id, _ := args["id"].(string)
			pname, _ := args["name"].(string)
			for _, p := range parsers {
				if (id != "" && p.ID == id) || (pname != "" && p.Name == pname) {
					return parserObj(p), nil
				}
			}
			return nil, nil
		}),
	}
}

func parserObjs(ps []Parser) []obj {
	out := make([]obj, 0, len(ps))
	for _, p := range ps {
		out = append(out, parserObj(p))
	}
	return out
}

func parserObj(p Parser) obj {
	tcs := make([]obj, 0, len(p.TestCases))
	for _, tc := range p.TestCases {
		var outs []obj
		for _, a := range tc.Assertions {
			var hv []obj
			for k, v := range a.FieldsHaveValues {
				hv = append(hv, obj{"__typename": "FieldHasValue", "fieldName": k, "expectedValue": v})
			}
			outs = append(outs, obj{"__typename": "ParserTestCaseAssertionsForOutput", "outputEventIndex": a.OutputEventIndex,
				"assertions": obj{"__typename": "ParserTestCaseOutputAssertions", "fieldsHaveValues": nonNil(hv),
					"fieldsNotPresent": nonNilStrings(a.FieldsNotPresent)}})
		}
		tcs = append(tcs, obj{"__typename": "ParserTestCase", "event": obj{"__typename": "ParserTestEvent", "rawString": tc.RawString},
			"outputAssertions": nonNil(outs)})
	}
	return obj{
		"__typename": "Parser", "id": p.ID, "name": p.Name, "displayName": p.Name, "isBuiltIn": p.ID == "",
		"script": p.Script, "fieldsToTag": nonNilStrings(p.FieldsToTag),
		"fieldsToBeRemovedBeforeParsing": nonNilStrings(p.FieldsToBeRemovedBeforeParsing),
		"testCases":                      tcs, "yamlTemplate": p.YAML,
	}
}

func dashboardObjs(ds []Dashboard) []obj {
	out := make([]obj, 0, len(ds))
	for _, d := range ds {
		out = append(out, dashboardObj(d))
	}
	return out
}

func dashboardObj(d Dashboard) obj {
	return obj{"__typename": "Dashboard", "id": d.ID, "name": d.Name, "yamlTemplate": d.YAML}
}

func nonNil(l []obj) []obj {
	if l == nil {
		return []obj{}
	}
	return l
}

func nonNilStrings(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// viewArg reads a repository/view argument and checks that it exists.
func (s *Server) viewArg(name string) error {
	if !s.repoExists(name) {
		return fmt.Errorf("repository or view %q not found", name)
	}
	return nil
}

func (s *Server) createParserFromTemplate(args map[string]any) (any, error) {
	var in struct{ ViewName, Name, YamlTemplate string }
	if err := decodeInput(args["input"], &in); err != nil {
		return nil, err
	}
	if err := s.viewArg(in.ViewName); err != nil {
		return nil, err
	}
	p, err := parseParserTemplate(in.YamlTemplate)
	if err != nil {
		return nil, fmt.Errorf("invalid parser template: %w", err)
	}
	if in.Name != "" {
		p.Name = in.Name
	}
	p, err = s.assets.putParser(in.ViewName, p, false)
	if err != nil {
		return nil, err
	}
	return parserObj(p), nil
}

// testCaseInput is LogScale's ParserTestCaseInput.
type testCaseInput struct {
	Event struct {
		RawString string `json:"rawString"`
	} `json:"event"`
	OutputAssertions []struct {
		OutputEventIndex int `json:"outputEventIndex"`
		Assertions       struct {
			FieldsNotPresent []string `json:"fieldsNotPresent"`
			FieldsHaveValues []struct {
				FieldName     string `json:"fieldName"`
				ExpectedValue string `json:"expectedValue"`
			} `json:"fieldsHaveValues"`
		} `json:"assertions"`
	} `json:"outputAssertions"`
}

func convertTestCases(in []testCaseInput) ([]ParserTestCase, error) {
	var out []ParserTestCase
	for i, tc := range in {
		c := ParserTestCase{RawString: tc.Event.RawString}
		for _, oa := range tc.OutputAssertions {
			if oa.OutputEventIndex < 0 {
				return nil, fmt.Errorf("testCases[%d]: outputEventIndex must be >= 0", i)
			}
			a := ParserAssertion{OutputEventIndex: oa.OutputEventIndex, FieldsNotPresent: oa.Assertions.FieldsNotPresent}
			for _, hv := range oa.Assertions.FieldsHaveValues {
				if hv.FieldName == "" {
					return nil, fmt.Errorf("testCases[%d]: empty fieldName", i)
				}
				if a.FieldsHaveValues == nil {
					a.FieldsHaveValues = map[string]string{}
				}
				a.FieldsHaveValues[hv.FieldName] = hv.ExpectedValue
			}
			c.Assertions = append(c.Assertions, a)
		}
		out = append(out, c)
	}
	return out, nil
}

func (s *Server) createParserV2(args map[string]any) (any, error) {
	var in struct {
		Name, Script, RepositoryName   string
		TestCases                      []testCaseInput
		FieldsToTag                    []string
		FieldsToBeRemovedBeforeParsing []string
		AllowOverwritingExistingParser bool
	}
	if err := decodeInput(args["input"], &in); err != nil {
		return nil, err
	}
	if err := s.viewArg(in.RepositoryName); err != nil {
		return nil, err
	}
	if strings.TrimSpace(in.Name) == "" || strings.TrimSpace(in.Script) == "" {
		return nil, fmt.Errorf("name and script must not be empty")
	}
	tcs, err := convertTestCases(in.TestCases)
	if err != nil {
		return nil, err
	}
	p, err := s.assets.putParser(in.RepositoryName, Parser{
		Name: in.Name, Script: in.Script, TestCases: tcs,
		FieldsToTag: in.FieldsToTag, FieldsToBeRemovedBeforeParsing: in.FieldsToBeRemovedBeforeParsing,
	}, in.AllowOverwritingExistingParser)
	if err != nil {
		return nil, err
	}
	return parserObj(p), nil
}

func (s *Server) deleteParser(args map[string]any) (any, error) {
	var in struct{ ID, RepositoryName string }
	if err := decodeInput(args["input"], &in); err != nil {
		return nil, err
	}
	if err := s.assets.deleteParser(in.RepositoryName, in.ID); err != nil {
		return nil, err
	}
	return obj{"__typename": "BooleanResultType", "result": true}, nil
}

// testParserV2 runs what the emulator can run of the script on the test
// cases (RunParserTests: parseJson and parseTimestamp; the rest needs
// LogScale's query engine): each result has the fields it computed and, as
// parsing errors, the assertions on those fields that fail. A
// parseTimestamp it cannot run aborts the run. The full check of a parser
// is testParserV2 against a real LogScale.
func (s *Server) testParserV2(args map[string]any) (any, error) {
	var in struct {
		RepositoryName, ParserName, Script string
		TestCases                          []testCaseInput
	}
	if err := decodeInput(args["input"], &in); err != nil {
		return nil, err
	}
	if err := s.viewArg(in.RepositoryName); err != nil {
		return nil, err
	}
	if strings.TrimSpace(in.Script) == "" {
		return obj{"__typename": "ParserTestRunAborted", "errorMessage": "empty parser script"}, nil
	}
	tcs, err := convertTestCases(in.TestCases)
	if err != nil {
		return nil, err
	}
	run, err := RunParserTests(Parser{Script: in.Script, TestCases: tcs})
	if err != nil {
		return obj{"__typename": "ParserTestRunAborted", "errorMessage": err.Error()}, nil
	}
	results := make([]obj, 0, len(run))
	for _, r := range run {
		fields := make([]obj, 0, len(r.Fields))
		for _, k := range slices.Sorted(maps.Keys(r.Fields)) {
			fields = append(fields, obj{"__typename": "EventField", "fieldName": k, "value": r.Fields[k]})
		}
		failures := []obj{}
		if len(r.Failures) > 0 {
			failures = append(failures, obj{"__typename": "ParserTestCaseFailuresForOutput", "outputEventIndex": 0,
				"failures": obj{"__typename": "ParserTestCaseOutputFailures", "parsingErrors": r.Failures}})
		}
		results = append(results, obj{"__typename": "ParserTestCaseResult",
			"outputEvents": []obj{{"__typename": "OutputEvent", "fields": fields}}, "outputFailures": failures})
	}
	return obj{"__typename": "ParserTestRunCompleted", "results": results}, nil
}

func (s *Server) createDashboard(args map[string]any) (any, error) {
	var in struct{ ViewName, Name, YamlTemplate string }
	if err := decodeInput(args["input"], &in); err != nil {
		return nil, err
	}
	if err := s.viewArg(in.ViewName); err != nil {
		return nil, err
	}
	d, err := parseDashboardTemplate(in.YamlTemplate)
	if err != nil {
		return nil, fmt.Errorf("invalid dashboard template: %w", err)
	}
	if in.Name != "" {
		d.Name = in.Name
	}
	if d, err = s.assets.putDashboard(in.ViewName, d, false); err != nil {
		return nil, err
	}
	return dashboardObj(d), nil
}

func (s *Server) deleteDashboard(args map[string]any) (any, error) {
	var in struct{ ID string }
	if err := decodeInput(args["input"], &in); err != nil {
		return nil, err
	}
	d, err := s.assets.deleteDashboard(in.ID)
	if err != nil {
		return nil, err
	}
	return obj{"__typename": "DeleteDashboardMutation", "dashboard": dashboardObj(d)}, nil
}
