package delivery

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/siemship/siemship/internal/event"
	"github.com/siemship/siemship/internal/jsonstr"
	"github.com/siemship/siemship/internal/retry"
)

// deadLetter appends rejected events to an NDJSON file, one line per event:
//
//	{"time":"<RFC 3339>","sink":"<name>","status":400,"reason":"…","event_time":<ms>,"event":<raw or string>}
//
// Every write is fsynced before it returns, so an event is on disk before it
// is acknowledged. The file is capped: a write that would take it past
// maxBytes first renames it to <path>.1, replacing the one before, so a
// systemic rejection cannot fill the node's disk (what the rotation
// discards is counted and logged). Safe for concurrent use.
type deadLetter struct {
	path     string
	maxBytes int64
	sink     []byte // JSON-quoted sink name
	m        *metrics

	mu      sync.Mutex
	f       *os.File
	size    int64
	buf     []byte
	rotated bool // a rotation discarded older dead letters
}

func newDeadLetter(path string, maxBytes int64, sink string, m *metrics) *deadLetter {
	return &deadLetter{path: path, maxBytes: maxBytes, sink: jsonstr.Append(nil, sink), m: m}
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
		b = jsonstr.Append(b, reason)
		b = append(b, `,"event_time":`...)
		b = strconv.AppendInt(b, ev.Time, 10)
		b = append(b, `,"event":`...)
		// A rejected event may be rejected because it is not JSON after
		// all: check (rare path) so that every line stays valid NDJSON.
		if ev.Defect() == "" && json.Valid(ev.Raw) {
			b = append(b, ev.Raw...)
		} else {
			b = jsonstr.Append(b, ev.Raw)
		}
		b = append(b, "}\n"...)
	}
	d.buf = b[:0]

	if d.size > 0 && d.size+int64(len(b)) > d.maxBytes {
		if err := d.rotate(); err != nil {
			return err
		}
	}
	if _, err := d.f.Write(b); err == nil {
		err = d.f.Sync()
	} else {
		_ = d.f.Truncate(d.size)
		d.drop()
		return fmt.Errorf("write dead-letter file %s: %w", d.path, err)
	}
	d.size += int64(len(b))
	return nil
}

// rotate renames the full file to <path>.1, replacing (and counting) the
// previous one, and starts a new file.
func (d *deadLetter) rotate() error {
	old := d.path + ".1"
	if fi, err := os.Stat(old); err == nil {
		d.m.deadLetterDiscarded.Add(float64(fi.Size()))
	}
	d.drop()
	if err := os.Rename(d.path, old); err != nil {
		return fmt.Errorf("rotate dead-letter file %s: %w", d.path, err)
	}
	d.rotated = true
	d.m.deadLetterRotations.Inc()
	return d.open()
}

// fullReason says, once the cap was reached, that older dead letters are
// being discarded; "" before.
func (d *deadLetter) fullReason() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.rotated {
		return ""
	}
	return fmt.Sprintf("dead-letter file %s reached dead_letter_max_bytes and was rotated: older rejected events are being discarded; find out why events are rejected", d.path)
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
	f, err := os.OpenFile(d.path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open dead-letter file: %w", err)
	}
	size, err := endsInNewline(f)
	if err != nil {
		f.Close()
		return fmt.Errorf("open dead-letter file %s: %w", d.path, err)
	}
	d.f, d.size = f, size
	return nil
}

// endsInNewline makes sure a line torn by a crash is not glued to the next
// record: it ends the file with a newline if it lacks one, and returns the
// file's size.
func endsInNewline(f *os.File) (int64, error) {
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 {
		return 0, err
	}
	last := make([]byte, 1)
	if _, err := f.ReadAt(last, fi.Size()-1); err != nil {
		return 0, err
	}
	if last[0] == '\n' {
		return fi.Size(), nil
	}
	if _, err := f.Write([]byte{'\n'}); err != nil {
		return 0, err
	}
	return fi.Size() + 1, f.Sync()
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
func (s *Sender) deadLetter(ctx context.Context, events []*event.Event, se *StatusError) {
	n := len(events)
	reason := rejectReason(se.Code)
	if !s.dl.enabled() {
		s.log.Error(s.peer.Name+" rejected events for good and no dead-letter file is configured: dropping them",
			"status", se.Code, "reason", reason, "events", n, "answer", se.Body)
	} else {
		for attempt := 0; ; attempt++ {
			err := s.dl.write(time.Now(), events, se.Code, reason)
			if err == nil {
				break
			}
			// The events are nowhere safe yet: keep them unacknowledged and try again.
			wait := retry.Backoff(attempt, s.cfg.RetryInitial, s.cfg.RetryMax)
			level := slog.LevelError
			if !s.dlLog.allow("write") {
				level = slog.LevelDebug
			}
			s.log.Log(ctx, level, "cannot write the dead-letter file; keeping the events and retrying",
				"error", err, "events", n, "retry_in", wait.Round(time.Millisecond).String())
			if !retry.Sleep(ctx, wait) {
				return
			}
		}
		s.log.Warn(s.peer.Name+" rejected events for good; wrote them to the dead-letter file",
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
		return "rejected as unprocessable (LogScale: the token's repository is gone)"
	}
	return "rejected: " + http.StatusText(code)
}
