package jsonstr

import (
	"encoding/json"
	"testing"
)

// FuzzJSONString: the output is always valid JSON that decodes to the
// input as encoding/json would render it, and Len agrees.
func FuzzJSONString(f *testing.F) {
	for _, s := range []string{"", "a\"b", "\xff\xfe", "é\x00", "\xe2\x82", `{"x":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		got := Append(nil, in)
		if Len(in) != len(got) {
			t.Fatalf("Len = %d, len = %d", Len(in), len(got))
		}
		var dec string
		if err := json.Unmarshal(got, &dec); err != nil {
			t.Fatalf("not valid JSON: %s: %v", got, err)
		}
		ref, _ := json.Marshal(string(in))
		var want string
		_ = json.Unmarshal(ref, &want)
		if dec != want {
			t.Fatalf("decodes to %q, want %q", dec, want)
		}
	})
}
