package falconstream

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/tidwall/gjson"

	emulator "github.com/siemship/siemship/internal/emulators/falcon"
	"github.com/siemship/siemship/internal/event"
	"github.com/siemship/siemship/internal/falcon"
)

// memOffsets is an OffsetStore in memory.
type memOffsets struct {
	mu      sync.Mutex
	offsets map[string]int64
}

func (m *memOffsets) Load(context.Context) (map[string]int64, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.offsets), m.offsets != nil, nil
}

func (m *memOffsets) Save(_ context.Context, o map[string]int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.offsets = maps.Clone(o)
	return nil
}

// recorder is a sink: it records every event's partition and offset and
// acknowledges batches out of order after a random delay.
type recorder struct {
	mu     sync.Mutex
	got    map[string][]int64 // partition → offsets in arrival order
	types  map[string]int
	bad    []string
	maxAck time.Duration
	emu    *emulator.Server
}

func newRecorder(emu *emulator.Server, maxAck time.Duration) *recorder {
	return &recorder{got: map[string][]int64{}, types: map[string]int{}, maxAck: maxAck, emu: emu}
}

func (r *recorder) run(ctx context.Context, in <-chan *event.Batch, wg *sync.WaitGroup) {
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case b := <-in:
				r.record(b)
				b.ExpectDeliveries(len(b.Events))
				d := time.Duration(0)
				if r.maxAck > 0 {
					d = rand.N(r.maxAck)
				}
				wg.Go(func() {
					select {
					case <-time.After(d):
						b.Delivered(len(b.Events))
					case <-ctx.Done():
					}
				})
			}
		}
	})
}

func (r *recorder) record(b *event.Batch) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range b.Events {
		m := gjson.GetBytes(e.Raw, "metadata")
		off := m.Get("offset").Int()
		// The partition is not in the event: find the partition whose event
		// at this offset has exactly these bytes (raw bytes are untouched).
		p := -1
		for i := range r.emu.Partitions() {
			if bytes.Equal(r.emu.EventAt(i, off), e.Raw) {
				p = i
				break
			}
		}
		if p < 0 {
			r.bad = append(r.bad, fmt.Sprintf("offset %d: bytes match no partition's event: %.80s", off, e.Raw))
			continue
		}
		key := strconv.Itoa(p)
		r.got[key] = append(r.got[key], off)
		r.types[e.Type]++
		if want := m.Get("eventCreationTime").Int(); e.Time != want {
			r.bad = append(r.bad, fmt.Sprintf("offset %d: time %d, want %d", off, e.Time, want))
		}
		if e.Flags != 0 {
			r.bad = append(r.bad, fmt.Sprintf("offset %d: flags %v", off, e.Flags))
		}
	}
}

// have returns, per partition, the set of offsets received and the
// number of duplicates.
func (r *recorder) have() (map[string]map[int64]bool, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]map[int64]bool{}
	dups := 0
	for p, offs := range r.got {
		set := map[int64]bool{}
		for _, o := range offs {
			if set[o] {
				dups++
			}
			set[o] = true
		}
		out[p] = set
	}
	return out, dups
}

// harness runs one source against one emulator.
type harness struct {
	t      *testing.T
	emu    *emulator.Server
	srv    *httptest.Server
	src    *Source
	rec    *recorder
	store  *memOffsets
	reg    *prometheus.Registry
	cancel context.CancelFunc
	wg     sync.WaitGroup
	runErr chan error
}

func testConfig(baseURL string) Config {
	c := DefaultConfig()
	c.BaseURL, c.ClientID, c.ClientSecret = baseURL, "id", "secret"
	c.AppID = "siemshiptest"
	c.ReadTimeout, c.RetryInitial, c.RetryMax = 3*time.Second, 20*time.Millisecond, 300*time.Millisecond
	c.Linger, c.CheckpointInterval = 50*time.Millisecond, 100*time.Millisecond
	c.MaxBatchEvents = 200
	return c
}

