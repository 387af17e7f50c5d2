package agent

import (
	"testing"

	"github.com/siemship/siemship/internal/pipeline"
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

// spooled is a sink behind a spool with a fixed room left.
type spooled struct {
	pipeline.Sink
	room int64
}

func (s spooled) Room() int64 { return s.room }

func TestShortSpools(t *testing.T) {
	const retained = 60 << 20 // Tetragon's default: 10MB × (1 + 5 backups)
	outputs := []pipeline.Output{
		{Name: "small", Sink: spooled{room: 10 << 20}},
		{Name: "big", Sink: spooled{room: 2 << 30}},
		{Name: "other", Sink: spooled{room: 1 << 20}},
		{Name: "plain"}, // no spool
	}
	routes := []pipeline.Route{{From: "tetragon", To: []string{"small", "big", "plain"}}, {From: "logpush", To: []string{"other"}}}
	got := shortSpools("tetragon", routes, outputs, retained)
	if len(got) != 1 || got[0].sink != "small" || got[0].room != 10<<20 {
		t.Errorf("routed: %+v, want only small with 10MiB", got)
	}
	if got := shortSpools("tetragon", nil, outputs, retained); len(got) != 2 || got[0].sink != "small" || got[1].sink != "other" {
		t.Errorf("no routes (every sink fed): %+v, want small and other", got)
	}
	if got := shortSpools("tetragon", routes, outputs, 0); len(got) != 0 {
		t.Errorf("nothing retained yet: %+v, want none", got)
	}
}
