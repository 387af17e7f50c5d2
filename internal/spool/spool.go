// Package spool is the per-sink disk spool: a sink wrapper that makes
// batches durable on local disk, acknowledges them upstream once they are
// (so source checkpoints advance and read buffers are released), and feeds
// the real sink from the disk in order, trimming what it delivered. An
// outage of the SIEM then costs disk, not data.
//
// The log is Prometheus' tsdb/wlog, the write-ahead log under every
// Prometheus server, chosen over go.etcd.io/bbolt and a hand-written log
// because its format is what a spool needs and it is tested at scale:
//   - every record fragment carries a CRC32 (Castagnoli), so damage is
//     found, and records are laid out in 32KiB pages, so a reader can
//     resume at the next intact page and lose only the damaged span (bbolt
//     has no per-record checksum and a damaged page can fail the whole
//     file, the crash loop this package must never cause);
//   - appends only: a crash (SIGKILL, power loss) can only leave the last
//     record of the last segment cut short; it was never acknowledged
//     upstream, and it is cut on open;
//   - numbered segment files, never rewritten: delivered data is trimmed,
//     and drop_oldest drops, by deleting whole files (bbolt reuses freed
//     pages but never shrinks its file);
//   - wlog.LiveReader tails a segment while it is written, so the replay
//     reads incrementally with one record in memory.
//
// wlog's own Repair is not used: it discards everything after damage,
// while a spool skips the damaged span, reports it and goes on. Version
// v0.309.1 is the newest that builds with this module's dependencies
// unchanged (later ones raise go.mod's requirements and link test-only
// packages through tsdbutil).
//
// Layout: <dir>/00000000, 00000001, … (segments, 0600) and <dir>/read.json
// (the delivered prefix, so a restart replays from the first record not
// delivered), in a 0700 directory.
package spool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/tsdb/wlog"
	"github.com/prometheus/prometheus/util/compression"

	"github.com/siemship/siemship/internal/ack"
	"github.com/siemship/siemship/internal/event"
	"github.com/siemship/siemship/internal/pipeline"
)

var _ pipeline.Sink = (*Sink)(nil)

// Tunables that need no key.
const (
	// maxInflight bounds the record bytes read back and handed to the sink
	// but not yet delivered: memory stays bounded whatever the backlog.
	maxInflight = 12 << 20
	// readyThreshold: Ready reports false above this fill ratio.
	readyThreshold = 0.8
	// retryWait paces retries after a failed write or open.
	retryWait = time.Second
	// commitEvery bounds how often the read position is saved.
	commitEvery = 200 * time.Millisecond
)

// pos is a record's place: its segment and the file offset after it.
type pos struct {
	Seg int   `json:"segment"`
	End int64 `json:"offset"`
	// SegDone: everything in Seg was delivered (Seg may be deleted).
	SegDone bool `json:"segment_done,omitempty"`
	// at is when the record was spooled (Unix ms), for the age gauge.
	at int64
}

// segInfo is what the spool knows of one segment file.
type segInfo struct {
	size             int64
	records, events  int64 // written (or found at open) and not delivered before it
	handed, handedEv int64 // of them, handed to the sink
	first, last      int64 // spooled-at of its first and last records (Unix ms)
}

