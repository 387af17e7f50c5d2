package agent

import (
	"testing"

	"github.com/siemship/siemship/internal/sources/tetragon"
)

func TestAtRisk(t *testing.T) {
	for _, tc := range []struct {
		behind, left int
		want         bool
	}{
		{0, 0, false}, // caught up
		{1, 5, false}, // draining the rotated file: normal
		{2, 4, true},  // several files behind
		{1, 1, true},  // the next rotation deletes unread data
	} {
		if got := atRisk(tetragon.Stats{FilesBehind: tc.behind, RotationsBeforeLoss: tc.left}); got != tc.want {
			t.Errorf("files_behind %d, rotations_before_loss %d: at risk %v, want %v", tc.behind, tc.left, got, tc.want)
		}
	}
}
