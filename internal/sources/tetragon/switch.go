package tetragon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/siemship/siemship/internal/event"
	"github.com/siemship/siemship/internal/retry"
)

// start opens the first file: where the checkpoint says, or per StartAt.
func (s *Source) start(ctx context.Context, out chan<- *event.Batch) error {
	var st state
	ok, err := s.store.Load(s.name, &st)
	if err != nil {
		// Reading everything again duplicates events; guessing could lose them.
		s.log.Error("checkpoint unreadable, reading every file on disk again", "error", err)
		s.m.mismatches.Inc()
		ok = false
		st = state{}
		s.cfg.StartAt = "oldest"
		if rerr := os.Rename(s.store.Path(s.name), s.store.Path(s.name)+".corrupt"); rerr != nil {
			return fmt.Errorf("set aside unreadable checkpoint: %w", rerr)
		}
	}
	list, err := s.set.scan()
	if err == nil && len(list) == 0 {
		err = fmt.Errorf("no export file yet: %w", os.ErrNotExist)
	}
	if err != nil {
		s.reportErr("waiting for Tetragon's export file", err)
		s.warnIfMissing(time.Now())
		return s.wait(ctx)
	}
	s.missingSince = time.Time{}
	if ok && st.Path != s.cfg.Path {
		s.log.Warn("checkpoint is for another path, starting afresh", "checkpoint_path", st.Path)
		ok = false
	}
	switch {
	case !ok:
		return s.startFresh(ctx, out, list)
	case st.Fresh:
		return s.startAfter(ctx, list, st.After)
	}
	return s.resume(ctx, out, list, st.Position)
}

// warnIfMissing warns when the export directory has had no export file for
// a while, and again periodically: a hostPath volume of type
// DirectoryOrCreate creates an empty directory when the path is wrong (or
// Tetragon's export is off), which otherwise looks like a quiet node.
func (s *Source) warnIfMissing(now time.Time) {
	if s.missingSince.IsZero() {
		s.missingSince = now
		return
	}
	d := now.Sub(s.missingSince)
	if d < s.missingWarnAfter {
		return
	}
	hint := fmt.Sprintf("check that sources.%s.path is Tetragon's export-filename (Helm: exportDirectory/exportFilename) and that Tetragon's export is on", s.name)
	s.setStatus(fmt.Sprintf("no export file in %s for %s: %s", s.set.dir, d.Round(time.Second), hint))
	if !s.missingWarned.IsZero() && now.Sub(s.missingWarned) < s.missingWarnEvery {
		return
	}
	s.missingWarned = now
	s.m.exportMissingWarnings.Inc()
	s.log.Warn("export directory has no export file", "dir", s.set.dir, "for", d.Round(time.Millisecond).String(),
		"warnings", int(counterValue(s.m.exportMissingWarnings)), "hint", hint)
}

// startFresh starts per StartAt and persists where, before reading: until
// the first acknowledgement, a restart must continue there, not apply
// StartAt again (with "end", that would skip everything written meanwhile).
func (s *Source) startFresh(ctx context.Context, out chan<- *event.Batch, list []entry) error {
	i := 0
	var off int64
	if s.cfg.StartAt == "end" {
		i = len(list) - 1
		e := list[i]
		var err error
		if off, err = lastLineEnd(e.path(s.set.dir), e.size, s.cfg.MaxLineBytes); err != nil {
			s.reportErr("cannot open export file", err)
			return s.wait(ctx)
		}
	}
	e := list[i]
	of, err := s.set.open(e, off, nil)
	if errors.Is(err, errReplaced) {
		return nil // rotated meanwhile: list the directory again
	}
	if errors.Is(err, errCorrupt) {
		return s.skipBroken(ctx, out, list, e, nil, err)
	}
	if err != nil {
		s.m.readErrors.Inc()
		s.reportErr("cannot open export file", err)
		return s.wait(ctx)
	}
	tail, err := of.tailBefore(off)
	if err != nil {
		of.Close()
		s.m.readErrors.Inc()
		s.reportErr("cannot open export file", err)
		return s.wait(ctx)
	}
	s.log.Info("no checkpoint, starting", "file", e.name, "offset", off, "start_at", s.cfg.StartAt)
	s.adopt(of, e.key, tail, list)
	after := ""
	if i > 0 {
		after = list[i-1].key
	}
	return s.persistStart(ctx, after)
}