func newEmulator(cfg emulator.Config) (*emulator.Server, *httptest.Server) {
	cfg.ClientID, cfg.ClientSecret = "id", "secret"
	emu := emulator.New(cfg)
	return emu, httptest.NewServer(emu)
}

// start runs a source on cfg (mutated by mut) against emu.
func start(t *testing.T, emu *emulator.Server, srv *httptest.Server, store *memOffsets, maxAck time.Duration, mut func(*Config)) *harness {
	t.Helper()
	cfg := testConfig(srv.URL)
	if mut != nil {
		mut(&cfg)
	}
	h := &harness{t: t, emu: emu, srv: srv, rec: newRecorder(emu, maxAck), store: store, reg: prometheus.NewRegistry(), runErr: make(chan error, 1)}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	src, err := New(cfg, "falcon", store, nil, h.reg, log)
	if err != nil {
		t.Fatal(err)
	}
	h.src = src
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	out := make(chan *event.Batch)
	h.rec.run(ctx, out, &h.wg)
	go func() { h.runErr <- src.Run(ctx, out) }()
	t.Cleanup(h.stop)
	return h
}

// stop ends Run and the recorder, then closes the source (final save).
func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	if err := <-h.runErr; err != nil {
		h.t.Errorf("Run: %v", err)
	}
	h.wg.Wait()
	if err := h.src.Close(); err != nil {
		h.t.Errorf("Close: %v", err)
	}
}

// waitAll waits until every offset below each partition's head arrived.
func (h *harness) waitAll(timeout time.Duration) {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		have, _ := h.rec.have()
		missing := 0
		first := ""
		for p := range h.emu.Partitions() {
			head := h.emu.Head(p)
			for off := range head {
				if !have[strconv.Itoa(p)][off] {
					if missing == 0 {
						first = fmt.Sprintf("partition %d offset %d (head %d)", p, off, head)
					}
					missing++
				}
			}
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%d offsets missing after %v, first %s; emulator %+v", missing, timeout, first, h.emu.Stats())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitCommitted waits until each partition's committed offset is head-1.
func (h *harness) waitCommitted(timeout time.Duration) {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c := h.src.Committed()
		ok := true
		for p := range h.emu.Partitions() {
			if c[strconv.Itoa(p)] != h.emu.Head(p)-1 {
				ok = false
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("committed %v, heads not reached", c)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (h *harness) checkClean() {
	h.t.Helper()
	h.rec.mu.Lock()
	defer h.rec.mu.Unlock()
	if len(h.rec.bad) > 0 {
		h.t.Fatalf("%d bad events, first %s", len(h.rec.bad), h.rec.bad[0])
	}
	for p, offs := range h.rec.got {
		for i := 1; i < len(offs); i++ {
			if offs[i] <= offs[i-1] {
				h.t.Fatalf("partition %s: offset %d after %d", p, offs[i], offs[i-1])
			}
		}
	}
}

func (h *harness) reconnects() map[string]float64 {
	out := map[string]float64{}
	for _, c := range []string{causeEOF, causeError, causeUnauthorized, causeSilence, causeRefresh} {
		for p := range h.emu.Partitions() {
			out[c] += testutil.ToFloat64(h.src.m.reconnects.WithLabelValues(strconv.Itoa(p), c))
		}
	}
	return out
}

func sum(m map[string]float64) float64 {
	t := 0.0
	for _, v := range m {
		t += v
	}
	return t
}

// produce appends perTick events to every partition every tick until
// ctx ends or d passed.
func produce(ctx context.Context, emu *emulator.Server, perTick int, tick, d time.Duration) {
	end := time.Now().Add(d)
	t := time.NewTicker(tick)
	defer t.Stop()
	for time.Now().Before(end) {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			for p := range emu.Partitions() {
				emu.Append(p, perTick)
			}
		}
	}
}

var _ = falcon.ErrMissingScope
