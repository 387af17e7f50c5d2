package logscale

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/siemship/siemship/internal/event"
)

// deadLetter appends rejected events to an NDJSON file, one line per event:
//
//	{"time":"<RFC 3339>","sink":"<name>","status":400,"reason":"…","event_time":<ms>,"event":<raw or string>}
//
// Every write is fsynced before it returns, so an event is on disk before it
// is acknowledged. Safe for concurrent use.
type deadLetter struct {
	path string
	sink []byte // JSON-quoted sink name

	mu  sync.Mutex
	f   *os.File
	buf []byte
}

func newDeadLetter(path, sink string) *deadLetter {
	return &deadLetter{path: path, sink: appendJSONString(nil, sink)}
}

// enabled reports whether there is a file to write to.
func (d *deadLetter) enabled() bool { return d.path != "" }

// write appends one line per event and syncs the file. On failure nothing
// of this call stays in the file (best effort), so a retry does not leave
// half lines behind.
func (d *deadLetter) write(now time.Time, events []*event.Event, status int, reason string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.open(); err != nil {
		return err
	}
	b := d.buf[:0]
	ts := now.UTC().AppendFormat(nil, time.RFC3339)
	for _, ev := range events {
		b = append(b, `{"time":"`...)
		b = append(b, ts...)
		b = append(b, `","sink":`...)
		b = append(b, d.sink...)
		b = append(b, `,"status":`...)
		b = strconv.AppendInt(b, int64(status), 10)
		b = append(b, `,"reason":`...)
		b = appendJSONString(b, reason)
		b = append(b, `,"event_time":`...)
		b = strconv.AppendInt(b, ev.Time, 10)
		b = append(b, `,"event":`...)
		// A rejected event may be rejected because it is not JSON after
		// all: check (rare path) so that every line stays valid NDJSON.
		if flagError(ev) == "" && json.Valid(ev.Raw) {
			b = append(b, ev.Raw...)
		} else {
			b = appendJSONString(b, ev.Raw)
		}
		b = append(b, "}\n"...)
	}
	d.buf = b[:0]

	size, err := d.f.Seek(0, io.SeekEnd)
	if err != nil {
		d.drop()
		return fmt.Errorf("seek dead-letter file %s: %w", d.path, err)
	}
	if _, err = d.f.Write(b); err == nil {
		err = d.f.Sync()
	}
	if err != nil {
		_ = d.f.Truncate(size)
		d.drop()
		return fmt.Errorf("write dead-letter file %s: %w", d.path, err)
	}
	return nil
}

// drop closes the file after a failure; the next write reopens it, in case
// it was replaced or its disk came back.
func (d *deadLetter) drop() {
	_ = d.f.Close()
	d.f = nil
}

func (d *deadLetter) open() error {
	if d.f != nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(d.path), 0o700); err != nil {
		return fmt.Errorf("create dead-letter directory: %w", err)
	}
	f, err := os.OpenFile(d.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open dead-letter file: %w", err)
	}
	d.f = f
	return nil
}

// close closes the file; a later write reopens it.
func (d *deadLetter) close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		return nil
	}
	err := d.f.Close()
	d.f = nil
	if err != nil {
		return fmt.Errorf("close dead-letter file %s: %w", d.path, err)
	}
	return nil
}

// deadLetter writes events to the dead-letter file, then acknowledges
// them. While the file cannot be written the events stay unacknowledged and
// the write is retried (with backoff) until ctx ends.
func (s *Sink) deadLetter(ctx context.Context, events []*event.Event, se *StatusError) {
	n := len(events)
	reason := rejectReason(se.Code)
	if !s.dl.enabled() {
		s.log.Error("LogScale rejected events for good and no dead-letter file is configured: dropping them",
			"status", se.Code, "reason", reason, "events", n, "answer", se.Body)
	} else {
		for attempt := 0; ; attempt++ {
			err := s.dl.write(time.Now(), events, se.Code, reason)
			if err == nil {
				break
			}
			// The events are nowhere safe yet: keep them unacknowledged and try again.
			wait := backoff(attempt, s.cfg.RetryInitial, s.cfg.RetryMax)
			level := slog.LevelError
			if !s.dlLog.allow("write") {
				level = slog.LevelDebug
			}
			s.log.Log(ctx, level, "cannot write the dead-letter file; keeping the events and retrying",
				"err", err, "events", n, "retry_in", wait.Round(time.Millisecond))
			if !sleep(ctx, wait) {
				return
			}
		}
		s.log.Warn("LogScale rejected events for good; wrote them to the dead-letter file",
			"status", se.Code, "reason", reason, "events", n, "path", s.dl.path, "answer", se.Body)
	}
	s.m.eventsDeadLetter.WithLabelValues(strconv.Itoa(se.Code)).Add(float64(n))
	s.ack(events)
}

// rejectReason is the short reason written with a dead-lettered event.
func rejectReason(code int) string {
	switch code {
	case http.StatusBadRequest:
		return "rejected as malformed"
	case http.StatusRequestEntityTooLarge:
		return "event too large"
	case http.StatusUnprocessableEntity:
		return "repository of the ingest token is gone"
	}
	return "rejected: " + http.StatusText(code)
}
