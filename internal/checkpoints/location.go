package checkpoints

import (
	"context"
	"encoding/json"
	"fmt"
)

// Location is where one source keeps its checkpoint as JSON: a file in the
// state directory, or a key of a store every replica of a Deployment
// reaches (the leader's ConfigMap), so that a replacement pod on another
// node resumes where the last leader stopped.
type Location interface {
	// Load decodes the checkpoint into v; false, with no error, when none
	// was saved yet.
	Load(ctx context.Context, v any) (bool, error)
	// Save replaces the checkpoint with v.
	Save(ctx context.Context, v any) error
	// String names the place, for messages.
	String() string
}

// Blobs is a small keyed store shared by the replicas, such as
// leader.ConfigMapStore (one ConfigMap, written only by the Lease holder,
// each write conditional on the resourceVersion last seen).
type Blobs interface {
	Load(ctx context.Context, key string) ([]byte, bool, error)
	Save(ctx context.Context, key string, value []byte) error
	Describe() string
}

// At is the checkpoint file called name in the state directory.
func (s *Store) At(name string) Location { return fileLocation{s, name} }

// InBlobs is the checkpoint under key in b, with the same content as the
// file would have.
func InBlobs(b Blobs, key string) Location { return blobLocation{b, key} }

type fileLocation struct {
	s    *Store
	name string
}

func (f fileLocation) Load(_ context.Context, v any) (bool, error) { return f.s.Load(f.name, v) }
func (f fileLocation) Save(_ context.Context, v any) error         { return f.s.Save(f.name, v) }
func (f fileLocation) String() string                              { return f.s.Path(f.name) }

type blobLocation struct {
	b   Blobs
	key string
}

func (l blobLocation) Load(ctx context.Context, v any) (bool, error) {
	raw, ok, err := l.b.Load(ctx, l.key)
	if err != nil || !ok {
		return false, err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return false, fmt.Errorf("decode checkpoint %s: %w", l, err)
	}
	return true, nil
}

func (l blobLocation) Save(ctx context.Context, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode checkpoint %s: %w", l, err)
	}
	return l.b.Save(ctx, l.key, raw)
}

func (l blobLocation) String() string { return l.b.Describe() + " key " + l.key }
