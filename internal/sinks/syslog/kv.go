package syslog

import (
	"strconv"

	"github.com/siemship/siemship/internal/jsonstr"
	"github.com/tidwall/gjson"
)

// maxKVDepth bounds the flattening recursion; deeper values are written as
// their JSON text.
const maxKVDepth = 32

// appendKV appends the event's JSON object flattened to space-separated
// key="value" pairs, in the event's order:
//   - keys of nested objects are joined with '.', array elements are keyed
//     by their index (args.0.int_arg);
//   - every value is a quoted JSON string: a string value is its own JSON
//     literal, any other leaf (number, true, false, null, {} or []) is the
//     JSON string of its JSON text (pid="1234").
//
// So the body reverses to the event's leaves: decode each value as a JSON
// string. Key bytes that would break the pair syntax (space, control
// characters, =, ", \) become '_'. Not safe for concurrent use (b.key).
func (b *builder) appendKV(dst, raw []byte) []byte {
	r := gjson.Parse(unsafeString(raw))
	if !r.IsObject() {
		// Not an object (a bare value the source let through): one pair.
		dst = append(dst, "value="...)
		return jsonstr.Append(dst, raw)
	}
	b.key = b.key[:0]
	first := true
	return b.flatten(dst, r, 0, &first)
}

func (b *builder) flatten(dst []byte, r gjson.Result, depth int, first *bool) []byte {
	base := len(b.key)
	isArray := r.IsArray()
	i := 0
	r.ForEach(func(k, v gjson.Result) bool {
		b.key = b.key[:base]
		if base > 0 {
			b.key = append(b.key, '.')
		}
		if isArray {
			b.key = strconv.AppendInt(b.key, int64(i), 10)
			i++
		} else {
			b.key = appendKey(b.key, k.Str)
		}
		if (v.IsObject() || v.IsArray()) && depth < maxKVDepth && hasMembers(v.Raw) {
			dst = b.flatten(dst, v, depth+1, first)
			return true
		}
		if !*first {
			dst = append(dst, ' ')
		}
		*first = false
		dst = append(dst, b.key...)
		dst = append(dst, '=')
		if v.Type == gjson.String {
			dst = appendNoCRLF(dst, unsafeBytes(v.Raw), true) // already a JSON literal
		} else {
			dst = jsonstr.Append(dst, v.Raw)
		}
		return true
	})
	b.key = b.key[:base]
	return dst
}

// hasMembers says whether a JSON object or array text has any member.
func hasMembers(raw string) bool {
	for i := 1; i < len(raw); i++ {
		switch raw[i] {
		case ' ', '\t', '\r', '\n':
		case '}', ']':
			return false
		default:
			return true
		}
	}
	return false
}

func appendKey(dst []byte, k string) []byte {
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c <= ' ' || c == '=' || c == '"' || c == '\\' || c == 0x7f {
			c = '_'
		}
		dst = append(dst, c)
	}
	return dst
}
