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
	odd    *ignored // where names that are not regular files are reported
	// scanned, when set (tests only), runs after every directory listing.
	scanned func()
}

func newFileSet(path string) fileSet {
	dir, live := filepath.Split(path)
	ext := filepath.Ext(live)
	prefix := strings.TrimSuffix(live, ext)
	// lumberjack's backup name: <prefix>-2006-01-02T15-04-05.000<ext>
	re := regexp.MustCompile(`^` + regexp.QuoteMeta(prefix) +
		`-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}\.\d{3}` + regexp.QuoteMeta(ext) + `(\.gz)?$`)
	return fileSet{dir: filepath.Clean(dir), live: live, backup: re, odd: &ignored{}}
}

// entry is one file of the set as seen by a directory scan.
type entry struct {
	name string // base name as on disk
	key  string // sort key: backup name without .gz; the live file sorts last
	gz   bool
	live bool
	id   fileID
	size int64 // on disk (compressed size for .gz)
	// alt is the compressed twin of a plain backup being compressed: the
	// same content, where it stays once the plain file is deleted.
	alt *entry
}

func (e entry) path(dir string) string { return filepath.Join(dir, e.name) }

// liveKey sorts after every backup name ('~' is above digits and letters).
const liveKey = "~live"

// scan lists the set's files in reading order: backups oldest first, the live
// file last. When a backup exists both plain and gzipped (compression in
// progress), the plain one is listed, with the .gz as its alt: the plain
// file still has its inode identity, but may be deleted at any moment.
//
// The listing is a consistent snapshot: the live file is stat'ed before the
// directory is read, so every file older than it is in the list (were it
// stat'ed after, a rotation in between would pair an old listing with the
// new live file, and the file just rotated would be skipped). And the
// directory is read until two readings agree: readdir is not atomic, and a
// name added while it runs can be missed while a later one is returned.
func (s fileSet) scan() ([]entry, error) {
	for attempt := 0; ; attempt++ {
		list, rotated, err := s.scanOnce()
		if err != nil || !rotated || attempt == 10 {
			if s.scanned != nil {
				s.scanned()
			}
			return list, err
		}
	}
}

// scanOnce lists the directory; rotated reports that files were renamed
// while listing, so the snapshot must be taken again.
func (s fileSet) scanOnce() (list []entry, rotated bool, err error) {
	// Lstat, never Stat: a symlink is reported, not followed.
	live, liveErr := os.Lstat(filepath.Join(s.dir, s.live))
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, false, fmt.Errorf("list %s: %w", s.dir, err)
	}
	again, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, false, fmt.Errorf("list %s: %w", s.dir, err)
	}
	if !sameNames(des, again) {
		return nil, true, nil
	}
	byKey := make(map[string]entry)
	if liveErr == nil && !live.Mode().IsRegular() {
		s.odd.report(filepath.Join(s.dir, s.live), live.Mode())
	}
	if liveErr == nil && live.Mode().IsRegular() {
		byKey[liveKey] = entry{name: s.live, key: liveKey, live: true, id: idOf(live), size: live.Size()}
	}
	for _, de := range des {
		e, ok := s.classify(de.Name())
		if !ok || e.live {
			continue
		}
		fi, err := os.Lstat(e.path(s.dir))
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted between ReadDir and Lstat
		}
		if err != nil {
			return nil, false, fmt.Errorf("stat %s: %w", e.path(s.dir), err)
		}
		if !fi.Mode().IsRegular() {
			s.odd.report(e.path(s.dir), fi.Mode())
			continue
		}
		e.id, e.size = idOf(fi), fi.Size()
		if l, ok := byKey[liveKey]; ok && !e.gz && e.id == l.id {
			return nil, true, nil
		}
		if prev, dup := byKey[e.key]; dup {
			plain, gz := prev, e
			if e.gz == prev.gz {
				continue
			}
			if plain.gz {
				plain, gz = e, prev
			}
			plain.alt = &gz
			e = plain
		}
		byKey[e.key] = e
	}
	list = make([]entry, 0, len(byKey))
	for _, e := range byKey {
		list = append(list, e)
	}
	slices.SortFunc(list, func(a, b entry) int { return strings.Compare(a.key, b.key) })
	return list, false, nil
}

func sameNames(a, b []os.DirEntry) bool {
	return slices.EqualFunc(a, b, func(x, y os.DirEntry) bool { return x.Name() == y.Name() })
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
// For a plain file it checks that the path still names the listed inode
// (errReplaced otherwise); a gzip stream it cannot decode is errCorrupt.
func (s fileSet) readHead(e entry, n int) ([]byte, error) {
	f, err := openRegular(e.path(s.dir))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if !e.gz && e.id != (fileID{}) {
		fi, err := f.Stat()
		if err != nil {
			return nil, fmt.Errorf("stat %s: %w", e.path(s.dir), err)
		}
		if idOf(fi) != e.id {
			return nil, errReplaced
		}
	}
	var r io.Reader = f
	if e.gz {
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, gzipError(e.path(s.dir), err)
		}
		defer zr.Close()
		r = zr
	}
	head := make([]byte, n)
	m, err := io.ReadFull(r, head)
	switch {
	case err == nil || errors.Is(err, io.EOF) || (errors.Is(err, io.ErrUnexpectedEOF) && !e.gz):
	case e.gz && m > 0 && errors.Is(err, io.ErrUnexpectedEOF):
		// A truncated .gz shorter than n: what decodes is still its head.
	case e.gz:
		return nil, gzipError(e.path(s.dir), err)
	default:
		return nil, fmt.Errorf("read %s: %w", e.path(s.dir), err)
	}
	return head[:m], nil
}
