package falconapi

import (
	"sync/atomic"
	"testing"
	"time"

	emu "github.com/siemship/siemship/internal/emulators/falcon"
)

// More records at the high-water mark than one page holds are paged by
// offset. Records of the first page updated while the source pages move to
// the end of the sort order, so every later record slides towards the
// start: paging on at offset+limit would skip as many records at the mark
// as moved, and the next page (later, settled records) moves the mark past
// them for good. Each page overlaps the previous one by its last id; when
// that id is no longer first, the query starts over from the mark.
func TestOffsetPagingAtTheMarkSurvivesUpdates(t *testing.T) {
	e := newEnv(t)
	m := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	e.emu.AddRecords("filevantage", 700, m) // 500 per page
	e.emu.AddRecords("filevantage", 100, m.Add(time.Hour))
	var calls atomic.Int64
	e.emu.DuringPage(func(string) {
		if calls.Add(1) == 2 { // after the first details answer
			e.emu.UpdateRecords("filevantage", 20) // 20 of the first page
		}
	})
	cfg := e.config("filevantage")
	cfg.StartFrom = m.Format(time.RFC3339)
	_, stop := e.run(cfg, false)
	defer stop()
	e.waitAll(10*time.Second, "filevantage")
	stop()
	if dups := e.checkServed("filevantage"); dups != 0 {
		t.Errorf("%d record versions emitted twice, want 0", dups)
	}
}

// A record shipped before it settled is remembered as shipped until the
// mark passes it. When the mark reaches exactly its timestamp through
// another record of an earlier page, it must still be known as shipped: it
// was emitted a second time when the next page listed it.
func TestShippedAtTheNewMarkNotRepeated(t *testing.T) {
	e := newEnv(t)
	e.emu.AddRecords("filevantage", 501, time.Now()) // one more than a page, unsettled
	_, stop := e.run(e.config("filevantage"), false)
	defer stop()
	e.waitAll(10*time.Second, "filevantage")
	var saved State
	waitFor(t, "the mark at the records' timestamp", 10*time.Second, func() bool {
		ok, err := e.store.Load("falcon", &saved)
		return ok && err == nil && len(saved.Resources["filevantage"].IDs) == 501
	})
	stop()
	if dups := e.checkServed("filevantage"); dups != 0 {
		t.Errorf("%d record versions emitted twice, want 0", dups)
	}
}

// A checkpoint can say a record at exactly the mark was delivered though
// it is not yet among the mark's ids (shipped before it settled, the mark
// reaching its timestamp through another record): a restart must not ship
// it again.
func TestRestartSkipsDeliveredAtTheMark(t *testing.T) {
	e := newEnv(t)
	m := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	ids := e.emu.AddRecords("filevantage", 2, m)
	ts := m.Format(emu.TimeLayout)
	if err := e.store.Save("falcon", State{Version: stateVersion, Resources: map[string]Position{
		"filevantage": {Timestamp: ts, IDs: ids[:1], Ahead: map[string]string{ids[1]: ts}}}}); err != nil {
		t.Fatal(err)
	}
	var polls atomic.Int64
	e.emu.DuringPage(func(string) { polls.Add(1) })
	_, stop := e.run(e.config("filevantage"), false)
	waitFor(t, "a few polls", 10*time.Second, func() bool { return polls.Load() >= 6 })
	stop()
	e.mu.Lock()
	defer e.mu.Unlock()
	if n := len(e.got["filevantage"]); n != 0 {
		t.Errorf("%d record versions shipped again after the restart, want 0: %v", n, e.got["filevantage"])
	}
}
