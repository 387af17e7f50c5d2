package logscale

import (
	"fmt"
	"strings"

	"github.com/tidwall/gjson"
)

// The decoders below serve the endpoints whose events LogScale hands to the
// token's parser. A parser's script cannot be run here (that needs
// LogScale's query engine), so these events keep the receive time as
// @timestamp, the line as @rawstring and #type = the parser's name.

// decodeUnstructured decodes humio-unstructured:
//
//	[{"messages":["line",…],"type":"parser","fields":{"k":"v"},"tags":{"k":"v"}}]
func decodeUnstructured(in *decodeIn) error {
	if !gjson.Valid(in.body) {
		return badRequest("body is not valid JSON")
	}
	root := gjson.Parse(in.body)
	if !root.IsArray() {
		return badRequest("body must be a JSON array of message groups")
	}
	var err error
	gi := 0
	root.ForEach(func(_, g gjson.Result) bool {
		if err = unstructuredGroup(in, g); err != nil {
			err = badRequest("group %d: %v", gi, err)
		}
		gi++
		return err == nil
	})
	return err
}

func unstructuredGroup(in *decodeIn, g gjson.Result) error {
	if !g.IsObject() {
		return fmt.Errorf("not a JSON object")
	}
	var messages, typ gjson.Result
	var fields, tags map[string]string
	var err error
	g.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "messages":
			if messages = v; !v.IsArray() {
				err = fmt.Errorf("messages must be an array")
			}
		case "type":
			if typ = v; v.Type != gjson.String {
				err = fmt.Errorf("type must be a string")
			}
		case "fields":
			if fields, err = stringMap(v); err != nil {
				err = fmt.Errorf("fields: %v", err)
			}
		case "tags":
			if tags, err = stringMap(v); err != nil {
				err = fmt.Errorf("tags: %v", err)
			}
		default:
			err = fmt.Errorf("unknown key %q", k.Str)
		}
		return err == nil
	})
	if err != nil {
		return err
	}
	if !messages.Exists() {
		return fmt.Errorf("messages missing")
	}
	all := map[string]string{}
	for k, v := range tags {
		all[k] = v
	}
	for k, v := range in.parserTags(typ.Str) {
		all[k] = v
	}
	n := 0
	messages.ForEach(func(_, m gjson.Result) bool {
		if m.Type != gjson.String {
			err = fmt.Errorf("message %d is not a string", n)
			return false
		}
		in.event(in.now, "", m.Str, "", all, fields)
		n++
		return true
	})
	in.p.group(all, n)
	return err
}

// decodeLines decodes HEC raw: every line (\n, \r\n or \r) is one event;
// empty lines are skipped.
func decodeLines(in *decodeIn) error {
	tags := in.parserTags("")
	n := 0
	for rest := in.body; rest != ""; {
		var line string
		i := strings.IndexAny(rest, "\r\n")
		switch {
		case i < 0:
			line, rest = rest, ""
		case rest[i] == '\r' && i+1 < len(rest) && rest[i+1] == '\n':
			line, rest = rest[:i], rest[i+2:]
		default:
			line, rest = rest[:i], rest[i+1:]
		}
		if line != "" {
			in.event(in.now, "", line, "", tags, nil)
			n++
		}
	}
	in.p.group(tags, n)
	return nil
}

// decodeRaw decodes /api/v1/ingest/raw: the whole body is one event.
func decodeRaw(in *decodeIn) error {
	if in.body == "" {
		return nil
	}
	tags := in.parserTags("")
	in.event(in.now, "", in.body, "", tags, nil)
	in.p.group(tags, 1)
	return nil
}

// decodeJSON decodes /api/v1/ingest/json: an object is one event, an array
// one event per item (each an object).
func decodeJSON(in *decodeIn) error {
	if !gjson.Valid(in.body) {
		return badRequest("body is not valid JSON")
	}
	root := gjson.Parse(in.body)
	tags := in.parserTags("")
	switch {
	case root.IsObject():
		raw := strings.TrimRight(root.Raw, " \t\r\n")
		in.event(in.now, "", raw, raw, tags, nil)
		in.p.group(tags, 1)
		return nil
	case !root.IsArray():
		return badRequest("body must be a JSON object or an array of objects")
	}
	var err error
	n := 0
	root.ForEach(func(_, v gjson.Result) bool {
		if !v.IsObject() {
			err = badRequest("item %d is not a JSON object", n)
			return false
		}
		in.event(in.now, "", v.Raw, v.Raw, tags, nil)
		n++
		return true
	})
	in.p.group(tags, n)
	return err
}
