package logscale

import (
	"strings"
	"testing"
)

func TestScriptCalls(t *testing.T) {
	script := `// parseTimestamp(field=commented) is a comment
	parseJson()
	| regex("parseTimestamp(field=inString)\"", field=@rawstring)
	/* parseTimestamp(field=block) */
	| x = /parseTimestamp\(field=regex\)/
	| parseTimestamp("yyyy-MM-dd'T'HH:mm:ss[.SSS]XXX", field=time, timezone="UTC")`
	calls, err := scriptCalls(script)
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) != 2 || calls[0].name != "parseJson" || calls[1].name != "parseTimestamp" {
		t.Fatalf("calls %+v", calls)
	}
	want := []scriptArg{{"", "yyyy-MM-dd'T'HH:mm:ss[.SSS]XXX"}, {"field", "time"}, {"timezone", "UTC"}}
	if got := calls[1].args; len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("args %+v, want %+v", got, want)
	}
}

func tsParser(script string, cases ...ParserTestCase) Parser {
	return Parser{Script: script, TestCases: cases}
}

func TestRunParserTests(t *testing.T) {
	ms := ParserTestCase{RawString: `{"time":"2022-05-11T12:54:45.615Z"}`, Assertions: []ParserAssertion{{
		FieldsHaveValues: map[string]string{"@timestamp": "1652273685615", "other": "not checked"},
		FieldsNotPresent: []string{"@error"},
	}}}
	for _, tc := range []struct {
		name, script string
		failures     []string
	}{
		{"default format, milliseconds", "parseJson() | parseTimestamp(field=time)",
			[]string{`@timestamp is "", the test case expects "1652273685615"`, "@error is present", "fraction needs 9 digits"}},
		{"three-digit section", `parseJson() | parseTimestamp(field=time, format="yyyy-MM-dd'T'HH:mm:ss[.SSS]XXXXX")`, nil},
		{"no parseJson: the field does not exist", "parseTimestamp(field=time)", []string{"field time not found"}},
		{"epoch format on an ISO time", `parseJson() | parseTimestamp(field=time, format=millis)`, []string{"not an integer epoch time"}},
		{"no parseTimestamp: nothing to check", "parseJson()", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := RunParserTests(tsParser(tc.script, ms))
			if err != nil || len(res) != 1 {
				t.Fatal(res, err)
			}
			got := strings.Join(res[0].Failures, "\n")
			for _, want := range tc.failures {
				if !strings.Contains(got, want) {
					t.Errorf("failures lack %q:\n%s", want, got)
				}
			}
			if len(tc.failures) == 0 && got != "" {
				t.Errorf("unexpected failures:\n%s", got)
			}
		})
	}
	epoch := ParserTestCase{RawString: `{"ts":"1652273685.615"}`, Assertions: []ParserAssertion{{FieldsHaveValues: map[string]string{"@timestamp": "1652273685615"}}}}
	if res, err := RunParserTests(tsParser("parseJson() | parseTimestamp(field=ts, format=Seconds)", epoch)); err != nil || len(res[0].Failures) != 0 {
		t.Errorf("seconds: %+v %v", res, err)
	}
	for _, script := range []string{
		"parseJson() | parseTimestamp(field=a) | parseTimestamp(field=b)",
		`parseTimestamp(field=a, format="EEE")`,
		`parseTimestamp(format="yyyy")`,
		`parseTimestamp(field=a, timezone="Mars/Olympus")`,
		`parseTimestamp(field=a, bogus=1)`,
		`parseTimestamp(field=a`,
	} {
		if _, err := RunParserTests(tsParser(script, ms)); err == nil {
			t.Errorf("%s: accepted", script)
		}
	}
}

func TestScriptTimestamp(t *testing.T) {
	script := `parseJson() | parseTimestamp(field=time, format="yyyy-MM-dd'T'HH:mm:ss[.SSSSSS]XXXXX")`
	if ms, err := ScriptTimestamp(script, `{"time":"2022-05-11T12:54:45.615999Z"}`); err != nil || ms != 1652273685615 {
		t.Errorf("6 digits: %d %v", ms, err)
	}
	if _, err := ScriptTimestamp(script, `{"time":"2022-05-11T12:54:45.615Z"}`); err == nil || !strings.Contains(err.Error(), "fraction needs 6 digits") {
		t.Errorf("3 digits with a 6-digit section: %v", err)
	}
}
