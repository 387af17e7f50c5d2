package spool

import (
	"errors"
	"fmt"
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
		return r.lr.Record(), r.end, nil
	}
	err := r.lr.Err()
	if err == nil || errors.Is(err, io.EOF) {
		return nil, 0, io.EOF
	}
	return nil, 0, r.resync(err)
}

// resync looks for the next page at which an intact record starts.
func (r *segReader) resync(cause error) error {
	fi, err := r.f.Stat()
	if err != nil {
		return fmt.Errorf("stat %s: %w", r.path, err)
	}
	from := r.end
	at := r.base + r.lr.Offset() // where the bad record starts
	for p := (at/pageSize + 1) * pageSize; p < fi.Size(); p += pageSize {
		if _, err := r.f.Seek(p, io.SeekStart); err != nil {
			return fmt.Errorf("seek %s: %w", r.path, err)
		}
		lr := wlog.NewLiveReader(slog.New(slog.DiscardHandler), liveMetrics, r.f)
		if lr.Next() {
			// Found one: start over at p and let next return it again.
			if _, err := r.f.Seek(p, io.SeekStart); err != nil {
				return fmt.Errorf("seek %s: %w", r.path, err)
			}
			r.base, r.end = p, p
			r.lr = wlog.NewLiveReader(slog.New(slog.DiscardHandler), liveMetrics, r.f)
			return &gap{from: from, to: p, cause: cause}
		}
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
