// Package tetragon reads Tetragon's JSON export file set across rotations
// without losing a line, and commits its position only after delivery.
//
// See contracts/tetragon.md for how Tetragon writes and rotates the files and
// DESIGN.md "Reading a rotating file safely" for the rules followed here.
package tetragon

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"

	"github.com/siemship/siemship/internal/ack"
	"github.com/siemship/siemship/internal/checkpoints"
	"github.com/siemship/siemship/internal/event"
	"github.com/siemship/siemship/internal/retry"
)

// Source reads the file set. Run must be called once; Close after the
// pipeline has drained persists the final position.
type Source struct {
	name   string // in tags, metrics (label source) and the checkpoint key
	cfg    Config
	log    *slog.Logger
	m      *metrics
	store  *checkpoints.Store
	budget *semaphore.Weighted
	set    fileSet
	watch  *watcher
	pool   sync.Pool

	tracker ack.Tracker[tracked]
	moved   chan struct{} // capacity 1: the commit point moved since the last save

	// Reader-goroutine state.
	cur         *openFile
	buf         []byte // working buffer: lines not yet emitted, then a partial line
	bufStart    int64  // file offset of buf[0]
	lineEnd     int    // buf[:lineEnd] holds complete lines
	scanned     int    // buf[:scanned] has been searched for newlines
	long        *longLine
	tail        []byte // last tailSize bytes before the last emitted position
	pendingLoss *Loss  // a loss to report with the first data of the (empty) current file
	lastErr     string

	// A directory without export files is warned about after
	// missingWarnAfter, then every missingWarnEvery.
	missingWarnAfter, missingWarnEvery time.Duration
	missingSince, missingWarned        time.Time

	waits        atomic.Int64           // times the reader waited for a change, whatever for
	idle         atomic.Int64           // times the reader found nothing more to read in the live file and waited
	status       atomic.Pointer[string] // readiness detail; "" when reading
	unreadSince  atomic.Int64           // unix nanos since when data is on disk, unread, with nothing in flight
	lastSaved    atomic.Int64           // unix nanos of the last successful checkpoint write
	savedVersion uint64
	saveMu       sync.Mutex
	closeOnce    sync.Once
}

// New prepares the source called name; it reads nothing until Run. The name
// tags its batches, labels its metrics (source=<name>) and keys its
// checkpoint. log should already identify the source (the caller adds
// "source"); New adds only the path.
func New(name string, cfg Config, store *checkpoints.Store, budget *semaphore.Weighted, reg prometheus.Registerer, log *slog.Logger) *Source {
	s := &Source{
		name:   name,
		cfg:    cfg,
		log:    log.With("path", cfg.Path),
		m:      newMetrics(reg, name),
		store:  store,
		budget: budget,
		set:    newFileSet(cfg.Path),
		moved:  make(chan struct{}, 1),

		missingWarnAfter: time.Minute,
		missingWarnEvery: 10 * time.Minute,
	}
	s.set.odd.log, s.set.odd.counter = s.log, s.m.ignoredFiles
	s.watch = newWatcher(s.set, cfg.PollInterval, s.log, s.m)
	s.pool.New = func() any { b := make([]byte, 0, cfg.ReadBufferBytes); return &b }
	s.setStatus("starting")
	s.registerGauges(reg)
	return s
}

// Run reads until ctx is done, sending batches to out. It does not close out.
func (s *Source) Run(ctx context.Context, out chan<- *event.Batch) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Go(func() { s.watch.run(ctx) })
	wg.Go(func() { s.saveLoop(ctx) })
	defer func() {
		if s.cur != nil {
			s.cur.Close()
		}
	}()
	for ctx.Err() == nil {
		if err := s.step(ctx, out); err != nil && ctx.Err() == nil {
			return err
		}
	}
	return nil
}

// Ready reports whether the source is reading, and why not.
func (s *Source) Ready() (bool, string) {
	st := *s.status.Load()
	return st == "", st
}

func (s *Source) setStatus(st string) { s.status.Store(&st) }

// Close persists the committed position. Call it after every sink has
// returned, so that the final acknowledgements are included. Idempotent.
func (s *Source) Close() error {
	var err error
	s.closeOnce.Do(func() { err = s.save() })
	return err
}

// saveLoop writes the checkpoint soon after the commit point moves: at once
// when the last write is older than the save delay, else when it is that
// old, so acks arriving meanwhile share one write. Only this goroutine
// saves while Run runs (Close saves after it), so one write is in flight.
func (s *Source) saveLoop(ctx context.Context) {
	delay := min(s.cfg.CheckpointInterval, maxSaveDelay)
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.moved:
		}
		if wait := delay - time.Since(last); wait > 0 && !retry.Sleep(ctx, wait) {
			return
		}
		last = time.Now()
		if err := s.save(); err != nil {
			// The data is still on disk and the position in memory: retry
			// after a second rather than hammer a failing disk.
			s.log.Error("checkpoint not saved", "error", err, "retry_in", saveRetry.String())
			last = last.Add(saveRetry - delay)
			s.commitMoved()
		}
	}
}

// saveRetry is how long a failed checkpoint write waits to be retried.
const saveRetry = time.Second

