// Package tetragon reads Tetragon's JSON export file set across rotations
// without losing a line, and commits its position only after delivery.
//
// See contracts/tetragon.md for how Tetragon writes and rotates the files and
// DESIGN.md "Reading a rotating file safely" for the rules followed here.
package tetragon

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"

	"github.com/siemship/siemship/internal/ack"
	"github.com/siemship/siemship/internal/checkpoints"
	"github.com/siemship/siemship/internal/event"
)

// Config of the Tetragon source.
type Config struct {
	// Path of the live export file; backups are found next to it.
	Path string
	// MaxLineBytes caps a line; longer ones are shipped truncated and flagged.
	MaxLineBytes int
	// ReadBufferBytes is the size of one read buffer (and so of the largest batch the source emits).
	ReadBufferBytes int
	// PollInterval bounds how long a change goes unnoticed without file notifications.
	PollInterval time.Duration
	// MaxBackups is Tetragon's --export-file-max-backups, for the "rotations before loss" gauge.
	MaxBackups int
	// StartAt applies when there is no checkpoint: "oldest" reads every file on
	// disk, "end" starts after the last complete line of the live file.
	StartAt string
	// CheckpointInterval is how often the committed position is persisted.
	CheckpointInterval time.Duration
}

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

	tracker ack.Tracker[Position]

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

	status        atomic.Pointer[string] // readiness detail; "" when reading
	lastAckedTime atomic.Int64
	lastSaved     atomic.Int64 // unix nanos of the last successful checkpoint write
	savedVersion  uint64
	saveMu        sync.Mutex
	closeOnce     sync.Once
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
	}
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

func (s *Source) saveLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.CheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.save(); err != nil {
				// Keep going: the next tick retries, and the data is still on disk.
				s.log.Error("checkpoint not saved", "error", err)
			}
		}
	}
}

func (s *Source) save() error {
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	pos, ok, version := s.tracker.Committed()
	if !ok || version == s.savedVersion {
		return nil
	}
	err := s.store.Save(s.name, state{Version: stateVersion, Path: s.cfg.Path, Position: pos})
	if err != nil {
		s.m.checkpointFails.Inc()
		return err
	}
	s.savedVersion = version
	s.lastSaved.Store(time.Now().UnixNano())
	s.m.checkpointSaves.Inc()
	return nil
}

// Committed returns the newest delivered position (for tests and status).
func (s *Source) Committed() (Position, bool) {
	pos, ok, _ := s.tracker.Committed()
	return pos, ok
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
		g("lag_seconds", "Age of the newest delivered event while data is pending; 0 when caught up.", func() float64 {
			lag, _, _ := s.lag()
			t := s.lastAckedTime.Load()
			if lag == 0 || t == 0 {
				return 0
			}
			return max(0, time.Since(time.UnixMilli(t)).Seconds())
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
	pos, _, _ := s.tracker.Committed()
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

// Stats is a snapshot for the periodic status line.
type Stats struct {
	EventsRead, EventsAcked, LostBytes, DataLosses int64
	LagBytes                                       int64
	FilesBehind, RotationsBeforeLoss               int
}

// Stats returns the source's counters and backlog.
func (s *Source) Stats() Stats {
	lag, behind, left := s.lag()
	return Stats{
		EventsRead:          int64(counterValue(s.m.linesRead)),
		EventsAcked:         int64(counterValue(s.m.eventsAcked)),
		LostBytes:           int64(counterValue(s.m.lostBytes)),
		DataLosses:          int64(counterValue(s.m.lossIncidents)),
		LagBytes:            lag,
		FilesBehind:         behind,
		RotationsBeforeLoss: left,
	}
}