// startAfter continues a start persisted in an empty file: the first file
// after the backup named after is where reading began.
func (s *Source) startAfter(ctx context.Context, list []entry, after string) error {
	i := slices.IndexFunc(list, func(e entry) bool { return e.key > after })
	if i < 0 {
		s.reportErr("waiting for Tetragon's export file", fmt.Errorf("no export file after %s yet: %w", after, os.ErrNotExist))
		return s.wait(ctx)
	}
	of, err := s.set.open(list[i], 0, nil)
	if errors.Is(err, errReplaced) {
		return nil // rotated meanwhile: list the directory again
	}
	if err != nil {
		s.m.readErrors.Inc()
		s.reportErr("cannot open export file", err)
		return s.wait(ctx)
	}
	s.log.Info("resuming from the start position", "file", list[i].name, "after", after)
	s.adopt(of, list[i].key, nil, list)
	return s.persistStart(ctx, after)
}

// persistStart commits and saves the position just adopted, retrying until
// it is saved: reading before would make a restart start elsewhere. An
// empty file has no content to be recognised by, so the start is saved as
// "the files after the backup named after" instead.
func (s *Source) persistStart(ctx context.Context, after string) error {
	c := tracked{pos: s.position()}
	if c.pos.File.Len == 0 {
		c = tracked{fresh: true, after: after}
	}
	s.tracker.Start(c)
	for {
		err := s.save()
		if err == nil {
			return nil
		}
		s.reportErr("cannot save the start position, not reading until it is saved", err)
		if !retry.Sleep(ctx, saveRetry) {
			return nil
		}
	}
}

// resume continues at pos, or reports the loss when pos's file is gone.
func (s *Source) resume(ctx context.Context, out chan<- *event.Batch, list []entry, pos Position) error {
	reason := "the checkpointed file no longer exists: Tetragon rotated it out before it was read"
	corrupt := false
	if s.inodeReused(list, pos.File) {
		s.m.mismatches.Inc()
		s.log.Warn("the checkpoint's inode now holds other content (inode reused), not seeking into it",
			"file", pos.File.Name, "offset", pos.Offset)
		reason = "the checkpointed file is gone and its inode was reused by another file"
	}
	e, i, err := s.locate(list, pos.File, false)
	if err != nil {
		return s.rescanOrWait(ctx, "cannot read an export file", err)
	}
	if i >= 0 {
		of, err := s.set.open(e, pos.Offset, &pos)
		switch {
		case err == nil:
			s.log.Info("resuming from checkpoint", "file", e.name, "offset", pos.Offset)
			s.adopt(of, e.key, pos.tailBytes(of), list)
			// The backlog and lag count from here, not from nothing, until
			// the first acknowledgement.
			s.tracker.Start(tracked{pos: pos})
			return nil
		case errors.Is(err, errTruncated):
			s.m.truncations.Inc()
			s.log.Warn("file is shorter than the checkpoint offset (truncated), reading it from the start",
				"file", e.name, "offset", pos.Offset)
			return s.openAndMark(ctx, out, list, e, nil)
		case errors.Is(err, errCorrupt):
			s.m.readErrors.Inc()
			corrupt = true
			reason = fmt.Sprintf("the checkpointed compressed backup cannot be read up to the checkpoint (%v)", err)
		case errors.Is(err, errStranger):
			s.m.mismatches.Inc()
			s.log.Warn("a file has the checkpoint's identity but other content, not seeking into it",
				"file", e.name, "offset", pos.Offset)
			reason = "the checkpointed file was replaced by one with other content"
		default:
			return s.rescanOrWait(ctx, "cannot open export file", err)
		}
	}
	posKey := pos.File.Name
	if e, ok := s.set.classify(posKey); ok {
		posKey = e.key
	}
	next := list[0]
	for _, e := range list {
		if e.key > posKey {
			next = e
			break
		}
	}
	loss := &Loss{From: pos, BytesAtLeast: max(0, pos.SizeSeen-pos.Offset), Reason: reason, corrupt: corrupt}
	return s.openAndMark(ctx, out, list, next, loss)
}