// Sink is a pipeline.Sink that spools for the sink it wraps. Run may be
// called once; Ready, Verify, Status and Stats are safe to call
// concurrently with it.
type Sink struct {
	cfg        Config
	name       string
	inner      pipeline.Sink
	log        *slog.Logger
	m          *metrics
	segSize    int // set by open, from the cap and the disk's size
	chunkBytes int
	syncEvery  time.Duration // 0: fsync every batch

	tracker  ack.Tracker[pos]
	wake     chan struct{} // written → replay
	acked    chan struct{} // delivered → replay (in-flight room) and trim
	trimWake chan struct{}
	room     chan struct{} // trimmed → writer

	// Only the intake goroutine writes: w, failed.
	w      *wlog.WL
	failed *failedWrite // a failed write not settled yet: roll before writing on

	mu          sync.Mutex
	segs        map[int]*segInfo
	writeSeg    int // segment wlog appends to
	firstLive   int // first segment of this process; earlier ones are from before a restart
	dropBelow   int // segments below were dropped: the replay skips them
	start       pos // read position at open
	bytes       int64
	records     int64 // not yet delivered (unread + in flight)
	events      int64
	unread      int64 // records not yet handed to the sink
	inflight    int64 // bytes handed to the sink, not delivered
	opened      bool
	diskFull    string    // the last write's ENOSPC while it waits for room; "" once one succeeds
	pendingLoss *Loss     // drops not yet reported to the sink
	directs     []*direct // overflow batches the sink holds, oldest first
	// savedVersion is the tracker version last saved to read.json.
	savedVersion uint64
}

// New wraps inner, the sink named name, in a spool configured by cfg (valid
// per Config.Validate, enabled). Nothing is opened before Run, so `siemship
// check` can build the sink while an agent runs. The metrics are
// registered on reg with the label sink=name.
func New(cfg Config, name string, inner pipeline.Sink, reg prometheus.Registerer, log *slog.Logger) (*Sink, error) {
	every, err := cfg.fsyncEvery()
	if err != nil {
		return nil, err
	}
	if cfg.Dir == "" || cfg.MaxBytes < minMaxBytes {
		return nil, fmt.Errorf("spool of sink %s: dir must be set and max_bytes at least 1MiB", name)
	}
	s := &Sink{
		cfg: cfg, name: name, inner: inner, log: log.With("spool", cfg.Dir), syncEvery: every,
		wake: make(chan struct{}, 1), acked: make(chan struct{}, 1), trimWake: make(chan struct{}, 1), room: make(chan struct{}, 1),
		segs: map[int]*segInfo{},
	}
	if s.m, err = newMetrics(reg, s); err != nil {
		return nil, fmt.Errorf("spool of sink %s: register metrics: %w", name, err)
	}
	return s, nil
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Stats is a snapshot of the spool.
type Stats struct {
	Bytes, Records, Events int64
	OldestAge              time.Duration
	// Full is Bytes over MaxBytes, 0 to 1 (more when a loss report went over).
	Full float64
}

// Stats returns the backlog.
func (s *Sink) Stats() Stats {
	s.mu.Lock()
	st := Stats{Bytes: s.bytes, Records: s.records, Events: s.events}
	var oldest int64
	if p, ok := s.tracker.Oldest(); ok {
		oldest = p.at
	} else if s.records > 0 {
		for _, k := range slices.Sorted(maps.Keys(s.segs)) {
			if info := s.segs[k]; info.records > info.handed {
				oldest = info.first
				break
			}
		}
	}
	s.mu.Unlock()
	if oldest > 0 {
		st.OldestAge = max(0, time.Since(time.UnixMilli(oldest)))
	}
	st.Full = float64(st.Bytes) / float64(s.cfg.MaxBytes)
	return st
}

// Room is what the spool can still take: max_bytes less what it holds,
// or the free space of the disk under it when that is smaller.
func (s *Sink) Room() int64 {
	room := max(0, int64(s.cfg.MaxBytes)-s.Stats().Bytes)
	if _, free, err := diskSpace(s.cfg.Dir); err == nil {
		room = min(room, free)
	}
	return room
}

// Status returns the wrapped sink's status fields and the spool's backlog.
func (s *Sink) Status() []any {
	st := s.Stats()
	return append(s.inner.Status(), "spool_bytes", st.Bytes, "spool_events", st.Events,
		"spool_records", st.Records, "spool_oldest_age", st.OldestAge.Truncate(time.Second).String())
}

// Ready is the wrapped sink's readiness, and false while the spool is over
// 80 % of max_bytes (then it soon blocks or drops).
func (s *Sink) Ready() (bool, string) {
	s.mu.Lock()
	diskFull := s.diskFull
	s.mu.Unlock()
	if diskFull != "" {
		return false, fmt.Sprintf("the disk under the spool (%s) is full before max_bytes (%s): %s",
			s.cfg.Dir, diskFull, map[string]string{FullBlock: "not acknowledging upstream until deliveries free space (back-pressure)", FullDropOldest: "waiting for room, no older segment is left to drop"}[s.cfg.WhenFull])
	}
	if st := s.Stats(); st.Full > readyThreshold {
		return false, fmt.Sprintf("spool %.0f%% full (%d of %d bytes, %d events waiting): the sink is not keeping up; at max_bytes it will %s",
			100*st.Full, st.Bytes, s.cfg.MaxBytes, st.Events, map[string]string{FullBlock: "stop reading (back-pressure)", FullDropOldest: "drop the oldest events"}[s.cfg.WhenFull])
	}
	return s.inner.Ready()
}

// Verify checks the wrapped sink and that the spool directory can be
// created and written.
func (s *Sink) Verify(ctx context.Context) error {
	if err := os.MkdirAll(s.cfg.Dir, 0o700); err != nil {
		return fmt.Errorf("spool directory %s cannot be created: %w", s.cfg.Dir, err)
	}
	f, err := os.CreateTemp(s.cfg.Dir, ".check-*")
	if err != nil {
		return fmt.Errorf("spool directory %s is not writable: %w", s.cfg.Dir, err)
	}
	f.Close()
	os.Remove(f.Name())
	return s.inner.Verify(ctx)
}

// Run runs the wrapped sink behind the spool. Batches from in are written
// to disk and acknowledged upstream once durable (per fsync); in overflow
// mode a batch goes straight to the sink instead when nothing is spooled
// and the sink's input has room. When in closes, Run makes what it took
// durable and acknowledges it, stops the replay, lets the sink finish what
// it holds and returns; what is still spooled is replayed after a restart.
func (s *Sink) Run(ctx context.Context, in <-chan *event.Batch) error {
	if err := s.open(); err != nil {
		return fmt.Errorf("spool %s: %w", s.cfg.Dir, err)
	}
	innerIn := make(chan *event.Batch, 4)
	innerDone := make(chan struct{})
	var innerErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(innerDone)
		innerErr = s.inner.Run(ctx, innerIn)
	})
	stopReplay, replayDone := make(chan struct{}), make(chan struct{})
	wg.Go(func() {
		defer close(replayDone)
		s.replay(ctx, stopReplay, innerIn)
	})
	trimCtx, stopTrim := context.WithCancel(context.Background())
	wg.Go(func() { s.trimLoop(trimCtx) })

	err := s.intake(ctx, in, innerIn, innerDone)
	close(stopReplay)
	// The replay returns promptly once stopped; then nothing else sends.
	<-replayDone
	close(innerIn)
	<-innerDone
	stopTrim()
	wg.Wait()
	return errors.Join(err, innerErr, s.close())
}

