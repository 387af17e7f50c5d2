package logscale

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Schema URL prefixes of LogScale's asset templates.
const (
	parserSchema    = "https://schemas.humio.com/parser/"
	dashboardSchema = "https://schemas.humio.com/dashboard/"
	manifestSchema  = "https://schemas.humio.com/manifest/"
)

// Visualizations a query widget may use (the contract's list).
var visualizations = []string{"time-chart", "table-view", "pie-chart", "bar-chart", "single-value"}

// parseParserTemplate validates a parser YAML template and returns the parser.
func parseParserTemplate(text string) (Parser, error) {
	m, err := yamlMap(text)
	if err != nil {
		return Parser{}, err
	}
	if err := onlyKeys(m, "$schema", "name", "description", "script", "tagFields",
		"fieldsToBeRemovedBeforeParsing", "testCases"); err != nil {
		return Parser{}, err
	}
	p := Parser{YAML: text}
	if err := schemaURL(m, parserSchema); err != nil {
		return Parser{}, err
	}
	if p.Name, err = str(m, "name", true); err != nil {
		return Parser{}, err
	}
	if p.Script, err = str(m, "script", true); err != nil {
		return Parser{}, err
	}
	if p.FieldsToTag, err = strList(m["tagFields"], "tagFields"); err != nil {
		return Parser{}, err
	}
	if p.FieldsToBeRemovedBeforeParsing, err = strList(m["fieldsToBeRemovedBeforeParsing"], "fieldsToBeRemovedBeforeParsing"); err != nil {
		return Parser{}, err
	}
	p.TestCases, err = testCases(m["testCases"])
	return p, err
}

func testCases(v any) ([]ParserTestCase, error) {
	if v == nil {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("testCases must be a list")
	}
	var out []ParserTestCase
	for i, item := range list {
		tc, err := testCase(item)
		if err != nil {
			return nil, fmt.Errorf("testCases[%d]: %w", i, err)
		}
		out = append(out, tc)
	}
	return out, nil
}

func testCase(v any) (ParserTestCase, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return ParserTestCase{}, fmt.Errorf("must be a mapping")
	}
	if err := onlyKeys(m, "event", "assertions"); err != nil {
		return ParserTestCase{}, err
	}
	ev, ok := m["event"].(map[string]any)
	if !ok {
		return ParserTestCase{}, fmt.Errorf("event must be a mapping with rawString")
	}
	if err := onlyKeys(ev, "rawString"); err != nil {
		return ParserTestCase{}, fmt.Errorf("event: %w", err)
	}
	raw, ok := ev["rawString"].(string)
	if !ok {
		return ParserTestCase{}, fmt.Errorf("event.rawString must be a string")
	}
	tc := ParserTestCase{RawString: raw}
	if m["assertions"] == nil {
		return tc, nil
	}
	list, ok := m["assertions"].([]any)
	if !ok {
		return tc, fmt.Errorf("assertions must be a list")
	}
	for i, a := range list {
		as, err := assertion(a)
		if err != nil {
			return tc, fmt.Errorf("assertions[%d]: %w", i, err)
		}
		tc.Assertions = append(tc.Assertions, as)
	}
	return tc, nil
}

func assertion(v any) (ParserAssertion, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return ParserAssertion{}, fmt.Errorf("must be a mapping")
	}
	if err := onlyKeys(m, "outputEventIndex", "fieldsHaveValues", "fieldsNotPresent"); err != nil {
		return ParserAssertion{}, err
	}
	idx, ok := m["outputEventIndex"].(int)
	if !ok || idx < 0 {
		return ParserAssertion{}, fmt.Errorf("outputEventIndex must be an integer >= 0")
	}
	a := ParserAssertion{OutputEventIndex: idx}
	if hv := m["fieldsHaveValues"]; hv != nil {
		hm, ok := hv.(map[string]any)
		if !ok {
			return a, fmt.Errorf("fieldsHaveValues must be a mapping")
		}
		a.FieldsHaveValues = map[string]string{}
		for k, val := range hm {
			s, ok := val.(string)
			if !ok {
				return a, fmt.Errorf("fieldsHaveValues[%q] must be a string (quote it)", k)
			}
			a.FieldsHaveValues[k] = s
		}
	}
	var err error
	a.FieldsNotPresent, err = strList(m["fieldsNotPresent"], "fieldsNotPresent")
	return a, err
}