// atEOF decides what the end of the current file means.
func (s *Source) atEOF(ctx context.Context, out chan<- *event.Batch) error {
	if !s.cur.rotated {
		replaced, err := s.liveReplaced()
		if err != nil {
			s.reportErr("cannot check the export file", err)
		}
		if !replaced {
			if err := s.checkTruncated(); err != nil {
				return err
			}
			if s.long == nil {
				if err := s.emit(ctx, out, false); err != nil {
					return err
				}
			}
			s.idle.Add(1)
			return s.wait(ctx)
		}
		// Rotated: Tetragon closed it before renaming, so one more read to
		// EOF drains everything written in between.
		s.cur.rotated = true
		return nil
	}
	if s.long != nil {
		if err := s.emitLong(ctx, out, 0); err != nil {
			return err
		}
	} else if err := s.emit(ctx, out, true); err != nil {
		return err
	}
	return s.next(ctx, out)
}

// liveReplaced reports whether the live path now names another file.
func (s *Source) liveReplaced() (bool, error) {
	fi, err := os.Lstat(s.cfg.Path)
	if errors.Is(err, os.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return idOf(fi) != s.cur.ref.fileID, nil
}

// checkTruncated restarts the live file at 0 when it shrank below our offset
// (someone truncated it: Tetragon itself never does).
func (s *Source) checkTruncated() error {
	size, err := s.cur.size()
	if err != nil || size >= s.cur.off {
		return err
	}
	s.m.truncations.Inc()
	s.log.Warn("export file truncated, reading it again from the start", "offset", s.cur.off, "size", size)
	if _, err := s.cur.f.Seek(0, 0); err != nil {
		return fmt.Errorf("seek %s: %w", s.cur.path, err)
	}
	s.cur.off = 0
	s.cur.ref.fingerprint = fingerprint{}
	s.cur.refreshFingerprint()
	if s.long != nil {
		s.releaseBuffer(s.long.head)
		s.long = nil
	}
	if s.buf != nil {
		s.buf = s.buf[:0]
	}
	s.bufStart, s.lineEnd, s.scanned = 0, 0, 0
	s.tail = s.tail[:0]
	return nil
}

// next moves from the drained current file to the one after it.
func (s *Source) next(ctx context.Context, out chan<- *event.Batch) error {
	list, err := s.set.scan()
	if err != nil {
		s.reportErr("cannot list the export directory", err)
		return s.wait(ctx)
	}
	curKey := s.watch.currentKey()
	var nx *entry
	_, i, err := s.locate(list, s.cur.ref, true)
	if err != nil {
		return s.rescanOrWait(ctx, "cannot read an export file", err)
	}
	if i >= 0 {
		if i+1 < len(list) {
			nx = &list[i+1]
		}
	} else if nx, err = s.afterGone(list, curKey); err != nil {
		return s.rescanOrWait(ctx, "cannot read an export file", err)
	}
	if nx == nil {
		return s.wait(ctx) // renamed, but the new live file is not there yet
	}
	var loss *Loss
	if v := s.watch.vanished(list, nx.key); !v.empty() {
		loss = &Loss{From: s.position(), Files: v.names, FilesOmitted: v.omitted, BytesAtLeast: v.bytes,
			Reason: "backups were rotated out before they were read"}
	}
	s.log.Debug("finished a file, moving to the next", "finished", s.cur.ref.Name, "finished_key", curKey,
		"offset", s.bufStart, "next", nx.name, "files", len(list))
	return s.openAndMark(ctx, out, list, *nx, loss)
}

// afterGone picks the file after the current one when the current one is no
// longer on disk under any name it can be matched by. Tetragon deletes
// oldest first, so every file left after its backup name is newer.
//
// When that name was never seen (the live file was renamed, and compressed
// and deleted before the watcher looked), the backups that existed when the
// reader adopted the live file are all older (the watcher's baseline); of
// the others, the oldest is its rename. An empty file cannot be matched by
// content, so an empty backup outside the baseline, while what was read of
// the file is empty too, is taken for it: skipping an empty file skips
// nothing. Without the baseline the reader would go back to the oldest
// backup and ship everything again.
func (s *Source) afterGone(list []entry, curKey string) (*entry, error) {
	if curKey != liveKey {
		for j := range list {
			if list[j].key > curKey {
				return &list[j], nil
			}
		}
		return nil, nil
	}
	for j := range list {
		e := list[j]
		if e.live {
			return &list[j], nil
		}
		if s.watch.inBaseline(e.key) {
			continue
		}
		if s.cur.off == 0 {
			head, err := s.set.readHead(e, 1)
			if err != nil && !errors.Is(err, errCorrupt) {
				return nil, err
			}
			if err == nil && len(head) == 0 {
				continue // empty like the file that was read: its rename, or as good
			}
		}
		return &list[j], nil
	}
	return nil, nil
}

// openAndMark switches to e at offset 0 and emits a batch that moves the
// checkpoint there once everything before is delivered, carrying the loss
// report if there is one. Until that batch is committed, a restart resumes
// in the previous file, so no switch is ever lost.
//
// An empty file gets no checkpoint: it has no content to be recognised by
// after a restart, when its inode may belong to a newer file, and resuming
// there would silently skip every file in between. The checkpoint stays in
// the previous file, and a loss report waits for the file's first data.
func (s *Source) openAndMark(ctx context.Context, out chan<- *event.Batch, list []entry, e entry, loss *Loss) error {
	of, err := s.set.open(e, 0, nil)
	if errors.Is(err, errCorrupt) {
		return s.skipBroken(ctx, out, list, e, loss, err)
	}
	if err != nil {
		// Rotated or deleted meanwhile: the next step lists the directory again.
		return s.rescanOrWait(ctx, "cannot open export file", err)
	}
	if s.cur != nil {
		s.cur.Close()
		s.m.rotations.Inc()
	}
	s.adopt(of, e.key, nil, list)
	s.pendingLoss = mergeLoss(s.pendingLoss, loss) // send reports it
	if of.ref.Len == 0 {
		return nil
	}
	return s.send(ctx, out, nil, nil, nil)
}

// skipBroken reports a compressed backup that cannot even be opened (its
// header is damaged) as lost as a whole, and goes on with the file after it.
func (s *Source) skipBroken(ctx context.Context, out chan<- *event.Batch, list []entry, e entry, loss *Loss, cause error) error {
	s.m.readErrors.Inc()
	var from Position
	if s.cur != nil {
		from = s.position()
	} else {
		from.File.Name = e.name
	}
	loss = mergeLoss(loss, &Loss{From: from, Files: []string{e.name}, BytesAtLeast: e.size, corrupt: true,
		Reason: fmt.Sprintf("a compressed backup cannot be read at all (%v)", cause)})
	i := slices.IndexFunc(list, func(x entry) bool { return x.key > e.key })
	if i < 0 {
		s.reportErr("cannot read an export file", cause)
		return s.wait(ctx)
	}
	return s.openAndMark(ctx, out, list, list[i], loss)
}

// mergeLoss joins a loss still waiting to be reported with a newer one
// that follows it: together they are one gap.
func mergeLoss(older, newer *Loss) *Loss {
	switch {
	case older == nil:
		return newer
	case newer == nil:
		return older
	}
	older.Files = append(older.Files, newer.Files...)
	older.FilesOmitted += newer.FilesOmitted
	if n := len(older.Files) - maxLossNames; n > 0 {
		older.Files, older.FilesOmitted = older.Files[:maxLossNames], older.FilesOmitted+n
	}
	older.BytesAtLeast += newer.BytesAtLeast
	older.corrupt = older.corrupt || newer.corrupt
	if newer.corrupt && !strings.Contains(older.Reason, newer.Reason) {
		older.Reason += "; " + newer.Reason
	}
	return older
}

func (s *Source) adopt(of *openFile, key string, tail []byte, list []entry) {
	s.cur = of
	s.bufStart, s.lineEnd, s.scanned = of.off, 0, 0
	if s.buf != nil {
		s.buf = s.buf[:0]
	}
	s.tail = append(s.tail[:0], tail...)
	s.watch.reading(key, of.ref.fileID, list)
	s.lastErr = ""
	s.setStatus("")
}

// locate finds ref in list: a plain file by inode (and content, unless we hold
// it open, which rules out inode reuse), else a compressed backup by content
// (a plain backup's .gz twin included: the plain one may be deleted before
// its head is read). It returns the entry to open and its index in list.
//
// An error means a head could not be read (a file deleted or replaced
// since the listing, an I/O error): absence is then not proven, and the
// caller must list again rather than conclude the file is gone.
func (s *Source) locate(list []entry, ref fileRef, holding bool) (entry, int, error) {
	if !holding && ref.Len == 0 {
		return entry{}, -1, nil // no content to check an inode against (such positions are not checkpointed)
	}
	var firstErr error
	matches := func(e entry) bool {
		ok, err := s.headMatches(e, ref.fingerprint)
		if err != nil && firstErr == nil && !errors.Is(err, errCorrupt) {
			firstErr = err
		}
		return ok
	}
	for i, e := range list {
		if e.gz || e.id != ref.fileID {
			continue
		}
		if holding || matches(e) {
			return e, i, nil
		}
	}
	if ref.fingerprint.Len == 0 {
		return entry{}, -1, nil // an empty file has no content to recognise it by
	}
	for i, e := range list {
		c := e
		if !e.gz {
			if e.alt == nil {
				continue
			}
			c = *e.alt
		}
		if matches(c) {
			return c, i, nil
		}
	}
	return entry{}, -1, firstErr
}

// inodeReused reports whether a plain file has ref's inode but not its content.
func (s *Source) inodeReused(list []entry, ref fileRef) bool {
	for _, e := range list {
		if e.gz || e.id != ref.fileID {
			continue
		}
		if ok, err := s.headMatches(e, ref.fingerprint); err == nil && !ok {
			return true
		}
	}
	return false
}

func (s *Source) headMatches(e entry, fp fingerprint) (bool, error) {
	head, err := s.set.readHead(e, fp.Len)
	if err != nil {
		return false, err
	}
	return fp.Matches(head), nil
}

// rescanOrWait handles an error that makes the listing doubtful: a file
// gone or replaced since it was listed means list again now; anything else
// is reported and retried after a wait.
func (s *Source) rescanOrWait(ctx context.Context, msg string, err error) error {
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, errReplaced) {
		return nil
	}
	s.m.readErrors.Inc()
	s.reportErr(msg, err)
	return s.wait(ctx)
}

