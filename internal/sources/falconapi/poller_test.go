package falconapi

import (
	"strings"
	"testing"
)

// An answer over the limit is an error, never a truncated body that would
// parse as fewer records.
func TestReadAnswerRefusesOversize(t *testing.T) {
	if b, err := readAnswer(strings.NewReader("0123456789"), 10); err != nil || string(b) != "0123456789" {
		t.Fatalf("at the limit: %q, %v", b, err)
	}
	if b, err := readAnswer(strings.NewReader("0123456789x"), 10); err == nil {
		t.Fatalf("over the limit accepted: %q", b)
	}
}
