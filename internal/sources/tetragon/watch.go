package tetragon

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watcher wakes the reader when the export directory changes and keeps an
// up-to-date view of the file set, independent of the reader: while the
// reader is paused by back-pressure, backups still appear and disappear, and
// knowing them is how data deleted before it was read gets reported.
type watcher struct {
	set  fileSet
	poll time.Duration
	log  *slog.Logger
	m    *metrics
	wake chan struct{} // capacity 1: a pending wake-up is enough

	mu     sync.Mutex
	curKey string // sort key of the file being read: "" before the first, liveKey until its backup name is known
	curID  fileID // inode of the file being read, to learn its backup name
	// baseline holds, while the current file is the live one, the backups
	// that existed when it was adopted: all older than it. Any other backup
	// is its own rename or newer.
	baseline map[string]bool
	known    map[string]int64 // backups newer than the current file, with the size last seen
	// gone folds the known backups that left the disk, so that known stays
	// as small as what is on disk during an outage of any length.
	gone vanishedFiles
	last []entry
}

// vanishedFiles are backups newer than the current file that were deleted
// before the reader reached them: the first maxLossNames names, a count of
// the others and their size.
type vanishedFiles struct {
	names   []string
	omitted int
	bytes   int64
	newest  string // greatest key folded in
}

func (v *vanishedFiles) add(key string, size int64) {
	if len(v.names) < maxLossNames {
		v.names = append(v.names, key)
	} else {
		v.omitted++
	}
	v.bytes += size
	v.newest = max(v.newest, key)
}

func (v *vanishedFiles) empty() bool { return len(v.names) == 0 }

func newWatcher(set fileSet, poll time.Duration, log *slog.Logger, m *metrics) *watcher {
	return &watcher{set: set, poll: poll, log: log, m: m, wake: make(chan struct{}, 1), known: map[string]int64{}}
}

// run watches until ctx is done. Without inotify (limits reached, a
// filesystem that does not support it) it still polls every w.poll.
func (w *watcher) run(ctx context.Context) {
	var events chan fsnotify.Event
	var errs chan error
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		w.log.Warn("file notifications unavailable, polling only", "interval", w.poll.String(), "error", err)
	} else {
		defer fw.Close()
		events, errs = fw.Events, fw.Errors
	}
	watching := false
	tick := time.NewTicker(w.poll)
	defer tick.Stop()
	for {
		if fw != nil && !watching {
			// The directory may not exist yet (Tetragon not installed); retry each tick.
			watching = fw.Add(w.set.dir) == nil
		}
		select {
		case <-ctx.Done():
			return
		case ev := <-events:
			w.notify()
			if ev.Op&(fsnotify.Create|fsnotify.Rename|fsnotify.Remove) != 0 {
				w.sawName(filepath.Base(ev.Name))
			}
		case err := <-errs:
			// An overflowed inotify queue loses events; the poll below covers for it.
			w.m.watchErrors.Inc()
			w.log.Warn("file notification error, relying on polling", "error", err)
		case <-tick.C:
			w.notify()
			w.observe()
		}
	}
}

