package logscale

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// A parser's script needs LogScale's query engine, which cannot be
// emulated. Two of its functions decide whether events land at the right
// time, and those the emulator does run on a parser's test cases:
// parseJson() (the event's JSON members as dotted fields) and
// parseTimestamp() (a field through a java.time pattern, see
// javaTimeFormat, into @timestamp). A format that cannot parse what the
// test case holds gives @error as LogScale does, so a test case asserting
// @timestamp or the absence of @error fails here as it would in LogScale.

// ParserTestResult is what the emulator computed for one test case.
type ParserTestResult struct {
	// Fields are the output fields the emulator computes: @rawstring, and
	// @timestamp or @error and @error_msg.
	Fields map[string]string
	// Failures are the test case's assertions on those fields that do not
	// hold; assertions on fields the emulator cannot compute are not checked.
	Failures []string
}

// timestampCall is one parseTimestamp(...) of a script.
type timestampCall struct {
	field, as string
	special   string // epoch formats: millis, seconds, nanos
	java      *javaTimeFormat
	loc       *time.Location
	addErrors bool
	afterJSON bool // parseJson() comes before it
}

// epochFormats are parseTimestamp's special formats (case-insensitive).
var epochFormats = map[string]string{
	"millis": "millis", "milliseconds": "millis", "unixtimemillis": "millis",
	"seconds": "seconds", "unixtime": "seconds", "unixtimeseconds": "seconds",
	"nanos": "nanos",
}

func compileTimestampCall(args []scriptArg, afterJSON bool) (timestampCall, error) {
	c := timestampCall{as: "@timestamp", addErrors: true, afterJSON: afterJSON}
	format := defaultTimestampFormat
	for _, a := range args {
		switch a.name {
		case "", "format":
			format = a.value
		case "field":
			c.field = a.value
		case "as":
			c.as = a.value
		case "timezone":
			loc, err := time.LoadLocation(a.value)
			if err != nil {
				return c, fmt.Errorf("parseTimestamp: timezone %q: %w", a.value, err)
			}
			c.loc = loc
		case "addErrors":
			c.addErrors = a.value != "false"
		case "caseSensitive", "timezoneAs", "unit":
			return c, fmt.Errorf("parseTimestamp: parameter %s is not supported by the emulator", a.name)
		default:
			return c, fmt.Errorf("parseTimestamp: unknown parameter %s", a.name)
		}
	}
	if c.field == "" {
		return c, fmt.Errorf("parseTimestamp: field is required")
	}
	if special, ok := epochFormats[strings.ToLower(format)]; ok {
		c.special = special
		return c, nil
	}
	var err error
	if c.java, err = compileJavaTime(format); err != nil {
		return c, fmt.Errorf("parseTimestamp: %w", err)
	}
	return c, nil
}

// parse returns the epoch milliseconds of value.
func (c timestampCall) parse(value string) (int64, error) {
	switch c.special {
	case "millis", "nanos":
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not an integer epoch time", value)
		}
		if c.special == "nanos" {
			n /= 1e6
		}
		return n, nil
	case "seconds":
		f, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not an epoch time in seconds", value)
		}
		return int64(math.Floor(f * 1000)), nil
	}
	t, err := c.java.Parse(value, c.loc)
	if err != nil {
		return 0, err
	}
	return t.UnixMilli(), nil
}

// scriptTimestamp compiles a script's one parseTimestamp call; ok is false
// when the script has none.
func scriptTimestamp(script string) (c timestampCall, ok bool, err error) {
	calls, err := scriptCalls(script)
	if err != nil {
		return c, false, err
	}
	afterJSON := false
	found := 0
	for _, call := range calls {
		switch call.name {
		case "parseJson":
			afterJSON = true
		case "parseTimestamp":
			found++
			if c, err = compileTimestampCall(call.args, afterJSON); err != nil {
				return c, false, err
			}
		}
	}
	if found > 1 {
		return c, false, fmt.Errorf("the emulator checks scripts with one parseTimestamp call, this one has %d", found)
	}
	return c, found == 1, nil
}

