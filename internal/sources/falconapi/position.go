package falconapi

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/siemship/siemship/internal/checkpoints"
)

// Position is a resource's place: every record version with a timestamp
// before Timestamp is delivered, and so are the records IDs at exactly
// Timestamp. Timestamp is kept exactly as Falcon returned it. Ahead are
// other versions delivered already (id → its timestamp): after Timestamp,
// too recent to raise the mark (see settle), or at it but not yet among
// IDs; they are skipped when listed again.
type Position struct {
	Timestamp string            `json:"timestamp"`
	IDs       []string          `json:"ids,omitempty"`
	Ahead     map[string]string `json:"ahead,omitempty"`
}

// State is the checkpoint file of a source: a position per resource.
type State struct {
	Version   int                 `json:"version"`
	Resources map[string]Position `json:"resources"`
}

const stateVersion = 1

func (p Position) time() time.Time {
	t, _ := time.Parse(time.RFC3339Nano, p.Timestamp)
	return t
}

// Describe renders a checkpoint in words, for `siemship checkpoint show`.
func Describe(st State) string {
	var b strings.Builder
	names := make([]string, 0, len(st.Resources))
	for r := range st.Resources {
		names = append(names, r)
	}
	slices.Sort(names)
	for _, r := range names {
		p := st.Resources[r]
		fmt.Fprintf(&b, "  %s: delivered up to %s", r, p.Timestamp)
		if len(p.IDs) > 0 {
			fmt.Fprintf(&b, " (and %d record(s) at exactly that time)", len(p.IDs))
		}
		if len(p.Ahead) > 0 {
			fmt.Fprintf(&b, ", %d newer record(s) delivered", len(p.Ahead))
		}
		b.WriteByte('\n')
	}
	if len(names) == 0 {
		b.WriteString("  no resource polled yet\n")
	}
	return b.String()
}

// Reset changes the checkpoint at at: the resources listed (every one in
// the checkpoint when none) restart at to, or, when to is zero, lose their
// position so start_from applies again. The source must not be running:
// it would overwrite the change.
func Reset(ctx context.Context, at checkpoints.Location, resources []string, to time.Time) (State, error) {
	var st State
	if _, err := at.Load(ctx, &st); err != nil {
		return st, err
	}
	if st.Resources == nil {
		st.Resources = map[string]Position{}
	}
	st.Version = stateVersion
	if len(resources) == 0 {
		for r := range st.Resources {
			resources = append(resources, r)
		}
	}
	for _, r := range resources {
		if _, ok := specOf(r); !ok {
			return st, fmt.Errorf("unknown resource %q (resources: %s)", r, strings.Join(ResourceNames(), ", "))
		}
		if to.IsZero() {
			delete(st.Resources, r)
		} else {
			st.Resources[r] = Position{Timestamp: to.UTC().Format(time.RFC3339Nano)}
		}
	}
	if err := at.Save(ctx, st); err != nil {
		return st, err
	}
	return st, nil
}
