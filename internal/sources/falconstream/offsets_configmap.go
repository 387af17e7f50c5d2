package falconstream

import (
	"context"
	"encoding/json"
	"fmt"
)

// Blobs is a small keyed store shared by the leader-only sources, such as
// leader.ConfigMapStore (one ConfigMap, written only by the Lease holder,
// each write conditional on the resourceVersion last seen).
type Blobs interface {
	Load(ctx context.Context, key string) ([]byte, bool, error)
	Save(ctx context.Context, key string, value []byte) error
	Describe() string
}

// ConfigMapOffsets keeps the offsets under the source's name in a store
// every replica of a Deployment reaches, so that a replacement pod on
// another node resumes at the committed offsets. Same content as the file.
type ConfigMapOffsets struct {
	ConfigMap Blobs
	Name      string
}

var (
	_ OffsetStore = ConfigMapOffsets{}
	_ OffsetStore = FileOffsets{}
)

// Load implements OffsetStore.
func (c ConfigMapOffsets) Load(ctx context.Context) (map[string]int64, bool, error) {
	raw, ok, err := c.ConfigMap.Load(ctx, c.Name)
	if err != nil || !ok {
		return nil, false, err
	}
	var st state
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, false, fmt.Errorf("decode offsets %s key %s: %w", c.ConfigMap.Describe(), c.Name, err)
	}
	if st.Version != stateVersion {
		return nil, false, fmt.Errorf("offsets in %s key %s have version %d, this build reads %d", c.ConfigMap.Describe(), c.Name, st.Version, stateVersion)
	}
	return st.Offsets, true, nil
}

// Save implements OffsetStore.
func (c ConfigMapOffsets) Save(ctx context.Context, offsets map[string]int64) error {
	raw, err := json.Marshal(state{Version: stateVersion, Offsets: offsets})
	if err != nil {
		return fmt.Errorf("encode offsets: %w", err)
	}
	return c.ConfigMap.Save(ctx, c.Name, raw)
}