// fields computes the output fields of raw.
func (c timestampCall) fields(raw string) map[string]string {
	out := map[string]string{"@rawstring": raw}
	in := map[string]string{"@rawstring": raw}
	if c.afterJSON {
		flatten(raw, in)
	}
	fail := func(msg string) {
		if c.addErrors {
			out["@error"] = "true"
			out["@error_msg"] = msg
		}
	}
	value, ok := in[c.field]
	if !ok {
		fail("parseTimestamp: field " + c.field + " not found")
		return out
	}
	ms, err := c.parse(value)
	if err != nil {
		fail("parseTimestamp: " + err.Error())
		return out
	}
	out[c.as] = strconv.FormatInt(ms, 10)
	return out
}

// RunParserTests runs the parser's parseJson and parseTimestamp on each of
// its test cases and checks the test cases' assertions on the fields those
// compute. An error means the emulator cannot run the script's
// parseTimestamp (a pattern letter or parameter it does not know) or the
// script is invalid; a parser without parseTimestamp passes.
func RunParserTests(p Parser) ([]ParserTestResult, error) {
	call, ok, err := scriptTimestamp(p.Script)
	if err != nil {
		return nil, err
	}
	results := make([]ParserTestResult, 0, len(p.TestCases))
	for _, tc := range p.TestCases {
		r := ParserTestResult{Fields: map[string]string{"@rawstring": tc.RawString}}
		if ok {
			r.Fields = call.fields(tc.RawString)
		}
		for _, a := range tc.Assertions {
			if a.OutputEventIndex != 0 {
				r.Failures = append(r.Failures, fmt.Sprintf("outputEventIndex %d: the parser makes one event of a test case", a.OutputEventIndex))
				continue
			}
			for _, k := range []string{"@timestamp", "@error", "@error_msg"} {
				want, asserted := a.FieldsHaveValues[k]
				if !ok || !asserted {
					continue
				}
				if got, has := r.Fields[k]; !has || got != want {
					r.Failures = append(r.Failures, fmt.Sprintf("%s is %q, the test case expects %q%s", k, got, want, errorNote(r.Fields)))
				}
			}
			for _, k := range a.FieldsNotPresent {
				if _, has := r.Fields[k]; has && ok && strings.HasPrefix(k, "@error") {
					r.Failures = append(r.Failures, fmt.Sprintf("%s is present, the test case expects it absent%s", k, errorNote(r.Fields)))
				}
			}
		}
		results = append(results, r)
	}
	return results, nil
}

func errorNote(f map[string]string) string {
	if msg := f["@error_msg"]; msg != "" {
		return " (" + msg + ")"
	}
	return ""
}

// CheckParserTemplate validates a parser YAML template as the emulator's
// GraphQL API and package installer do and runs its test cases with
// RunParserTests; it returns every failure, prefixed with the test case's
// index.
func CheckParserTemplate(yamlTemplate string) ([]string, error) {
	p, err := parseParserTemplate(yamlTemplate)
	if err != nil {
		return nil, err
	}
	results, err := RunParserTests(p)
	if err != nil {
		return nil, err
	}
	var failures []string
	for i, r := range results {
		for _, f := range r.Failures {
			failures = append(failures, fmt.Sprintf("testCases[%d]: %s", i, f))
		}
	}
	return failures, nil
}

// ScriptTimestamp is the @timestamp (epoch milliseconds) the script's
// parseTimestamp gives the raw event, or the error it records.
func ScriptTimestamp(script, raw string) (int64, error) {
	call, ok, err := scriptTimestamp(script)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, fmt.Errorf("the script has no parseTimestamp")
	}
	f := call.fields(raw)
	if msg, failed := f["@error_msg"]; failed {
		return 0, fmt.Errorf("%s", msg)
	}
	return strconv.ParseInt(f[call.as], 10, 64)
}
