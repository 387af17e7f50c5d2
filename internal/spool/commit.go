package spool

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/google/renameio/v2"
	"github.com/prometheus/prometheus/tsdb/wlog"
)

const commitFile = "read.json"

// loadCommit reads the delivered prefix saved by an earlier run; none saved
// is the start of the oldest segment.
func (s *Sink) loadCommit() (pos, error) {
	var p pos
	data, err := os.ReadFile(filepath.Join(s.cfg.Dir, commitFile))
	if errors.Is(err, os.ErrNotExist) {
		return p, nil
	}
	if err != nil {
		return p, fmt.Errorf("read %s: %w", commitFile, err)
	}
	if err := json.Unmarshal(data, &p); err != nil {
		return pos{}, fmt.Errorf("decode %s: %w", commitFile, err)
	}
	return p, nil
}

// saveCommit persists the delivered prefix when it changed.
func (s *Sink) saveCommit() error {
	p, ok, version := s.tracker.Committed()
	s.mu.Lock()
	unchanged := !ok || !s.opened || version == s.savedVersion
	s.mu.Unlock()
	if unchanged {
		return nil
	}
	data, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode spool read position: %w", err)
	}
	path := filepath.Join(s.cfg.Dir, commitFile)
	if err := renameio.WriteFile(path, append(data, '\n'), 0o600, renameio.WithTempDir(s.cfg.Dir)); err != nil {
		s.m.commitFailures.Inc()
		return fmt.Errorf("write spool read position: %w", err)
	}
	s.mu.Lock()
	s.savedVersion = version
	s.mu.Unlock()
	return nil
}

// trimLoop deletes delivered segments as deliveries come in and saves the
// read position at most every commitEvery, until ctx ends.
func (s *Sink) trimLoop(ctx context.Context) {
	t := time.NewTicker(commitEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.trimWake:
			s.trim()
		case <-t.C:
			s.trim()
			if err := s.saveCommit(); err != nil {
				s.log.Error("spool: saving the read position failed (a restart replays more)", "error", err.Error())
			}
		}
	}
}

// trim deletes the segments every record of which was delivered, and
// signals the writer that there is room.
func (s *Sink) trim() {
	p, ok, _ := s.tracker.Committed()
	if !ok {
		return
	}
	below := p.Seg
	if p.SegDone {
		below++
	}
	var gone []int
	s.mu.Lock()
	for k, info := range s.segs {
		if k < below && k < s.writeSeg {
			gone = append(gone, k)
			s.bytes -= info.size
			delete(s.segs, k)
		}
	}
	s.mu.Unlock()
	for _, k := range gone {
		if err := os.Remove(wlog.SegmentName(s.cfg.Dir, k)); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Error("spool: delete of a delivered segment failed", "segment", k, "error", err.Error())
		}
	}
	if len(gone) > 0 {
		signal(s.room)
	}
}
