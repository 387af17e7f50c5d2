package tetragon

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/klauspost/compress/gzip"
)

// fileSet knows the naming of Tetragon's export files: the live file
// (tetragon.log) and its backups tetragon-<UTC time>.log, optionally gzipped
// to .log.gz, whose names sort in time order (contracts/tetragon.md).
type fileSet struct {
	dir    string
	live   string // base name of the live file
	backup *regexp.Regexp
}

func newFileSet(path string) fileSet {
	dir, live := filepath.Split(path)
	ext := filepath.Ext(live)
	prefix := strings.TrimSuffix(live, ext)
	// lumberjack's backup name: <prefix>-2006-01-02T15-04-05.000<ext>
	re := regexp.MustCompile(`^` + regexp.QuoteMeta(prefix) +
		`-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}\.\d{3}` + regexp.QuoteMeta(ext) + `(\.gz)?$`)
	return fileSet{dir: filepath.Clean(dir), live: live, backup: re}
}

// entry is one file of the set as seen by a directory scan.
type entry struct {
	name string // base name as on disk
	key  string // sort key: backup name without .gz; the live file sorts last
	gz   bool
	live bool
	id   fileID
	size int64 // on disk (compressed size for .gz)
}

func (e entry) path(dir string) string { return filepath.Join(dir, e.name) }

// liveKey sorts after every backup name ('~' is above digits and letters).
const liveKey = "~live"

// scan lists the set's files in reading order: backups oldest first, the live
// file last. When a backup exists both plain and gzipped (compression in
// progress), the plain one wins: it still has its inode identity.
func (s fileSet) scan() ([]entry, error) {
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", s.dir, err)
	}
	byKey := make(map[string]entry)
	for _, de := range des {
		e, ok := s.classify(de.Name())
		if !ok {
			continue
		}
		fi, err := os.Stat(e.path(s.dir))
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted between ReadDir and Stat
		}
		if err != nil {
			return nil, fmt.Errorf("stat %s: %w", e.path(s.dir), err)
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		e.id, e.size = idOf(fi), fi.Size()
		if prev, dup := byKey[e.key]; dup && !prev.gz {
			continue
		}
		byKey[e.key] = e
	}
	out := make([]entry, 0, len(byKey))
	for _, e := range byKey {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b entry) int { return strings.Compare(a.key, b.key) })
	return out, nil
}

func (s fileSet) classify(name string) (entry, bool) {
	switch {
	case name == s.live:
		return entry{name: name, key: liveKey, live: true}, true
	case s.backup.MatchString(name):
		gz := strings.HasSuffix(name, ".gz")
		return entry{name: name, key: strings.TrimSuffix(name, ".gz"), gz: gz}, true
	}
	return entry{}, false
}

// readHead returns up to n leading bytes of e's content (decompressed for .gz).
func (s fileSet) readHead(e entry, n int) ([]byte, error) {
	f, err := os.Open(e.path(s.dir))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = f
	if e.gz {
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("gunzip %s: %w", e.path(s.dir), err)
		}
		defer zr.Close()
		r = zr
	}
	head := make([]byte, n)
	m, err := io.ReadFull(r, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read %s: %w", e.path(s.dir), err)
	}
	return head[:m], nil
}