// open creates or recovers the spool: permissions, the read position, the
// segments left by an earlier run (counted, a torn tail cut), then wlog
// starts a new segment.
func (s *Sink) open() error {
	dir := s.cfg.Dir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	room := int64(s.cfg.MaxBytes)
	if total, _, err := diskSpace(dir); err == nil {
		room = min(room, total)
	} else {
		s.log.Warn("spool: the size of the disk is unknown, segments are sized from max_bytes alone", "error", err.Error())
	}
	s.segSize = segmentSize(room)
	s.chunkBytes = min(1<<20, s.segSize/4)
	first, last, err := wlog.Segments(dir)
	if err != nil {
		return fmt.Errorf("list segments: %w", err)
	}
	start, err := s.loadCommit()
	if err != nil {
		s.log.Warn("spool read position unreadable, replaying every segment (duplicates possible)", "error", err.Error())
		start = pos{}
	}
	if start.SegDone {
		start = pos{Seg: start.Seg + 1}
	}
	if first >= 0 && start.Seg < first {
		start = pos{Seg: first}
	}
	for seg := max(first, 0); first >= 0 && seg <= last; seg++ {
		from := int64(0)
		if seg == start.Seg {
			from = start.End
		}
		if err := s.scan(seg, from, seg == last); err != nil {
			return err
		}
	}
	w, err := wlog.NewSize(slog.New(slog.DiscardHandler), nil, dir, s.segSize, compression.None)
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	s.w = w
	s.mu.Lock()
	defer s.mu.Unlock()
	s.firstLive = last + 1
	s.writeSeg = last + 1
	s.segs[s.writeSeg] = &segInfo{}
	s.start = start
	s.opened = true
	if start.Seg > s.writeSeg {
		s.start = pos{Seg: s.writeSeg}
	}
	s.tracker.Start(s.start)
	if err := os.Chmod(wlog.SegmentName(dir, s.writeSeg), 0o600); err != nil {
		return fmt.Errorf("chmod segment: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	if s.records > 0 {
		s.log.Info("spool holds events from before the restart, replaying them", "events", s.events, "records", s.records, "bytes", s.bytes)
	}
	return nil
}

// scan counts the records of a segment left by an earlier run after from
// (the delivered prefix), fixes its mode, and in the newest one cuts a
// torn tail: a record cut short by a crash, never acknowledged upstream.
// Damage elsewhere is left for the replay to skip and report.
func (s *Sink) scan(seg int, from int64, newest bool) error {
	path := wlog.SegmentName(s.cfg.Dir, seg)
	if err := os.Chmod(path, 0o600); err != nil {
		return fmt.Errorf("chmod segment: %w", err)
	}
	r, err := openSegment(s.cfg.Dir, seg)
	if err != nil {
		return fmt.Errorf("open segment: %w", err)
	}
	defer r.close()
	info := &segInfo{}
	var lastGood int64
	var tornAt *gap
	for {
		rec, end, err := r.next()
		var g *gap
		if errors.Is(err, io.EOF) {
			if g, err = r.skipLeftover(); err != nil {
				return err
			}
			if g == nil || g.tail {
				tornAt = g
				break
			}
			continue // damage with records after it: the replay reports it
		}
		if errors.As(err, &g) {
			if g.tail {
				tornAt = g
			}
			continue
		}
		if err != nil {
			return err
		}
		lastGood = end
		if end <= from {
			continue
		}
		h, err := decodeHeader(rec)
		if err != nil {
			continue // the replay reports it
		}
		if info.records == 0 {
			info.first = h.spooledAt
		}
		info.records++
		info.events += int64(h.events)
		info.last = h.spooledAt
	}
	if newest && tornAt != nil {
		cut := lastGood
		if err := os.Truncate(path, cut); err != nil {
			return fmt.Errorf("cut torn tail of %s: %w", path, err)
		}
		s.m.tornTails.Inc()
		s.log.Warn("spool: cut a record torn by a crash at the end of the newest segment; it was never acknowledged upstream, the source sends it again",
			"segment", seg, "at", cut)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("stat segment: %w", err)
	}
	info.size = fi.Size()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.segs[seg] = info
	s.bytes += info.size
	s.records += info.records
	s.events += info.events
	s.unread += info.records
	return nil
}

// close saves the read position and closes the log.
func (s *Sink) close() error {
	s.trim()
	var errs []error
	if err := s.saveCommit(); err != nil {
		errs = append(errs, err)
	}
	if s.w != nil {
		if err := s.w.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close spool log: %w", err))
		}
	}
	return errors.Join(errs...)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync directory: %w", err)
	}
	return nil
}

// diskSpace returns the size of the filesystem holding dir and the bytes
// free on it for an unprivileged writer.
func diskSpace(dir string) (total, free int64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return int64(st.Blocks) * int64(st.Bsize), int64(st.Bavail) * int64(st.Bsize), nil
}

func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

func segPath(dir string, seg int) string { return filepath.Join(dir, fmt.Sprintf("%08d", seg)) }
