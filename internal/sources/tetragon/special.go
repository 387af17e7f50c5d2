package tetragon

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
)

// openRegular opens path for reading only if it is a regular file. The agent
// runs as root and the export directory is writable by others on the node:
// a symlink there could point at a secret (the ingest token, a
// service-account token) and a FIFO would block the reader. O_NOFOLLOW
// refuses a symlink as the last component even if it was planted after the
// directory was listed, O_NONBLOCK keeps a FIFO from blocking the open, and
// fstat checks what was opened.
func openRegular(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, syscall.ELOOP) {
		return nil, fmt.Errorf("open %s: symlink: %w", path, errNotRegular)
	}
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("open %s: %s: %w", path, fi.Mode().Type(), errNotRegular)
	}
	return f, nil
}

// ignored reports names of the export directory that are not regular files,
// once each, so that a planted symlink or a FIFO is visible without
// flooding the log. Safe for concurrent use (the reader and the watcher both
// scan).
type ignored struct {
	mu      sync.Mutex
	seen    map[string]fs.FileMode
	log     *slog.Logger
	counter prometheus.Counter
}

func (ig *ignored) report(path string, mode fs.FileMode) {
	if ig == nil {
		return
	}
	ig.mu.Lock()
	defer ig.mu.Unlock()
	if prev, ok := ig.seen[path]; ok && prev == mode.Type() {
		return
	}
	if ig.seen == nil {
		ig.seen = map[string]fs.FileMode{}
	}
	ig.seen[path] = mode.Type()
	if ig.counter != nil {
		ig.counter.Inc()
	}
	if ig.log != nil {
		ig.log.Warn("not a regular file in the export directory, never read", "file", path, "type", mode.Type().String(),
			"hint", "only Tetragon should write there; a symlink could expose a secret")
	}
}
