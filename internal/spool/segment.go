package spool

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"

	"github.com/prometheus/prometheus/tsdb/wlog"
)

// pageSize is wlog's page: records never span segments, and a reader can
// resynchronise at a page boundary after damage.
const pageSize = 32 << 10

// liveMetrics satisfies wlog.LiveReader, which counts records spanning
// pages; unregistered, so the agent's /metrics holds no tsdb metrics.
var liveMetrics = wlog.NewLiveReaderMetrics(nil)

// segReader reads the records of one segment file in order, while it may
// still be written (wlog.LiveReader returns io.EOF at the end of what is
// there and can be called again). After damage it resumes at the next
// page that starts with an intact record, and reports the skipped span.
// Not safe for concurrent use.
type segReader struct {
	f    *os.File
	path string
	seg  int
	base int64 // file offset where lr started (a page boundary)
	lr   *wlog.LiveReader
	end  int64 // file offset just after the last record returned (or skipped to)
	// filler: lr starts with a record made up by resync, to be dropped.
	filler bool
}

// gap is a damaged span of a segment that was skipped.
type gap struct {
	from, to int64 // file offsets
	// tail: no intact record follows in the segment (as after a torn write).
	tail  bool
	cause error
}

func (g *gap) Error() string {
	return fmt.Sprintf("damaged bytes %d–%d: %v", g.from, g.to, g.cause)
}

func openSegment(dir string, seg int) (*segReader, error) {
	path := wlog.SegmentName(dir, seg)
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	return &segReader{f: f, path: path, seg: seg, lr: wlog.NewLiveReader(slog.New(slog.DiscardHandler), liveMetrics, f)}, nil
}

func (r *segReader) close() { r.f.Close() }

// next returns the next record and the file offset just after it. It
// returns io.EOF when no complete record follows yet (call again after
// more is written), or a *gap after skipping damage (the reader has moved
// past it; call again). The record is valid until the next call.
func (r *segReader) next() ([]byte, int64, error) {
	if r.lr.Next() {
		r.end = r.base + r.lr.Offset()
		if r.filler { // see resync
			r.filler = false
			return r.next()
		}
		return r.lr.Record(), r.end, nil
	}
	err := r.lr.Err()
	if err == nil || errors.Is(err, io.EOF) {
		return nil, 0, io.EOF
	}
	return nil, 0, r.resync(err, max(r.end, r.base+r.lr.Offset()))
}

// errCutShort: data after the last record that does not form one.
var errCutShort = errors.New("bytes after the last record do not form a record")

// skipLeftover is for a segment that is no longer written: when bytes
// after the last record do not form one, it looks for intact records
// further on. It returns nil when there are none such bytes, or a *gap
// (tail when nothing intact follows: a write cut short).
func (r *segReader) skipLeftover() (*gap, error) {
	left, err := r.leftover()
	if err != nil || left == 0 {
		return nil, err
	}
	var g *gap
	if err := r.resync(errCutShort, r.end); !errors.As(err, &g) {
		return nil, err
	}
	return g, nil
}

// resync looks for the first intact record that starts after at: in a
// following page, the first fragment (crc-checked) that begins a record.
// Fragments before it in that page continue a record that began in the
// damage and are skipped too. wlog's reader counts pages from where it
// starts, so when the record is not at the page start, the reader gets a
// filler record in front of it, of the length skipped, and drops it.
func (r *segReader) resync(cause error, at int64) error {
	fi, err := r.f.Stat()
	if err != nil {
		return fmt.Errorf("stat %s: %w", r.path, err)
	}
	from := r.end
	page := make([]byte, pageSize)
	for p := (at/pageSize + 1) * pageSize; p < fi.Size(); p += pageSize {
		n, err := r.f.ReadAt(page, p)
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read %s: %w", r.path, err)
		}
		o, ok := firstRecordStart(page[:n])
		if !ok {
			continue
		}
		if _, err := r.f.Seek(p+int64(o), io.SeekStart); err != nil {
			return fmt.Errorf("seek %s: %w", r.path, err)
		}
		var src io.Reader = r.f
		r.filler = o > 0
		if r.filler {
			src = io.MultiReader(bytes.NewReader(fillerRecord(o)), r.f)
		}
		r.base, r.end = p, p+int64(o)
		r.lr = wlog.NewLiveReader(slog.New(slog.DiscardHandler), liveMetrics, src)
		return &gap{from: from, to: p + int64(o), cause: cause}
	}
	// Nothing intact after the damage: park at the end.
	if _, err := r.f.Seek(0, io.SeekEnd); err != nil {
		return fmt.Errorf("seek %s: %w", r.path, err)
	}
	end := (fi.Size() + pageSize - 1) / pageSize * pageSize
	r.base, r.end = end, end
	r.lr = wlog.NewLiveReader(slog.New(slog.DiscardHandler), liveMetrics, r.f)
	return &gap{from: from, to: fi.Size(), tail: true, cause: cause}
}

// wlog's record fragment header: type byte, length (2), CRC32-C (4).
const (
	fragHeader = 7
	fragFull   = 1
	fragFirst  = 2
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// firstRecordStart returns the offset in page of the first intact fragment
// that starts a record.
func firstRecordStart(page []byte) (int, bool) {
	for o := 0; o+fragHeader <= len(page); {
		typ := page[o] & 7
		if typ == 0 {
			return 0, false // padding: nothing more in this page
		}
		l := int(binary.BigEndian.Uint16(page[o+1:]))
		if o+fragHeader+l > len(page) || crc32.Checksum(page[o+fragHeader:o+fragHeader+l], castagnoli) != binary.BigEndian.Uint32(page[o+3:]) {
			return 0, false
		}
		if typ == fragFull || typ == fragFirst {
			return o, true
		}
		o += fragHeader + l
	}
	return 0, false
}

// fillerRecord is a whole record of n bytes, header included (n ≥ 7, as
// any offset past a fragment is).
func fillerRecord(n int) []byte {
	b := make([]byte, n)
	b[0] = fragFull
	binary.BigEndian.PutUint16(b[1:], uint16(n-fragHeader))
	binary.BigEndian.PutUint32(b[3:], crc32.Checksum(b[fragHeader:], castagnoli))
	return b
}

// leftover says whether the file holds non-zero bytes after the last
// record: a record cut short (a torn write) that was never acknowledged.
func (r *segReader) leftover() (int64, error) {
	fi, err := r.f.Stat()
	if err != nil {
		return 0, fmt.Errorf("stat %s: %w", r.path, err)
	}
	if fi.Size() <= r.end {
		return 0, nil
	}
	buf := make([]byte, min(fi.Size()-r.end, 1<<20))
	n, err := r.f.ReadAt(buf, r.end)
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, fmt.Errorf("read %s: %w", r.path, err)
	}
	for _, c := range buf[:n] {
		if c != 0 {
			return fi.Size() - r.end, nil
		}
	}
	return 0, nil
}