// tailBytes returns the bytes before the position in the opened file, which
// open already verified against the checksum.
func (p Position) tailBytes(of *openFile) []byte {
	if of.gz || p.TailLen == 0 {
		return nil // only used to checksum later positions; a short tail is still valid
	}
	b := make([]byte, p.TailLen)
	if _, err := of.f.ReadAt(b, p.Offset-int64(p.TailLen)); err != nil {
		return nil
	}
	return b
}

// lossEvent logs and counts a loss and turns it into an event for the SIEM,
// so the gap is visible where the data should have been.
func (s *Source) lossEvent(l *Loss) event.Event {
	s.m.lossIncidents.Inc()
	s.m.lostBytes.Add(float64(l.BytesAtLeast))
	msg, hint := "data deleted by Tetragon before it was read",
		"siemship fell behind by more than Tetragon keeps on disk: raise export-file-max-backups/max-size or find why shipping is slow"
	if l.corrupt {
		msg, hint = "compressed backup truncated or corrupt, its unreadable rest is lost",
			"the .gz was cut or damaged on disk (a full disk while Tetragon compressed?); its whole lines before the damage were shipped"
	}
	s.log.Error(msg,
		"lost_from_file", l.From.File.Name, "lost_from_offset", l.From.Offset,
		"lost_bytes_at_least", l.BytesAtLeast, "lost_files", l.Files,
		"resumed_at_file", l.ResumedAt.Name, "reason", l.Reason, "hint", hint)
	now := time.Now().UTC()
	raw, err := json.Marshal(struct {
		Loss   *Loss  `json:"siemship_data_loss"`
		Source string `json:"source"`
		Path   string `json:"path"`
		Time   string `json:"time"`
	}{l, s.name, s.cfg.Path, now.Format(time.RFC3339Nano)})
	if err != nil {
		panic(fmt.Sprintf("encode loss report: %v", err)) // plain structs always encode
	}
	return event.Event{Raw: raw, Size: len(raw), Time: now.UnixMilli(), Type: "siemship_data_loss"}
}
