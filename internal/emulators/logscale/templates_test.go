package logscale

import (
	"strings"
	"testing"
)

func TestParserTemplateValidation(t *testing.T) {
	cases := []struct {
		name, edit, want string // edit replaces the first line matching its prefix up to ':'
	}{
		{"valid", "", ""},
		{"wrong schema", "$schema: https://schemas.humio.com/dashboard/v0.15.0", "$schema"},
		{"schema without version", "$schema: https://schemas.humio.com/parser/", "$schema"},
		{"empty name", "name: ''", "name"},
		{"tagFields not list", "tagFields: x", "tagFields"},
		{"unknown key", "tags: [a]", "unknown key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			text := parserYAML
			if c.edit != "" {
				text = replaceKey(text, c.edit)
			}
			_, err := parseParserTemplate(text)
			checkErr(t, err, c.want)
		})
	}
	tcCases := []struct{ name, from, to, want string }{
		{"unquoted number value", `'@timestamp': '1713061094376'`, `'@timestamp': 1713061094376`, "must be a string"},
		{"negative index", "outputEventIndex: 0", "outputEventIndex: -1", "outputEventIndex"},
		{"index not int", "outputEventIndex: 0", "outputEventIndex: first", "outputEventIndex"},
		{"rawString not string", `rawString: '{"process_exec":{},"time":"2024-04-14T02:18:14.376Z"}'`, "rawString: [1]", "rawString"},
		{"script not string", "script: |\n  parseJson()\n  | parseTimestamp(field=time)\n", "script: [1]\n", "script"},
		{"script missing", "script: |\n  parseJson()\n  | parseTimestamp(field=time)\n", "", "script"},
		{"event missing", "  - event:\n      rawString:", "  - evt:\n      rawString:", "unknown key"},
		{"fieldsNotPresent not list", "fieldsNotPresent: [foo]", "fieldsNotPresent: foo", "fieldsNotPresent"},
		{"assertions not list", "    assertions:\n      - outputEventIndex: 0", "    assertions:\n        outputEventIndex: 0", "assertions"},
		{"unknown assertion key", "fieldsNotPresent: [foo]", "fieldsMissing: [foo]", "unknown key"},
	}
	for _, c := range tcCases {
		t.Run(c.name, func(t *testing.T) {
			text := strings.Replace(parserYAML, c.from, c.to, 1)
			if text == parserYAML {
				t.Fatalf("edit %q did not apply", c.from)
			}
			_, err := parseParserTemplate(text)
			checkErr(t, err, c.want)
		})
	}
}

func TestDashboardTemplateValidation(t *testing.T) {
	cases := []struct{ name, from, to, want string }{
		{"valid", "", "", ""},
		{"wrong schema", "schemas.humio.com/dashboard/", "schemas.humio.com/parser/", "$schema"},
		{"unknown widget type", "type: note", "type: chart", "type"},
		{"unknown visualization", "visualization: time-chart", "visualization: radar", "visualization"},
		{"query widget without query", "    queryString: \"#event_type", "    queryStrin: \"#event_type", "queryString"},
		{"negative width", "width: 6", "width: -6", "width"},
		{"bad parameter type", "type: text", "type: slider", "parameters"},
		{"widgets not a map", "widgets:\n  w1:", "widgets: []\nother:\n  w1:", "widgets"},
		{"not YAML", "name: Tetragon overview", "name: [", "invalid YAML"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			text := strings.Replace(dashboardYAML, c.from, c.to, 1)
			if c.from != "" && text == dashboardYAML {
				t.Fatalf("edit %q did not apply", c.from)
			}
			_, err := parseDashboardTemplate(text)
			checkErr(t, err, c.want)
		})
	}
}

func replaceKey(text, line string) string {
	key := line[:strings.Index(line, ":")+1]
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, key) {
			lines[i] = line
			return strings.Join(lines, "\n")
		}
	}
	return text + line + "\n"
}

func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("unexpected error %v", err)
	case want != "" && err == nil:
		t.Fatalf("no error, want one containing %q", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Fatalf("error %q, want one containing %q", err, want)
	}
}
