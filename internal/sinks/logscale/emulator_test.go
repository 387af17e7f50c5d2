package logscale

import (
	"github.com/siemship/siemship/internal/sinks/delivery"

	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	emulator "github.com/siemship/siemship/internal/emulators/logscale"
	"github.com/siemship/siemship/internal/event"
)

// Tests against the project's strict LogScale-compatible receiver.

const emuRepo = "tetragon-repo"

func newEmulator(t *testing.T, cfg emulator.Config) (*emulator.Server, *httptest.Server) {
	t.Helper()
	if cfg.Tokens == nil {
		cfg.Tokens = map[string]emulator.Token{testToken: {Name: "ingest", Repo: emuRepo}}
	}
	emu := emulator.New(cfg)
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	return emu, srv
}

// tetragonBatches wraps lines in batches of per events, with flagged
// events mixed in.
func tetragonBatches(acks *ackRecorder, lines [][]byte, per int) []*event.Batch {
	var out []*event.Batch
	for b := 0; b*per < len(lines); b++ {
		chunk := lines[b*per : min((b+1)*per, len(lines))]
		evs := make([]event.Event, len(chunk))
		for i, l := range chunk {
			n := b*per + i
			evs[i] = event.Event{Raw: l, Time: 1772366400000 + int64(n), Type: eventType(l), Size: len(l)}
			if n%97 == 5 {
				evs[i].Raw, evs[i].Flags, evs[i].Type = l[:len(l)/2], event.Truncated, "unknown"
			}
		}
		out = append(out, acks.wrap(b, "tetragon", evs))
	}
	return out
}

// TestEmulatorDelivery ships realistic events in both formats and checks
// that the receiver stored each exactly once, byte for byte.
func TestEmulatorDelivery(t *testing.T) {
	for _, format := range []string{FormatStructured, FormatHEC} {
		t.Run(format, func(t *testing.T) {
			emu, srv := newEmulator(t, emulator.Config{})
			cfg := testConfig(srv.URL)
			cfg.Format = format
			cfg.MaxEvents = 300
			cfg.Tags = map[string]string{"cluster": "kind"}
			s := newTestSink(t, cfg, nil)
			if err := s.Verify(context.Background()); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			lines := genTetragon(t, 2000, 7)
			acks := newAckRecorder()
			batches := tetragonBatches(acks, lines, 64)
			r := start(t, s)
			for _, b := range batches {
				r.in <- b
			}
			if err := r.finish(t); err != nil {
				t.Fatal(err)
			}
			if int(acks.total.Load()) != len(batches) {
				t.Fatalf("%d of %d batches acknowledged", acks.total.Load(), len(batches))
			}
			stored := emu.Events(emuRepo)
			if len(stored) != len(lines) {
				t.Fatalf("receiver stored %d events, want %d", len(stored), len(lines))
			}
			byTime := map[int64]emulator.StoredEvent{}
			for _, e := range stored {
				if _, dup := byTime[e.Timestamp]; dup {
					t.Fatalf("event at %d stored twice", e.Timestamp)
				}
				byTime[e.Timestamp] = e
			}
			for _, b := range batches {
				for _, ev := range b.Events {
					e, ok := byTime[ev.Time]
					if !ok {
						t.Fatalf("event at %d not stored", ev.Time)
					}
					if e.Tags["source"] != "tetragon" || e.Tags["event_type"] != ev.Type || e.Tags["cluster"] != "kind" {
						t.Errorf("tags %v", e.Tags)
					}
					if ev.Flags == 0 && e.Attributes != string(ev.Raw) {
						t.Fatalf("attributes differ from the raw line:\n%s\n%s", e.Attributes, ev.Raw)
					}
					if ev.Flags != 0 && !strings.Contains(e.RawString+e.Attributes, asText(ev.Raw)[:20]) {
						t.Errorf("truncated event lost its text: %+v", e)
					}
				}
			}
			for _, rec := range emu.Requests() {
				if rec.ContentEncoding != "gzip" || rec.Status != 200 {
					t.Errorf("request %+v", rec)
				}
			}
		})
	}
}

