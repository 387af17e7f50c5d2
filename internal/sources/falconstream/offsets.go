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

// state is the checkpoint file's content.
type state struct {
	Version int              `json:"version"`
	Offsets map[string]int64 `json:"offsets"` // by partition id
}

const stateVersion = 1

// FileOffsets keeps the offsets in the state directory, under the source's
// name.
type FileOffsets struct {
	Store *checkpoints.Store
	Name  string
}

// Load implements OffsetStore.
func (f FileOffsets) Load(context.Context) (map[string]int64, bool, error) {
	var st state
	ok, err := f.Store.Load(f.Name, &st)
	if err != nil || !ok {
		return nil, false, err
	}
	if st.Version != stateVersion {
		return nil, false, fmt.Errorf("checkpoint %s has version %d, this build reads %d", f.Store.Path(f.Name), st.Version, stateVersion)
	}
	return st.Offsets, true, nil
}

// Save implements OffsetStore.
func (f FileOffsets) Save(_ context.Context, offsets map[string]int64) error {
	return f.Store.Save(f.Name, state{Version: stateVersion, Offsets: offsets})
}
