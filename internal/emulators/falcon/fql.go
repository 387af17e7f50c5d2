package falcon

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"
)

// filter is a parsed FQL subset: terms joined by + (AND), each
// field:[op]value with op one of >, >=, <, <=, ! or none (equality), the
// value in single quotes or bare. Times compare as times.
type filter []term

type term struct {
	field, op, value string
	t                time.Time
	isTime           bool
}

// parseFilter parses raw ("" matches everything).
func parseFilter(raw string) (filter, error) {
	if raw == "" {
		return nil, nil
	}
	var f filter
	for _, part := range splitTerms(raw) {
		if part != strings.TrimSpace(part) || part == "" {
			return nil, fmt.Errorf("invalid filter %q: empty term or white space around one (was the filter URL-encoded? an unencoded + arrives as a space)", raw)
		}
		field, rest, ok := strings.Cut(part, ":")
		if !ok || field == "" {
			return nil, fmt.Errorf("invalid filter term %q: want field:value", part)
		}
		t := term{field: field}
		for _, op := range []string{">=", "<=", ">", "<", "!"} {
			if v, ok := strings.CutPrefix(rest, op); ok {
				t.op, rest = op, v
				break
			}
		}
		if strings.HasPrefix(rest, "'") {
			if len(rest) < 2 || !strings.HasSuffix(rest, "'") {
				return nil, fmt.Errorf("invalid filter term %q: unterminated quote", part)
			}
			rest = rest[1 : len(rest)-1]
		} else if strings.ContainsAny(rest, "'") {
			return nil, fmt.Errorf("invalid filter term %q: stray quote", part)
		}
		t.value = rest
		if tm, err := time.Parse(time.RFC3339Nano, rest); err == nil {
			t.t, t.isTime = tm, true
		} else if strings.HasSuffix(field, "timestamp") && t.op != "" && t.op != "!" {
			return nil, fmt.Errorf("invalid filter term %q: a timestamp must be RFC 3339 in quotes", part)
		}
		f = append(f, t)
	}
	return f, nil
}

// splitTerms splits at + outside quotes.
func splitTerms(s string) []string {
	var out []string
	quoted, start := false, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\'':
			quoted = !quoted
		case '+':
			if !quoted {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

// matchIn reports whether record r of spec matches every term.
func (f filter) matchIn(spec ResourceSpec, r *Record) bool {
	var doc []byte
	for _, t := range f {
		var got string
		var gotT time.Time
		isTime := false
		if t.field == spec.TimeField {
			gotT, isTime = r.Time, true
		} else {
			if doc == nil {
				doc = recordJSON(spec, *r)
			}
			res := gjson.GetBytes(doc, t.field)
			if !res.Exists() {
				return false
			}
			got = res.String()
			if t.isTime {
				if tm, err := time.Parse(time.RFC3339Nano, got); err == nil {
					gotT, isTime = tm, true
				}
			}
		}
		var c int
		switch {
		case isTime && t.isTime:
			c = gotT.Compare(t.t)
		case isTime:
			return false
		default:
			a, aerr := strconv.ParseFloat(got, 64)
			b, berr := strconv.ParseFloat(t.value, 64)
			if aerr == nil && berr == nil {
				c = cmpFloat(a, b)
			} else {
				c = strings.Compare(got, t.value)
			}
		}
		ok := false
		switch t.op {
		case "":
			ok = c == 0
		case "!":
			ok = c != 0
		case ">":
			ok = c > 0
		case ">=":
			ok = c >= 0
		case "<":
			ok = c < 0
		case "<=":
			ok = c <= 0
		}
		if !ok {
			return false
		}
	}
	return true
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
