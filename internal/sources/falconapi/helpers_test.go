package falconapi

import (
	"bytes"
	"context"
	"log/slog"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tidwall/gjson"

	"github.com/siemship/siemship/internal/checkpoints"
	emu "github.com/siemship/siemship/internal/emulators/falcon"
	"github.com/siemship/siemship/internal/event"
)

// env is an emulator, a state directory and a recording sink.
type env struct {
	t     testing.TB
	emu   *emu.Server
	srv   *httptest.Server
	store *checkpoints.Store
	at    checkpoints.Location // when set, instead of store
	logs  *syncBuffer

	holding atomic.Bool // the consumer keeps batches unacknowledged in held

	mu   sync.Mutex
	held []*event.Batch
	got  map[string]map[string]int // resource → "id@version" → deliveries
	typs map[string]bool
	bad  []string
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newEnv(t testing.TB) *env {
	t.Helper()
	e := &env{t: t, emu: emu.New(emu.Config{ClientID: "id", ClientSecret: "secret"}), logs: &syncBuffer{},
		got: map[string]map[string]int{}, typs: map[string]bool{}}
	e.srv = httptest.NewServer(e.emu)
	t.Cleanup(e.srv.Close)
	st, err := checkpoints.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e.store = st
	return e
}

func (e *env) config(resources ...string) Config {
	c := DefaultConfig()
	c.BaseURL, c.ClientID, c.ClientSecret = e.srv.URL, "id", "secret"
	c.Resources = resources
	c.Interval = 100 * time.Millisecond
	c.StartFrom = "2025-01-01T00:00:00Z"
	return c
}

// run starts a source and a consumer that acknowledges every batch (or,
// with hold, keeps them unacknowledged). stop cancels and closes it.
func (e *env) run(cfg Config, hold bool) (src *Source, stop func()) {
	e.t.Helper()
	var at checkpoints.Location = e.store.At("falcon")
	if e.at != nil {
		at = e.at
	}
	src, err := New("falcon", cfg, at, prometheus.NewRegistry(), slog.New(slog.NewTextHandler(e.logs, nil)))
	if err != nil {
		e.t.Fatal(err)
	}
	e.holding.Store(hold)
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan *event.Batch, 4)
	var wg sync.WaitGroup
	runErr := make(chan error, 1)
	wg.Go(func() { runErr <- src.Run(ctx, out) })
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case b := <-out:
				e.record(b)
				b.Expect(1)
				if e.holding.Load() {
					e.mu.Lock()
					e.held = append(e.held, b)
					e.mu.Unlock()
					continue
				}
				b.Delivered(len(b.Events))
			}
		}
	})
	var once sync.Once
	return src, func() { once.Do(func() { e.stop(cancel, &wg, runErr, src) }) }
}

func (e *env) stop(cancel func(), wg *sync.WaitGroup, runErr chan error, src *Source) {
	{
		cancel()
		wg.Wait()
		if err := <-runErr; err != nil {
			e.t.Errorf("Run: %v", err)
		}
		if err := src.Close(); err != nil {
			e.t.Errorf("Close: %v", err)
		}
	}
}

// deliver acknowledges the held batches and every later one.
func (e *env) deliver() {
	e.holding.Store(false)
	e.mu.Lock()
	held := e.held
	e.held = nil
	e.mu.Unlock()
	for _, b := range held {
		b.Delivered(len(b.Events))
	}
}

func (e *env) record(b *event.Batch) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ev := range b.Events {
		res := ev.Type[len("falcon_"):]
		spec, _ := specOf(res)
		id := gjson.GetBytes(ev.Raw, spec.idField).String()
		ver := int(gjson.GetBytes(ev.Raw, "siemship_version").Int())
		ts, _ := time.Parse(time.RFC3339Nano, gjson.GetBytes(ev.Raw, spec.timeField).String())
		if ts.UnixMilli() != ev.Time {
			e.bad = append(e.bad, "event time is not the record's "+spec.timeField+": "+string(ev.Raw))
		}
		if e.got[res] == nil {
			e.got[res] = map[string]int{}
		}
		e.got[res][emu.VersionKey(id, ver)]++
		e.typs[ev.Type] = true
	}
}

// missingFinal counts the records of resource whose current version has
// not arrived.
func (e *env) missingFinal(resource string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, r := range e.emu.Records(resource) {
		if e.got[resource][emu.VersionKey(r.ID, r.Version)] == 0 {
			n++
		}
	}
	return n
}

// waitAll waits until the current version of every record of every
// resource has arrived.
func (e *env) waitAll(timeout time.Duration, resources ...string) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		left := 0
		for _, r := range resources {
			left += e.missingFinal(r)
		}
		if left == 0 {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("after %v, %d current record versions have not arrived\nlogs:\n%s", timeout, left, e.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkServed asserts that every version the emulator's details endpoints
// served arrived (nothing fetched was dropped), and returns the
// duplicates (versions that arrived more than once).
func (e *env) checkServed(resources ...string) (dups int) {
	e.t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range e.bad {
		e.t.Error(s)
	}
	for _, r := range resources {
		for k := range e.emu.Served(r) {
			if e.got[r][k] == 0 {
				e.t.Errorf("%s: version %s was served by Falcon but never emitted", r, k)
			}
		}
		for _, n := range e.got[r] {
			dups += n - 1
		}
	}
	return dups
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting until %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