func (w *watcher) notify() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// sawName records a backup named by a notification, so that even a file that
// is created and deleted between two polls is known to have existed.
func (w *watcher) sawName(name string) {
	e, ok := w.set.classify(name)
	if !ok || e.live {
		return
	}
	var id fileID
	var size int64
	if fi, err := os.Lstat(e.path(w.set.dir)); err == nil && fi.Mode().IsRegular() {
		size = fi.Size()
		if !e.gz {
			id = idOf(fi)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.learn(e.key, id) {
		return
	}
	// A late notification for a backup already folded into gone (Tetragon
	// deletes oldest first, so anything up to gone.newest is gone too).
	if w.gone.newest != "" && e.key <= w.gone.newest {
		return
	}
	if w.newer(e.key) && size >= w.known[e.key] {
		w.known[e.key] = size
	}
}

// learn records the backup name of the current file once its rename is seen.
func (w *watcher) learn(key string, id fileID) bool {
	if w.curKey != liveKey || id != w.curID || id == (fileID{}) {
		return false
	}
	w.curKey, w.baseline = key, nil
	w.forgetUpTo(key)
	return true
}

// forgetUpTo drops what is known of backups up to key (no longer newer).
func (w *watcher) forgetUpTo(key string) {
	for k := range w.known {
		if k <= key {
			delete(w.known, k)
		}
	}
	if w.gone.newest <= key {
		w.gone = vanishedFiles{}
	}
}

// newer reports whether backup key is newer than the current file.
func (w *watcher) newer(key string) bool {
	switch w.curKey {
	case "":
		return false
	case liveKey:
		return !w.baseline[key]
	}
	return key > w.curKey
}

// observe scans the directory and refreshes what is known and the lag gauges.
func (w *watcher) observe() []entry {
	list, err := w.set.scan()
	if err != nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.last = list
	for _, e := range list {
		if !e.gz && !e.live {
			w.learn(e.key, e.id)
		}
	}
	for _, e := range list {
		if !e.live && w.newer(e.key) && e.size >= w.known[e.key] {
			w.known[e.key] = e.size
		}
	}
	w.fold(list)
	return list
}

// fold moves known backups missing from a listing into w.gone, in key order.
// Only those older than the newest backup listed: a name notified after the
// listing was made is newer than all it holds, and not gone. While the
// current file is the live one, the oldest known backup may be its own
// rename (not a loss: the reader holds it open), so it stays known.
func (w *watcher) fold(list []entry) {
	present := make(map[string]bool, len(list))
	newest := ""
	for _, e := range list {
		present[e.key] = true
		if !e.live {
			newest = max(newest, e.key)
		}
	}
	own := w.ownRename()
	var keys []string
	for k := range w.known {
		if !present[k] && k != own && k < newest {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		w.gone.add(k, w.known[k])
		delete(w.known, k)
	}
}

// ownRename returns, while the current file is the live one and its backup
// name was not seen, the oldest new backup: its rename.
func (w *watcher) ownRename() string {
	own := ""
	if w.curKey == liveKey {
		for k := range w.known {
			if own == "" || k < own {
				own = k
			}
		}
	}
	return own
}

// reading tells the watcher which file the reader is on now, with the scan
// that found it; backups older than it are no longer of interest. Every
// backup is older than the live file: those on disk form the baseline,
// and those gone were reported (or not newer) already.
func (w *watcher) reading(key string, id fileID, list []entry) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.curKey, w.curID, w.baseline = key, id, nil
	if key == liveKey {
		w.baseline = make(map[string]bool, len(list))
		for _, e := range list {
			if !e.live {
				w.baseline[e.key] = true
			}
		}
		clear(w.known)
		w.gone = vanishedFiles{}
		return
	}
	w.forgetUpTo(key)
}

// vanished returns the backups known to have existed strictly between the
// current file and nextKey that are no longer in list, with their sizes.
func (w *watcher) vanished(list []entry, nextKey string) vanishedFiles {
	present := make(map[string]bool, len(list))
	for _, e := range list {
		present[e.key] = true
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.fold(list)
	own := w.ownRename() // its backup name was never seen: the oldest new backup is its rename
	v := w.gone
	v.names = slices.Clone(v.names)
	var keys []string
	for k := range w.known {
		if w.newer(k) && k != own && k < nextKey && !present[k] {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		v.add(k, w.known[k])
	}
	slices.Sort(v.names)
	return v
}

// inBaseline reports whether backup key existed when the reader adopted the
// live file it reads (so it is older than that file).
func (w *watcher) inBaseline(key string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.baseline[key]
}

// currentKey returns the sort key of the file being read.
func (w *watcher) currentKey() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.curKey
}

// lastScan returns the last directory scan and the current file's sort key,
// from which the lag gauges are derived.
func (w *watcher) lastScan() (list []entry, curKey string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last, w.curKey
}
