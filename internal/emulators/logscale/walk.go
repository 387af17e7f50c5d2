package logscale

import (
	"strings"

	"github.com/tidwall/gjson"
)

// walker steps through a JSON text that gjson.Valid has accepted, visiting
// each byte about once. gjson's ForEach would re-scan a nested value at
// every level (group, events, event, attributes); on the structured hot
// path that costs more than the validation itself. Because the text is
// valid, the walker needs no syntax checks of its own.
type walker struct {
	s string
	i int
}

func (w *walker) space() {
	for w.i < len(w.s) {
		switch w.s[w.i] {
		case ' ', '\t', '\n', '\r':
			w.i++
		default:
			return
		}
	}
}

// peek returns the first byte of the next value.
func (w *walker) peek() byte {
	w.space()
	return w.s[w.i]
}

// value returns the next value's raw text and moves past it.
func (w *walker) value() string {
	w.space()
	start := w.i
	switch w.s[w.i] {
	case '"':
		w.str()
	case '{', '[':
		depth := 0
		for ; ; w.i++ {
			switch w.s[w.i] {
			case '"':
				w.str()
				w.i-- // the loop's w.i++ steps past the closing quote again
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					w.i++
					return w.s[start:w.i]
				}
			}
		}
	default: // number, true, false, null
		for w.i < len(w.s) && !strings.ContainsRune(",}] \t\r\n", rune(w.s[w.i])) {
			w.i++
		}
	}
	return w.s[start:w.i]
}

// str moves past the string starting at w.i. It jumps from quote to quote
// with IndexByte (vectorised) and counts the backslashes before each.
func (w *walker) str() {
	i := w.i + 1
	for {
		i += strings.IndexByte(w.s[i:], '"')
		k := i - 1
		for w.s[k] == '\\' {
			k--
		}
		if (i-1-k)%2 == 0 { // an even run of backslashes escapes nothing
			w.i = i + 1
			return
		}
		i++
	}
}

// object calls fn for each key of the object at w.i; fn must consume the
// key's value (with value, object or array). It stops at fn's first error.
func (w *walker) object(fn func(key string) error) error {
	w.space()
	w.i++ // {
	for {
		w.space()
		if w.s[w.i] == '}' {
			w.i++
			return nil
		}
		if w.s[w.i] == ',' {
			w.i++
			w.space()
		}
		raw := w.value()
		key := raw[1 : len(raw)-1]
		if strings.IndexByte(key, '\\') >= 0 {
			key = gjson.Parse(raw).Str
		}
		w.space()
		w.i++ // :
		if err := fn(key); err != nil {
			return err
		}
	}
}

// array calls fn for each item of the array at w.i; fn must consume the item.
func (w *walker) array(fn func(i int) error) error {
	w.space()
	w.i++ // [
	for n := 0; ; n++ {
		w.space()
		if w.s[w.i] == ']' {
			w.i++
			return nil
		}
		if w.s[w.i] == ',' {
			w.i++
		}
		if err := fn(n); err != nil {
			return err
		}
	}
}