// commitMoved tells saveLoop that there is something new to save.
func (s *Source) commitMoved() {
	select {
	case s.moved <- struct{}{}:
	default:
	}
}

func (s *Source) save() error {
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	c, ok, version := s.tracker.Committed()
	if !ok || version == s.savedVersion {
		return nil
	}
	st := state{Version: stateVersion, Path: s.cfg.Path, Position: c.pos}
	if c.fresh {
		st.Position, st.Fresh, st.After = Position{}, true, c.after
	}
	if err := s.store.Save(s.name, st); err != nil {
		s.m.checkpointFails.Inc()
		return fmt.Errorf("save checkpoint of source %s: %w", s.name, err)
	}
	s.savedVersion = version
	s.lastSaved.Store(time.Now().UnixNano())
	s.m.checkpointSaves.Inc()
	return nil
}

// Committed returns the newest delivered position (for tests and status).
func (s *Source) Committed() (Position, bool) {
	c, ok, _ := s.tracker.Committed()
	return c.pos, ok && !c.fresh
}

func (s *Source) registerGauges(reg prometheus.Registerer) {
	labels := prometheus.Labels{"source": s.name}
	g := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "siemship", Subsystem: "source", Name: name, Help: help, ConstLabels: labels,
		}, f)
	}
	reg.MustRegister(
		g("lag_bytes", "Bytes on disk not yet read (compressed size for .gz backups).", func() float64 {
			lag, _, _ := s.lag()
			return float64(lag)
		}),
		g("files_behind", "Files after the one being read.", func() float64 {
			_, behind, _ := s.lag()
			return float64(behind)
		}),
		g("rotations_before_loss", "Rotations Tetragon can still do before it deletes the oldest unread file.", func() float64 {
			_, _, left := s.lag()
			return float64(left)
		}),
		g("lag_seconds", "Age of the oldest data not yet acknowledged (since it was read, or found unread on disk); 0 when caught up.", func() float64 {
			return s.lagSeconds(time.Now())
		}),
		g("checkpoint_age_seconds", "Seconds since the checkpoint was last written.", func() float64 {
			t := s.lastSaved.Load()
			if t == 0 {
				return 0
			}
			return time.Since(time.Unix(0, t)).Seconds()
		}),
		g("buffer_pending_batches", "Batches read but not yet delivered by every sink.", func() float64 {
			return float64(s.tracker.Pending())
		}),
	)
}

// lag derives the backlog from the watcher's last scan and the committed position.
func (s *Source) lag() (bytes int64, behind int, rotationsLeft int) {
	list, curKey := s.watch.lastScan()
	c, _, _ := s.tracker.Committed()
	pos := c.pos
	backups, idx := 0, -1
	for _, e := range list {
		if !e.live {
			backups++
		}
		switch {
		case e.key == curKey || (!e.gz && e.id == pos.File.fileID):
			idx = backups - 1
			if e.live {
				idx = backups
			}
			bytes += max(0, e.size-pos.Offset)
		case e.key > curKey:
			bytes += e.size
			behind++
		}
	}
	if idx < 0 {
		idx = 0
	}
	rotationsLeft = s.cfg.MaxBackups - backups + idx + 1
	return bytes, behind, max(rotationsLeft, 0)
}

// lagSeconds is the age of the oldest data not yet acknowledged: of the
// oldest batch in flight since it was read, or, with nothing in flight, of
// the unread bytes since they were first seen on disk.
func (s *Source) lagSeconds(now time.Time) float64 {
	if c, ok := s.tracker.Oldest(); ok {
		s.unreadSince.Store(0)
		return max(0, now.Sub(time.Unix(0, c.read)).Seconds())
	}
	if lag, _, _ := s.lag(); lag == 0 {
		s.unreadSince.Store(0)
		return 0
	}
	since := s.unreadSince.Load()
	if since == 0 {
		s.unreadSince.CompareAndSwap(0, now.UnixNano())
		since = s.unreadSince.Load()
	}
	return max(0, now.Sub(time.Unix(0, since)).Seconds())
}

// Stats is a snapshot for the periodic status line.
type Stats struct {
	EventsRead, EventsAcked, LostBytes, DataLosses int64
	LagBytes                                       int64
	FilesBehind, RotationsBeforeLoss               int
	// RetainedBytes is what Tetragon keeps on disk now: the live file and
	// its rotated backups, as last scanned.
	RetainedBytes int64
}

// Stats returns the source's counters and backlog.
func (s *Source) Stats() Stats {
	lag, behind, left := s.lag()
	list, _ := s.watch.lastScan()
	var retained int64
	for _, e := range list {
		retained += e.size
	}
	return Stats{
		RetainedBytes:       retained,
		EventsRead:          int64(counterValue(s.m.linesRead)),
		EventsAcked:         int64(counterValue(s.m.eventsAcked)),
		LostBytes:           int64(counterValue(s.m.lostBytes)),
		DataLosses:          int64(counterValue(s.m.lossIncidents)),
		LagBytes:            lag,
		FilesBehind:         behind,
		RotationsBeforeLoss: left,
	}
}

// maxSaveDelay bounds how long a moved commit point waits to be written,
// whatever CheckpointInterval says: a SIGKILL then re-ships what was in
// flight plus at most this much.
const maxSaveDelay = 100 * time.Millisecond
