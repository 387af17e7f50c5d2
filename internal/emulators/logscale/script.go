package logscale

import (
	"fmt"
	"strings"
)

// scriptCall is a function call of a LogScale query script, in the order
// the script makes them, with its arguments as written.
type scriptCall struct {
	name string
	args []scriptArg
}

// scriptArg is name=value, or value alone (the function's implicit
// parameter) with an empty name. Quoted values are unquoted.
type scriptArg struct{ name, value string }

// scriptCalls finds the calls of parseJson and parseTimestamp in a script,
// outside comments (// and /* */), strings ("…" with \ escapes) and regex
// literals (/…/ after = or ~). It reads no more of the language than that.
func scriptCalls(script string) ([]scriptCall, error) {
	var calls []scriptCall
	s := script
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], "//"):
			if j := strings.IndexByte(s[i:], '\n'); j >= 0 {
				i += j + 1
			} else {
				i = len(s)
			}
		case strings.HasPrefix(s[i:], "/*"):
			j := strings.Index(s[i+2:], "*/")
			if j < 0 {
				return nil, fmt.Errorf("script: unterminated /* comment")
			}
			i += j + 4
		case s[i] == '"':
			_, next, err := quoted(s, i)
			if err != nil {
				return nil, err
			}
			i = next
		case s[i] == '/' && i > 0 && strings.ContainsRune("=~", lastNonSpace(s[:i])):
			j := i + 1
			for j < len(s) && s[j] != '/' {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			i = j + 1
		case isIdentStart(s[i]) && (i == 0 || !isIdent(s[i-1])):
			j := i
			for j < len(s) && isIdent(s[j]) {
				j++
			}
			name := s[i:j]
			k := j
			for k < len(s) && (s[k] == ' ' || s[k] == '\t') {
				k++
			}
			if (name == "parseJson" || name == "parseTimestamp") && k < len(s) && s[k] == '(' {
				args, next, err := callArgs(s, k)
				if err != nil {
					return nil, fmt.Errorf("script: %s: %w", name, err)
				}
				calls = append(calls, scriptCall{name: name, args: args})
				i = next
				continue
			}
			i = j
		default:
			i++
		}
	}
	return calls, nil
}

func lastNonSpace(s string) rune {
	t := strings.TrimRight(s, " \t\n\r")
	if t == "" {
		return 0
	}
	return rune(t[len(t)-1])
}

func isIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isIdent(c byte) bool { return isIdentStart(c) || (c >= '0' && c <= '9') }

// quoted reads the string literal at s[i] == '"'.
func quoted(s string, i int) (string, int, error) {
	var b strings.Builder
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			if j+1 < len(s) {
				j++
				b.WriteByte(s[j])
			}
		case '"':
			return b.String(), j + 1, nil
		default:
			b.WriteByte(s[j])
		}
	}
	return "", len(s), fmt.Errorf("script: unterminated string")
}

// callArgs reads the arguments of the call whose "(" is at s[i].
func callArgs(s string, i int) ([]scriptArg, int, error) {
	var args []scriptArg
	var cur strings.Builder
	var name string
	depth := 0
	flush := func() {
		v := strings.TrimSpace(cur.String())
		if name != "" || v != "" {
			args = append(args, scriptArg{name: strings.TrimSpace(name), value: v})
		}
		cur.Reset()
		name = ""
	}
	for j := i + 1; j < len(s); j++ {
		switch c := s[j]; {
		case c == '"':
			v, next, err := quoted(s, j)
			if err != nil {
				return nil, 0, err
			}
			cur.WriteString(v)
			j = next - 1
		case c == '(' || c == '[' || c == '{':
			depth++
			cur.WriteByte(c)
		case (c == ')' || c == ']' || c == '}') && depth > 0:
			depth--
			cur.WriteByte(c)
		case c == ')':
			flush()
			return args, j + 1, nil
		case c == ',' && depth == 0:
			flush()
		case c == '=' && depth == 0 && name == "":
			name = cur.String()
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	return nil, 0, fmt.Errorf("unterminated argument list")
}
