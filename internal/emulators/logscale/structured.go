package logscale

import (
	"fmt"
	"strconv"
	"time"

	"github.com/tidwall/gjson"
)

// decodeStructured decodes a humio-structured body:
//
//	[{"tags":{"k":"v"},"events":[{"timestamp":T,"timezone":"…","attributes":{…},"rawstring":"…"}]}]
//
// It validates the whole body before anything is kept, then walks it once
// without building a map per event: in Discard mode this is the hot path of
// the agent's benchmark. Unknown keys are rejected (stricter than LogScale
// may be) so that a misspelt key fails a test instead of being dropped.
func decodeStructured(in *decodeIn) error {
	if !gjson.Valid(in.body) {
		return badRequest("body is not valid JSON")
	}
	w := &walker{s: in.body}
	if w.peek() != '[' {
		return badRequest("body must be a JSON array of event groups")
	}
	return w.array(func(gi int) error { return structuredGroup(in, w, gi) })
}

func structuredGroup(in *decodeIn, w *walker, gi int) error {
	if w.peek() != '{' {
		return badRequest("group %d: not a JSON object", gi)
	}
	var tags map[string]string
	first, n, seen, tagged := len(in.p.events), 0, false, false
	err := w.object(func(key string) error {
		if (key == "tags" && tagged) || (key == "events" && seen) {
			return badRequest("group %d: duplicate key %q", gi, key)
		}
		switch key {
		case "tags":
			tagged = true
			var err error
			if tags, err = stringMap(gjson.Parse(w.value())); err != nil {
				return badRequest("group %d: tags: %v", gi, err)
			}
		case "events":
			if w.peek() != '[' {
				return badRequest("group %d: events must be an array", gi)
			}
			seen = true
			return w.array(func(ei int) error {
				n++
				if err := structuredEvent(in, w); err != nil {
					return badRequest("group %d event %d: %v", gi, ei, err)
				}
				return nil
			})
		default:
			return badRequest("group %d: unknown key %q", gi, key)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !seen {
		return badRequest("group %d: events missing", gi)
	}
	// tags may follow events in the object: set them now.
	for i := first; i < len(in.p.events); i++ {
		in.p.events[i].Tags = tags
	}
	in.p.group(tags, n)
	return nil
}

func structuredEvent(in *decodeIn, w *walker) error {
	if w.peek() != '{' {
		return fmt.Errorf("not a JSON object")
	}
	var ts, tz, raw gjson.Result
	var attrs string
	keys := map[string]bool{} // small: at most four entries, on the stack
	err := w.object(func(key string) error {
		if keys[key] {
			return fmt.Errorf("duplicate key %q", key)
		}
		keys[key] = true
		switch key {
		case "timestamp":
			ts = gjson.Parse(w.value())
		case "timezone":
			if tz = gjson.Parse(w.value()); tz.Type != gjson.String {
				return fmt.Errorf("timezone must be a string")
			}
		case "attributes":
			if attrs = w.value(); attrs[0] != '{' {
				return fmt.Errorf("attributes must be a JSON object")
			}
		case "rawstring":
			if raw = gjson.Parse(w.value()); raw.Type != gjson.String {
				return fmt.Errorf("rawstring must be a string")
			}
		default:
			return fmt.Errorf("unknown key %q", key)
		}
		return nil
	})
	if err != nil {
		return err
	}
	ms, err := parseTimestamp(ts, tz.Str)
	if err != nil {
		return err
	}
	rawstring := attrs
	if raw.Exists() {
		rawstring = raw.Str
	}
	in.event(ms, tz.Str, rawstring, attrs, nil, nil)
	return nil
}

// parseTimestamp reads a structured event's timestamp: integer epoch
// milliseconds, or an ISO 8601 string with a zone (or without one when the
// event's timezone field names it).
func parseTimestamp(ts gjson.Result, tz string) (int64, error) {
	switch ts.Type {
	case gjson.Number:
		if !isDigits(ts.Raw) {
			return 0, fmt.Errorf("timestamp %s is not an integer number of epoch milliseconds", ts.Raw)
		}
		ms, err := strconv.ParseInt(ts.Raw, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("timestamp %s out of range", ts.Raw)
		}
		return ms, nil
	case gjson.String:
		t, err := parseTimeString(ts.Str, tz)
		if err != nil {
			return 0, err
		}
		return t.UnixMilli(), nil
	case gjson.Null:
		if !ts.Exists() {
			return 0, fmt.Errorf("timestamp missing")
		}
	}
	return 0, fmt.Errorf("timestamp must be epoch milliseconds or an ISO 8601 string")
}

const isoNoZone = "2006-01-02T15:04:05.999999999"

func parseTimeString(s, tz string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(isoNoZone+"Z0700", s); err == nil { // basic offset, +0200
		return t, nil
	}
	if _, err := time.Parse(isoNoZone, s); err != nil {
		return time.Time{}, fmt.Errorf("timestamp %q is not ISO 8601", s)
	}
	if tz == "" {
		return time.Time{}, fmt.Errorf("timestamp %q has no zone and the event no timezone", s)
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return time.Time{}, fmt.Errorf("unknown timezone %q", tz)
	}
	return time.ParseInLocation(isoNoZone, s, loc)
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// stringMap reads a JSON object whose values are all strings.
func stringMap(v gjson.Result) (map[string]string, error) {
	if !v.IsObject() {
		return nil, fmt.Errorf("must be a JSON object")
	}
	m := map[string]string{}
	var err error
	v.ForEach(func(k, val gjson.Result) bool {
		if val.Type != gjson.String {
			err = fmt.Errorf("value of %q must be a string", k.Str)
			return false
		}
		m[k.Str] = val.Str
		return true
	})
	return m, err
}

// flatten adds the fields of a JSON object to out the way LogScale names
// them: nested objects as dotted names, arrays as name[i]. Strings are
// unescaped, numbers and booleans kept as written, null kept as "null"
// (parseJson's default handleNull=keep; unverified for structured ingest).
func flatten(obj string, out map[string]string) {
	flattenInto(gjson.Parse(obj), "", out)
}

func flattenInto(v gjson.Result, name string, out map[string]string) {
	switch {
	case v.IsObject():
		v.ForEach(func(k, c gjson.Result) bool {
			child := k.Str
			if name != "" {
				child = name + "." + k.Str
			}
			flattenInto(c, child, out)
			return true
		})
	case v.IsArray():
		i := 0
		v.ForEach(func(_, c gjson.Result) bool {
			flattenInto(c, name+"["+strconv.Itoa(i)+"]", out)
			i++
			return true
		})
	case v.Type == gjson.String:
		out[name] = v.Str
	default:
		out[name] = v.Raw
	}
}
