// Package checkpoints persists source positions so that a restart continues
// exactly where delivery was confirmed.
//
// Each source owns one small JSON file in the state directory. Writes are
// atomic and durable: temp file, fsync, rename (github.com/google/renameio),
// then an fsync of the directory so the rename itself survives a power loss
// (renameio does not do that last step).
package checkpoints

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"

	"github.com/google/renameio/v2"
)

// Store reads and writes checkpoints in one directory. Safe for concurrent
// use as long as each name has a single writer.
type Store struct {
	dir string
}

var validName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

// Open prepares dir (creating it if needed) and checks that it is writable,
// so a misconfigured state directory fails at start, not at the first save.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create state directory %s: %w", dir, err)
	}
	probe := filepath.Join(dir, ".write-test")
	if err := os.WriteFile(probe, nil, 0o600); err != nil {
		return nil, fmt.Errorf("state directory %s is not writable: %w", dir, err)
	}
	if err := os.Remove(probe); err != nil {
		return nil, fmt.Errorf("clean up %s: %w", probe, err)
	}
	return &Store{dir: dir}, nil
}

// Dir returns the state directory.
func (s *Store) Dir() string { return s.dir }

// Path returns the file that holds the checkpoint called name.
func (s *Store) Path(name string) string {
	return filepath.Join(s.dir, name+".json")
}

// Load decodes the checkpoint called name into v. It reports false, with no
// error, when no checkpoint was saved yet.
func (s *Store) Load(name string, v any) (bool, error) {
	if !validName.MatchString(name) {
		return false, fmt.Errorf("invalid checkpoint name %q", name)
	}
	data, err := os.ReadFile(s.Path(name))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read checkpoint: %w", err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return false, fmt.Errorf("decode checkpoint %s: %w", s.Path(name), err)
	}
	return true, nil
}

// Save atomically replaces the checkpoint called name with v.
func (s *Store) Save(name string, v any) error {
	if !validName.MatchString(name) {
		return fmt.Errorf("invalid checkpoint name %q", name)
	}
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode checkpoint %s: %w", name, err)
	}
	path := s.Path(name)
	// The temporary file goes in the state directory itself: the rename
	// then never crosses a mount, and renameio need not probe the system
	// temp directory (creating and renaming test files) on every save.
	if err := renameio.WriteFile(path, append(data, '\n'), 0o600, renameio.WithTempDir(s.dir)); err != nil {
		return fmt.Errorf("write checkpoint %s: %w", path, err)
	}
	return syncDir(s.dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open state directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync state directory %s: %w", dir, err)
	}
	return nil
}
