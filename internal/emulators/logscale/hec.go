package logscale

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

// decodeHEC decodes a HEC body: JSON objects one after another, separated by
// optional whitespace (not an array), each
//
//	{"time":1713061094.376,"event":{…}|"text","fields":{"#tag":"v","f":"v"},
//	 "index":"repo","sourcetype":"…","source":"…","host":"…"}
//
// event is required; index, when present, must be the token's repository;
// sourcetype becomes the #type tag, fields whose names start with '#' become
// tags, source and host become @source and @host. An empty body is valid.
func decodeHEC(in *decodeIn) error {
	body := in.body
	for i, n := skipSpace(body, 0), 0; i < len(body); i, n = skipSpace(body, i), n+1 {
		end, err := objectEnd(body, i)
		if err != nil {
			return badRequest("event %d: %v", n, err)
		}
		obj := body[i:end]
		if !gjson.Valid(obj) {
			return badRequest("event %d: invalid JSON", n)
		}
		if err := hecEvent(in, gjson.Parse(obj)); err != nil {
			return badRequest("event %d: %v", n, err)
		}
		i = end
	}
	return nil
}

func hecEvent(in *decodeIn, v gjson.Result) error {
	var ev, tm, fields gjson.Result
	var extra map[string]string
	var err error
	tags := map[string]string{}
	v.ForEach(func(k, val gjson.Result) bool {
		switch k.Str {
		case "event":
			ev = val
		case "time":
			tm = val
		case "fields":
			fields = val
		case "index":
			if val.Type != gjson.String || val.Str != in.token.Repo {
				err = fmt.Errorf("index %s is not the token's repository", val.Raw)
			}
		case "sourcetype", "source", "host":
			if val.Type != gjson.String {
				err = fmt.Errorf("%s must be a string", k.Str)
			} else if k.Str == "sourcetype" {
				tags["type"] = val.Str
			} else {
				extra = setField(extra, "@"+k.Str, val.Str)
			}
		default:
			err = fmt.Errorf("unknown key %q", k.Str)
		}
		return err == nil
	})
	if err != nil {
		return err
	}
	ms, err := hecTime(tm, in.now)
	if err != nil {
		return err
	}
	if fields.Exists() {
		f, err := stringMap(fields)
		if err != nil {
			return fmt.Errorf("fields: %v", err)
		}
		for name, val := range f {
			if tag, ok := strings.CutPrefix(name, "#"); ok {
				tags[tag] = val
			} else {
				extra = setField(extra, name, val)
			}
		}
	}
	switch {
	case ev.Type == gjson.String && ev.Str != "":
		in.event(ms, "", ev.Str, "", tags, extra)
	case ev.IsObject():
		in.event(ms, "", ev.Raw, ev.Raw, tags, extra)
	case !ev.Exists():
		return fmt.Errorf("event missing")
	default:
		return fmt.Errorf("event must be a JSON object or a non-empty string")
	}
	in.p.group(tags, 1)
	return nil
}

// hecTime reads HEC's time: epoch seconds, a fraction allowed, as a number
// or a numeric string (as Splunk accepts). Absent means receive time.
func hecTime(tm gjson.Result, now int64) (int64, error) {
	var s string
	switch tm.Type {
	case gjson.Number:
		s = tm.Raw
	case gjson.String:
		s = tm.Str
	default:
		if !tm.Exists() {
			return now, nil
		}
		return 0, fmt.Errorf("time must be epoch seconds")
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || f > math.MaxInt64/1000 {
		return 0, fmt.Errorf("time %q is not epoch seconds", s)
	}
	return int64(math.Round(f * 1000)), nil
}

func setField(m map[string]string, k, v string) map[string]string {
	if m == nil {
		m = map[string]string{}
	}
	m[k] = v
	return m
}

func skipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

// objectEnd returns the index just past the JSON object starting at s[i],
// tracking strings and nesting only; gjson validates the slice afterwards.
func objectEnd(s string, i int) (int, error) {
	if s[i] != '{' {
		return 0, fmt.Errorf("expected a JSON object")
	}
	depth := 0
	for j := i; j < len(s); j++ {
		switch s[j] {
		case '"':
			for j++; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' {
					j++
				}
			}
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return j + 1, nil
			}
		}
	}
	return 0, fmt.Errorf("truncated JSON object")
}