// TestEmulatorFaults: injected 503, 429 with Retry-After, 500 and
// connection resets delay delivery but lose and duplicate nothing.
func TestEmulatorFaults(t *testing.T) {
	emu, srv := newEmulator(t, emulator.Config{})
	emu.FailNext(2, http.StatusServiceUnavailable, "")
	emu.FailNext(1, 0, "") // connection reset
	cfg := testConfig(srv.URL)
	cfg.MaxEvents = 50
	cfg.Concurrency = 3
	s := newTestSink(t, cfg, nil)
	r := start(t, s)
	acks := newAckRecorder()
	lines := genTetragon(t, 1000, 11)
	batches := tetragonBatches(acks, lines, 25)
	for i, b := range batches {
		if i == 5 {
			emu.SetFaults(emulator.Faults{Rate: 0.4, Seed: 3, Kinds: []emulator.FaultKind{
				emulator.Fault503, emulator.Fault429, emulator.Fault500, emulator.FaultReset}})
		}
		r.in <- b
	}
	if err := r.finish(t); err != nil {
		t.Fatal(err)
	}
	if int(acks.total.Load()) != len(batches) {
		t.Fatalf("%d of %d batches acknowledged", acks.total.Load(), len(batches))
	}
	if got := len(emu.Events(emuRepo)); got != len(lines) {
		t.Errorf("receiver stored %d events, want %d", got, len(lines))
	}
	st := emu.Stats()
	faults := int64(0)
	for _, n := range st.Faults {
		faults += n
	}
	if faults < 5 {
		t.Errorf("only %d faults injected: %+v", faults, st.Faults)
	}
	if sent, acked := metric(t, s, "events_sent_total"), metric(t, s, "events_acked_total"); sent <= acked {
		t.Error("no event was counted as sent more than once despite faults")
	}
}

// TestEmulatorRetryAfter429: a 429 with Retry-After is honoured.
func TestEmulatorRetryAfter429(t *testing.T) {
	emu, srv := newEmulator(t, emulator.Config{})
	emu.FailNext(1, http.StatusTooManyRequests, "1")
	s := newTestSink(t, testConfig(srv.URL), nil)
	r := start(t, s)
	acks := newAckRecorder()
	begin := time.Now()
	r.in <- acks.batch(1, "tetragon", idEvent(1, ""))
	if err := r.finish(t); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(begin); d < 900*time.Millisecond {
		t.Errorf("delivered after %v, before Retry-After", d)
	}
	if acks.count(1) != 1 || len(emu.Events(emuRepo)) != 1 {
		t.Error("not delivered")
	}
}

