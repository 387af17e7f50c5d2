package tetragon

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/klauspost/compress/gzip"
)

// openFile is the file the reader is reading, plain or gzipped.
type openFile struct {
	ref     fileRef
	path    string
	gz      bool
	rotated bool // known to be a finished backup: EOF is the end
	broken  bool // a compressed stream that cannot be decoded further: its rest was reported lost
	f       *os.File
	r       io.Reader // f, or a gzip reader over f
	zr      *gzip.Reader
	off     int64  // bytes consumed from r
	pending []byte // bytes already consumed from r but not yet handed to the reader (gz head replay)
}

// open opens e and positions it at off. It verifies, when want is set, that
// the file's fingerprint and the bytes just before off match want; a
// mismatch returns errStranger and the file is closed.
func (s fileSet) open(e entry, off int64, want *Position) (*openFile, error) {
	path := e.path(s.dir)
	f, err := openRegular(path)
	if err != nil {
		return nil, err
	}
	of := &openFile{path: path, gz: e.gz, rotated: !e.live, f: f, r: f}
	of.ref.Name = e.name
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	if !e.gz {
		of.ref.fileID = idOf(fi)
		// The path may name another file than the scan saw: tetragon.log
		// is renamed and recreated at any moment. Reading the new one
		// would skip the file that was just rotated.
		if e.id != (fileID{}) && of.ref.fileID != e.id {
			f.Close()
			return nil, errReplaced
		}
	}
	if err := of.seek(off, want); err != nil {
		of.Close()
		return nil, err
	}
	return of, nil
}

var (
	errStranger   = errors.New("file content differs from the checkpoint")
	errTruncated  = errors.New("file is shorter than the checkpoint offset")
	errReplaced   = errors.New("file was replaced between listing and opening")
	errNotRegular = errors.New("not a regular file (symlink, FIFO, device): never read")
	errCorrupt    = errors.New("compressed backup is truncated or corrupt")
)

func (of *openFile) seek(off int64, want *Position) error {
	if of.gz {
		return of.seekGzip(off, want)
	}
	head := make([]byte, fingerprintSize)
	n, err := of.f.ReadAt(head, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read %s: %w", of.path, err)
	}
	of.ref.fingerprint = fingerprintOf(head[:n])
	if want != nil {
		if !want.File.fingerprint.Matches(head[:n]) {
			return errStranger
		}
		fi, err := of.f.Stat()
		if err != nil {
			return fmt.Errorf("stat %s: %w", of.path, err)
		}
		if fi.Size() < off {
			return errTruncated
		}
		tail := make([]byte, want.TailLen)
		if _, err := of.f.ReadAt(tail, off-int64(want.TailLen)); err != nil {
			return fmt.Errorf("read %s: %w", of.path, err)
		}
		if checksum(tail) != want.TailSum {
			return errStranger
		}
	}
	if _, err := of.f.Seek(off, io.SeekStart); err != nil {
		return fmt.Errorf("seek %s: %w", of.path, err)
	}
	of.off = off
	return nil
}

// seekGzip decompresses up to off (gzip cannot seek), keeping the head for
// the fingerprint and the bytes before off for the tail check.
func (of *openFile) seekGzip(off int64, want *Position) error {
	zr, err := gzip.NewReader(of.f)
	if err != nil {
		return gzipError(of.path, err)
	}
	of.zr, of.r = zr, zr
	head := make([]byte, fingerprintSize)
	n, err := io.ReadFull(zr, head)
	// A stream cut inside the head also ends in ErrUnexpectedEOF: what
	// decoded is the head, and the next Read reports the cut.
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return gzipError(of.path, err)
	}
	head = head[:n]
	of.ref.fingerprint = fingerprintOf(head)
	if want != nil && !want.File.fingerprint.Matches(head) {
		return errStranger
	}
	var tail []byte
	if off <= int64(n) {
		of.pending = head[off:]
		tail = head[max(0, off-tailSize):off]
	} else {
		tail, err = discard(zr, off-int64(n), head)
		if errors.Is(err, errStranger) {
			return err
		}
		if err != nil {
			return fmt.Errorf("up to offset %d: %w", off, gzipError(of.path, err))
		}
	}
	if want != nil {
		if len(tail) < want.TailLen || checksum(tail[len(tail)-want.TailLen:]) != want.TailSum {
			return errStranger
		}
	}
	of.off = off
	return nil
}

