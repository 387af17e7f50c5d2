package tetragon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Status returns the status-line fields: counters, backlog and how many
// rotations Tetragon can do before it deletes a file not read yet.
func (s *Source) Status() []any {
	st := s.Stats()
	return []any{
		"events_read", st.EventsRead, "events_acked", st.EventsAcked,
		"lag_bytes", st.LagBytes, "files_behind", st.FilesBehind,
		"rotations_before_loss", st.RotationsBeforeLoss, "lost_bytes", st.LostBytes,
	}
}

// Verify checks that the export file (or at least its directory) is there
// and readable; it reads no data.
func (s *Source) Verify(context.Context) error { return CheckFile(s.cfg.Path) }

// CheckFile says, in words an operator can act on, why the export file
// cannot be read; nil when it can.
func CheckFile(path string) error {
	f, err := os.Open(path)
	if err == nil {
		return f.Close()
	}
	switch {
	case errors.Is(err, os.ErrNotExist):
		if _, derr := os.Stat(filepath.Dir(path)); derr != nil {
			return fmt.Errorf("directory %s does not exist: mount Tetragon's export directory (hostPath) into the pod", filepath.Dir(path))
		}
		return fmt.Errorf("not found: is Tetragon's export enabled (tetragon.exportFilename) and its directory mounted into this pod? (%s does not exist yet; the agent waits for it)", path)
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("permission denied: the agent must run as uid 0, or Tetragon's exportFilePerm must allow reading (%s)", path)
	}
	return fmt.Errorf("cannot open %s: %w", path, err)
}