// TestEmulatorTokenProblems: unknown and blocked tokens keep the data and
// make the sink unready until fixed; a deleted repository dead-letters.
func TestEmulatorTokenProblems(t *testing.T) {
	t.Run("unknown then added", func(t *testing.T) {
		emu, srv := newEmulator(t, emulator.Config{Tokens: map[string]emulator.Token{}})
		cfg := testConfig(srv.URL)
		s := newTestSink(t, cfg, nil)
		var ve *VerifyError
		if err := s.Verify(context.Background()); !errors.As(err, &ve) || ve.Kind != TokenUnknown {
			t.Fatalf("Verify = %v, want TokenUnknown", err)
		}
		r := start(t, s)
		acks := newAckRecorder()
		r.in <- acks.batch(1, "tetragon", idEvent(1, ""))
		waitFor(t, "unreadiness", func() bool {
			ok, reason := s.Ready()
			return !ok && strings.Contains(reason, "401")
		})
		emu.AddToken(testToken, emulator.Token{Name: "ingest", Repo: emuRepo})
		waitFor(t, "delivery", func() bool { return acks.count(1) == 1 })
		if ok, _ := s.Ready(); !ok || len(emu.Events(emuRepo)) != 1 {
			t.Error("not ready or not stored after the token was added")
		}
		if err := r.finish(t); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("blocked then unblocked", func(t *testing.T) {
		emu, srv := newEmulator(t, emulator.Config{})
		emu.BlockToken(testToken, true)
		s := newTestSink(t, testConfig(srv.URL), nil)
		var ve *VerifyError
		if err := s.Verify(context.Background()); !errors.As(err, &ve) || ve.Kind != TokenBlocked {
			t.Fatalf("Verify = %v, want TokenBlocked", err)
		}
		r := start(t, s)
		acks := newAckRecorder()
		r.in <- acks.batch(1, "tetragon", idEvent(1, ""))
		waitFor(t, "unreadiness", func() bool {
			ok, reason := s.Ready()
			return !ok && strings.Contains(reason, "403")
		})
		if acks.count(1) != 0 {
			t.Fatal("acknowledged while the token is blocked")
		}
		emu.BlockToken(testToken, false)
		waitFor(t, "delivery", func() bool { return acks.count(1) == 1 })
		if err := r.finish(t); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("repository deleted", func(t *testing.T) {
		emu, srv := newEmulator(t, emulator.Config{})
		emu.DeleteRepo(emuRepo)
		cfg := testConfig(srv.URL)
		cfg.DeadLetterPath = filepath.Join(t.TempDir(), "dead.ndjson")
		s := newTestSink(t, cfg, nil)
		r := start(t, s)
		acks := newAckRecorder()
		r.in <- acks.batch(1, "tetragon", idEvent(1, ""), idEvent(2, ""))
		if err := r.finish(t); err != nil {
			t.Fatal(err)
		}
		lines := readDeadLetters(t, cfg.DeadLetterPath)
		if acks.count(1) != 1 || len(lines) != 2 || string(lines[0]["status"]) != "422" {
			t.Errorf("acked %d, dead letters %v", acks.count(1), lines)
		}
		if n := len(emu.Requests()); n != 1 {
			t.Errorf("%d requests: a 422 must not be bisected", n)
		}
	})
}

// TestEmulatorBodyLimit: requests over the receiver's decoded size limit are
// split until they fit; an event over the limit alone is dead-lettered.
func TestEmulatorBodyLimit(t *testing.T) {
	emu, srv := newEmulator(t, emulator.Config{MaxBodyBytes: 40 << 10})
	cfg := testConfig(srv.URL)
	cfg.MaxBytes = 1 << 20 // larger than the receiver takes
	cfg.Linger = time.Hour
	cfg.DeadLetterPath = filepath.Join(t.TempDir(), "dead.ndjson")
	s := newTestSink(t, cfg, nil)
	r := start(t, s)
	acks := newAckRecorder()
	lines := genTetragon(t, 100, 5)
	huge := []byte(fmt.Sprintf(`{"process_exec":{"blob":"%s"},"id":999}`, strings.Repeat("x", 50<<10)))
	r.in <- acks.batch(1, "tetragon", append(lines[:50:50], huge)...)
	r.in <- acks.batch(2, "tetragon", lines[50:]...)
	if err := r.finish(t); err != nil {
		t.Fatal(err)
	}
	if acks.count(1) != 1 || acks.count(2) != 1 {
		t.Fatal("not every batch acknowledged")
	}
	if got := len(emu.Events(emuRepo)); got != 100 {
		t.Errorf("receiver stored %d events, want 100", got)
	}
	dead := readDeadLetters(t, cfg.DeadLetterPath)
	if len(dead) != 1 || string(dead[0]["status"]) != "413" || !strings.Contains(string(dead[0]["event"]), `"id":999`) {
		t.Errorf("dead letters: %d lines", len(dead))
	}
}

// TestEmulatorVerify: Verify passes with a good token in both formats and
// names unreachable servers.
func TestEmulatorVerify(t *testing.T) {
	_, srv := newEmulator(t, emulator.Config{})
	for _, format := range []string{FormatStructured, FormatHEC} {
		for _, comp := range []string{delivery.CompressionGzip, delivery.CompressionNone} {
			cfg := testConfig(srv.URL)
			cfg.Format, cfg.Compression = format, comp
			if err := Verify(context.Background(), cfg); err != nil {
				t.Errorf("%s/%s: Verify = %v", format, comp, err)
			}
		}
	}
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	var ve *VerifyError
	err := Verify(context.Background(), testConfig(dead.URL))
	if !errors.As(err, &ve) || ve.Kind != Unreachable || !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("Verify against a closed port = %v", err)
	}
}
