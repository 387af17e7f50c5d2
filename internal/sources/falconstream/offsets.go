package falconstream

import (
	"context"
	"fmt"

	"github.com/siemship/siemship/internal/checkpoints"
)

// OffsetStore persists the committed offset of every partition: the last
// offset whose event every sink delivered. Load reports false when nothing
// was saved yet. Save is called by one goroutine at a time.
type OffsetStore interface {
	Load(ctx context.Context) (offsets map[string]int64, ok bool, err error)
	Save(ctx context.Context, offsets map[string]int64) error
}

// state is the checkpoint's content.
type state struct {
	Version int              `json:"version"`
	Offsets map[string]int64 `json:"offsets"` // by partition id
}

const stateVersion = 1

// Offsets keeps the offsets at a checkpoint location: the state directory,
// or the leader's ConfigMap under leader election.
type Offsets struct{ At checkpoints.Location }

var _ OffsetStore = Offsets{}

// Load implements OffsetStore.
func (o Offsets) Load(ctx context.Context) (map[string]int64, bool, error) {
	var st state
	ok, err := o.At.Load(ctx, &st)
	if err != nil || !ok {
		return nil, false, err
	}
	if st.Version != stateVersion {
		return nil, false, fmt.Errorf("checkpoint %s has version %d, this build reads %d", o.At, st.Version, stateVersion)
	}
	return st.Offsets, true, nil
}

// Save implements OffsetStore.
func (o Offsets) Save(ctx context.Context, offsets map[string]int64) error {
	return o.At.Save(ctx, state{Version: stateVersion, Offsets: offsets})
}
