package syslogd

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// The kv body's test oracles, written independently of the sink's code
// (encoding/json tokens): tests of the sink and end-to-end tests that read
// what rsyslog received use the same two.

// FlattenJSON flattens a JSON object the way the kv body promises (nested
// keys joined with '.', array elements by index, every leaf as its string
// or JSON text).
func FlattenJSON(raw []byte) ([][2]string, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var out [][2]string
	var failed error
	var value func(key string)
	value = func(key string) {
		tok, err := dec.Token()
		if err != nil {
			failed = fmt.Errorf("flatten %.100s: %w", raw, err)
			return
		}
		switch v := tok.(type) {
		case json.Delim:
			if !dec.More() {
				dec.Token() // the closing delimiter
				out = append(out, [2]string{key, map[json.Delim]string{'{': "{}", '[': "[]"}[v]})
				return
			}
			for i := 0; failed == nil && dec.More(); i++ {
				k := strconv.Itoa(i)
				if v == '{' {
					t, _ := dec.Token()
					k = t.(string)
				}
				if key != "" {
					k = key + "." + k
				}
				value(k)
			}
			dec.Token()
		case string:
			out = append(out, [2]string{key, v})
		case json.Number:
			out = append(out, [2]string{key, v.String()})
		case bool:
			out = append(out, [2]string{key, strconv.FormatBool(v)})
		case nil:
			out = append(out, [2]string{key, "null"})
		}
	}
	value("")
	return out, failed
}

// ParseKV reads a kv body back into its pairs: key="JSON string",
// separated by one space.
func ParseKV(body string) ([][2]string, error) {
	var out [][2]string
	for len(body) > 0 {
		eq := strings.IndexByte(body, '=')
		if eq <= 0 || eq+1 >= len(body) || body[eq+1] != '"' {
			return nil, fmt.Errorf("no key=\"value\" at %.80q", body)
		}
		key, rest := body[:eq], body[eq+1:]
		end := 1
		for ; end < len(rest); end++ {
			if rest[end] == '\\' {
				end++
				continue
			}
			if rest[end] == '"' {
				break
			}
		}
		if end >= len(rest) {
			return nil, fmt.Errorf("unterminated value of %s", key)
		}
		var v string
		if err := json.Unmarshal([]byte(rest[:end+1]), &v); err != nil {
			return nil, fmt.Errorf("value of %s is not a JSON string: %w", key, err)
		}
		out = append(out, [2]string{key, v})
		body = strings.TrimPrefix(rest[end+1:], " ")
	}
	return out, nil
}