// parseDashboardTemplate validates a dashboard YAML template.
func parseDashboardTemplate(text string) (Dashboard, error) {
	m, err := yamlMap(text)
	if err != nil {
		return Dashboard{}, err
	}
	if err := schemaURL(m, dashboardSchema); err != nil {
		return Dashboard{}, err
	}
	d := Dashboard{YAML: text}
	if d.Name, err = str(m, "name", true); err != nil {
		return Dashboard{}, err
	}
	widgets, ok := m["widgets"].(map[string]any)
	if !ok {
		return Dashboard{}, fmt.Errorf("widgets must be a mapping of widget id to widget")
	}
	for id, w := range widgets {
		if err := widget(w); err != nil {
			return Dashboard{}, fmt.Errorf("widgets.%s: %w", id, err)
		}
	}
	d.Widgets = len(widgets)
	if p := m["parameters"]; p != nil {
		params, ok := p.(map[string]any)
		if !ok {
			return Dashboard{}, fmt.Errorf("parameters must be a mapping")
		}
		for id, pv := range params {
			pm, ok := pv.(map[string]any)
			if !ok || !slices.Contains([]any{"query", "text", "list", "file"}, pm["type"]) {
				return Dashboard{}, fmt.Errorf("parameters.%s: type must be query, text, list or file", id)
			}
		}
	}
	return d, nil
}

func widget(v any) error {
	w, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("must be a mapping")
	}
	switch w["type"] {
	case "query":
		if _, err := str(w, "queryString", true); err != nil {
			return err
		}
		if vis, _ := w["visualization"].(string); !slices.Contains(visualizations, vis) {
			return fmt.Errorf("visualization must be one of %s", strings.Join(visualizations, ", "))
		}
	case "note", "parameterPanel":
	default:
		return fmt.Errorf("type must be query, note or parameterPanel")
	}
	for _, k := range []string{"x", "y", "width", "height"} {
		if n, isInt := w[k].(int); w[k] != nil && (!isInt || n < 0) {
			return fmt.Errorf("%s must be an integer >= 0", k)
		}
	}
	return nil
}

// manifest is a package's manifest.yaml.
type manifest struct {
	Name, Version, Type string
}

var (
	packageName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$`)
	semver      = regexp.MustCompile(`^\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$`)
)

func parseManifest(text string) (manifest, error) {
	m, err := yamlMap(text)
	if err != nil {
		return manifest{}, err
	}
	if err := schemaURL(m, manifestSchema); err != nil {
		return manifest{}, err
	}
	var mf manifest
	if mf.Name, err = str(m, "name", true); err != nil {
		return mf, err
	}
	if !packageName.MatchString(mf.Name) {
		return mf, fmt.Errorf("name %q must be scope/name", mf.Name)
	}
	if mf.Version, err = str(m, "version", true); err != nil || !semver.MatchString(mf.Version) {
		return mf, fmt.Errorf("version must be a semantic version string like 1.0.0")
	}
	if mf.Type, err = str(m, "type", true); err != nil || (mf.Type != "application" && mf.Type != "library") {
		return mf, fmt.Errorf("type must be application or library")
	}
	return mf, nil
}

// yamlMap parses text as a YAML mapping.
func yamlMap(text string) (map[string]any, error) {
	var m map[string]any
	if err := yaml.Unmarshal([]byte(text), &m); err != nil {
		return nil, fmt.Errorf("invalid YAML: %w", err)
	}
	if m == nil {
		return nil, fmt.Errorf("template must be a YAML mapping")
	}
	return m, nil
}

func schemaURL(m map[string]any, prefix string) error {
	s, _ := m["$schema"].(string)
	if !strings.HasPrefix(s, prefix) || len(s) == len(prefix) {
		return fmt.Errorf("$schema must be %s<version>", prefix)
	}
	return nil
}

func str(m map[string]any, key string, required bool) (string, error) {
	v, ok := m[key]
	if !ok || v == nil {
		if required {
			return "", fmt.Errorf("%s missing", key)
		}
		return "", nil
	}
	s, ok := v.(string)
	if !ok || (required && strings.TrimSpace(s) == "") {
		return "", fmt.Errorf("%s must be a non-empty string", key)
	}
	return s, nil
}

func strList(v any, what string) ([]string, error) {
	if v == nil {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%s must be a list of strings", what)
	}
	out := make([]string, 0, len(list))
	for _, item := range list {
		s, ok := item.(string)
		if !ok {
			return nil, fmt.Errorf("%s must be a list of strings", what)
		}
		out = append(out, s)
	}
	return out, nil
}

func onlyKeys(m map[string]any, allowed ...string) error {
	for k := range m {
		if !slices.Contains(allowed, k) {
			return fmt.Errorf("unknown key %q", k)
		}
	}
	return nil
}