// discard skips n bytes of r and returns the last tailSize bytes before the
// new position (prev supplies them when n is small).
func discard(r io.Reader, n int64, prev []byte) ([]byte, error) {
	buf := make([]byte, 64<<10)
	last := append([]byte(nil), prev[max(0, len(prev)-tailSize):]...)
	for n > 0 {
		m, err := r.Read(buf[:min(int64(len(buf)), n)])
		n -= int64(m)
		last = append(last, buf[:m]...)
		if len(last) > tailSize {
			last = append(last[:0], last[len(last)-tailSize:]...)
		}
		if n > 0 && err != nil {
			if errors.Is(err, io.EOF) {
				return nil, errStranger // shorter than the offset
			}
			return nil, err
		}
	}
	return last, nil
}

// gzipError classifies an error from decompressing path: an I/O error stays
// what it is (retried), anything else means the stream cannot be decoded
// past this point (errCorrupt: no retry will read more of it).
func gzipError(path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF // an empty or cut stream
	}
	return fmt.Errorf("gunzip %s: %w: %w", path, errCorrupt, err)
}

// Read reads the next bytes of content.
func (of *openFile) Read(p []byte) (int, error) {
	if len(of.pending) > 0 {
		n := copy(p, of.pending)
		of.pending = of.pending[n:]
		of.off += int64(n)
		return n, nil
	}
	n, err := of.r.Read(p)
	of.off += int64(n)
	if err != nil && of.zr != nil && !errors.Is(err, io.EOF) {
		err = gzipError(of.path, err)
	}
	return n, err
}

// refreshFingerprint extends a short fingerprint once the file has grown.
func (of *openFile) refreshFingerprint() {
	if of.gz || of.ref.fingerprint.complete() {
		return
	}
	head := make([]byte, fingerprintSize)
	n, err := of.f.ReadAt(head, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return // keep the shorter fingerprint; it still identifies the file
	}
	if n > of.ref.fingerprint.Len {
		of.ref.fingerprint = fingerprintOf(head[:n])
	}
}

// size returns the current size of the underlying plain file (for gz: the
// bytes decompressed so far, since the total is unknown until EOF).
func (of *openFile) size() (int64, error) {
	if of.gz {
		return of.off, nil
	}
	fi, err := of.f.Stat()
	if err != nil {
		return 0, fmt.Errorf("stat %s: %w", of.path, err)
	}
	return fi.Size(), nil
}

func (of *openFile) Close() error {
	if of.zr != nil {
		of.zr.Close()
	}
	return of.f.Close()
}

// tailBefore returns the up to tailSize bytes before off, for a position's
// tail checksum.
func (of *openFile) tailBefore(off int64) ([]byte, error) {
	n := min(off, tailSize)
	if n == 0 {
		return nil, nil
	}
	if of.gz {
		return nil, fmt.Errorf("tail of %s: a compressed file is only started at offset 0", of.path)
	}
	b := make([]byte, n)
	if _, err := of.f.ReadAt(b, off-n); err != nil {
		return nil, fmt.Errorf("read %s: %w", of.path, err)
	}
	return b, nil
}

// lastLineEnd returns the offset just after the last newline before size, so
// that starting at the end of a file never begins in the middle of a line.
func lastLineEnd(path string, size int64, maxLine int) (int64, error) {
	f, err := openRegular(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n := min(size, int64(maxLine)+1)
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, size-n); err != nil && !errors.Is(err, io.EOF) {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	i := bytes.LastIndexByte(buf, '\n')
	switch {
	case i < 0 && n == size:
		return 0, nil // one line, still being written: start at its beginning
	case i < 0:
		return size, nil
	}
	return size - n + int64(i) + 1, nil
}
