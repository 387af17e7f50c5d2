// Package demo runs siemship end to end on one machine with no LogScale
// account: a local LogScale-compatible receiver, a Tetragon-like writer that
// rotates its file exactly as Tetragon does (lumberjack), and the real agent
// in between. It prints progress and a final account of every event.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"gopkg.in/natefinch/lumberjack.v2"

	"github.com/siemship/siemship/internal/agent"
	"github.com/siemship/siemship/internal/config"
	emulator "github.com/siemship/siemship/internal/emulators/logscale"
	"github.com/siemship/siemship/internal/sources/tetragon"
	"github.com/siemship/siemship/internal/tetragongen"
)

// Options size the demo.
type Options struct {
	Events    int     // events to generate
	Rate      int     // events per second
	RotateKiB int     // rotate the file after this many KiB (Tetragon: export-file-max-size-mb)
	Backups   int     // backups kept (Tetragon: export-file-max-backups)
	Compress  bool    // gzip backups (Tetragon: export-file-compress)
	Faults    float64 // fraction of requests the receiver fails (503, 429, resets …)
	Dir       string  // work directory; empty: a temporary one, removed afterwards
	Verbose   bool    // show the agent's own log
}

const token = "demo-ingest-token"

// Run executes the demo and reports whether every event arrived.
func Run(ctx context.Context, o Options, w io.Writer) error {
	dir := o.Dir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "siemship-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	exportDir := filepath.Join(dir, "tetragon")
	if err := os.MkdirAll(exportDir, 0o755); err != nil {
		return err
	}

	rx := newReceiver(o.Events)
	recv := emulator.New(emulator.Config{
		Tokens:  map[string]emulator.Token{token: {Name: "demo", Repo: "tetragon"}},
		OnEvent: rx.onEvent,
	})
	if o.Faults > 0 {
		recv.SetFaults(emulator.Faults{Rate: o.Faults, Seed: 1, SlowDelay: 300 * time.Millisecond})
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	recvCtx, stopRecv := context.WithCancel(context.Background())
	recvDone := make(chan error, 1)
	go func() { recvDone <- recv.Serve(recvCtx, ln) }()
	defer func() {
		stopRecv()
		if err := <-recvDone; err != nil {
			fmt.Fprintln(w, "receiver:", err)
		}
	}()

	cfg, err := agentConfig(dir, exportDir, "http://"+ln.Addr().String())
	if err != nil {
		return err
	}
	logOut := io.Discard
	if o.Verbose {
		logOut = os.Stderr
	}
	a, err := agent.New(cfg, agent.NewLogger(cfg.Log, logOut))
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "siemship demo: %d Tetragon events at %d/s into %s (rotating every %d KiB, %d backups, gzip %v)\n",
		o.Events, o.Rate, exportDir, o.RotateKiB, o.Backups, o.Compress)
	fmt.Fprintf(w, "receiver: %s (LogScale-compatible, strict); agent metrics: http://%s/metrics\n", ln.Addr(), a.Addr())
	if o.Faults > 0 {
		fmt.Fprintf(w, "receiver fails %.0f%% of requests (503, 429, 500, slow answers, connection resets)\n", o.Faults*100)
	}

	agentCtx, stopAgent := context.WithCancel(context.Background())
	var agentErr error
	var wg sync.WaitGroup
	wg.Go(func() { agentErr = a.Run(agentCtx) })

	wr := &writer{dir: exportDir, opts: o}
	writeErr := make(chan error, 1)
	go func() { writeErr <- wr.run(ctx) }()

	err = progress(ctx, w, o, wr, rx, a, writeErr)
	stopAgent()
	wg.Wait()
	st := a.Tetragon("tetragon").Stats()
	fmt.Fprintf(w, "\nsummary\n  written by the Tetragon-like writer: %d events, %d rotations\n", wr.written.Load(), wr.rotations.Load())
	fmt.Fprintf(w, "  read by siemship:                   %d\n  acknowledged by the receiver:       %d\n", st.EventsRead, st.EventsAcked)
	fmt.Fprintf(w, "  stored by the receiver:             %d distinct (%d duplicates)\n", rx.distinct.Load(), rx.dups.Load())
	fmt.Fprintf(w, "  reported lost (deleted before read): %d bytes in %d incidents\n", st.LostBytes, st.DataLosses)
	missing := wr.written.Load() - rx.distinct.Load()
	fmt.Fprintf(w, "  missing:                            %d\n", missing)
	return errors.Join(err, agentErr, checkMissing(missing, st))
}

func checkMissing(missing int64, st tetragon.Stats) error {
	if missing != 0 && st.DataLosses == 0 {
		return fmt.Errorf("%d events missing without a reported loss", missing)
	}
	return nil
}

func agentConfig(dir, exportDir, url string) (*config.Config, error) {
	path := filepath.Join(dir, "siemship.yaml")
	body := fmt.Sprintf(`state_dir: %s
listen: 127.0.0.1:0
status_interval: 5s
shutdown_grace: 10s
log:
  format: text
sources:
  tetragon:
    path: %s
sinks:
  logscale:
    url: %s
    token_file: %s
    retry_max: 2s
`, filepath.Join(dir, "state"), filepath.Join(exportDir, "tetragon.log"), url, filepath.Join(dir, "token"))
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte(token), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		return nil, err
	}
	cfg, _, err := config.Load(path, nil)
	return cfg, err
}

// progress prints a line a second until everything written is acknowledged.
func progress(ctx context.Context, w io.Writer, o Options, wr *writer, rx *receiver, a *agent.Agent, writeErr <-chan error) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	writing := true
	var settled time.Time
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(w, "interrupted")
			return nil
		case err := <-writeErr:
			if err != nil {
				return fmt.Errorf("writer: %w", err)
			}
			writing = false
			settled = time.Now()
		case <-tick.C:
		}
		st := a.Tetragon("tetragon").Stats()
		fmt.Fprintf(w, "written %7d  read %7d  acked %7d  received %7d  rotations %4d  lag %8d B\n",
			wr.written.Load(), st.EventsRead, st.EventsAcked, rx.distinct.Load(), wr.rotations.Load(), st.LagBytes)
		if !writing && rx.distinct.Load() >= wr.written.Load() {
			return nil
		}
		if !writing && time.Since(settled) > 60*time.Second {
			return errors.New("events still missing 60 s after the writer finished")
		}
	}
}

// writer plays Tetragon: one write per line, rename+create rotation by
// lumberjack, optional gzip of backups, retention of Backups files.
type writer struct {
	dir       string
	opts      Options
	written   atomic.Int64
	rotations atomic.Int64
}

func (wr *writer) run(ctx context.Context) error {
	lj := &lumberjack.Logger{
		Filename:   filepath.Join(wr.dir, "tetragon.log"),
		MaxSize:    1 << 20, // in MB: never reached, rotation is driven below at RotateKiB
		MaxBackups: wr.opts.Backups,
		Compress:   wr.opts.Compress,
	}
	defer lj.Close()
	gen := tetragongen.New(42, "demo-worker-1")
	var line []byte
	size := 0
	interval := time.Second / time.Duration(max(1, wr.opts.Rate/100))
	tick := time.NewTicker(interval)
	defer tick.Stop()
	perTick := max(1, wr.opts.Rate/100)
	for seq := 0; seq < wr.opts.Events; {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		for i := 0; i < perTick && seq < wr.opts.Events; i++ {
			line = append(gen.Line(line[:0], seq), '\n')
			if size+len(line) > wr.opts.RotateKiB<<10 {
				if err := lj.Rotate(); err != nil {
					return err
				}
				wr.rotations.Add(1)
				size = 0
			}
			if _, err := lj.Write(line); err != nil {
				return err
			}
			size += len(line)
			seq++
			wr.written.Add(1)
		}
	}
	return nil
}

// receiver counts distinct generated events by their sequence number.
type receiver struct {
	mu       sync.Mutex
	seen     []bool
	distinct atomic.Int64
	dups     atomic.Int64
}

func newReceiver(n int) *receiver { return &receiver{seen: make([]bool, n)} }

func (r *receiver) onEvent(e emulator.StoredEvent) {
	seq, ok := tetragongen.Seq([]byte(e.Attributes))
	if !ok || seq < 0 || seq >= len(r.seen) {
		return // siemship's own events (a data loss report)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen[seq] {
		r.dups.Add(1)
		return
	}
	r.seen[seq] = true
	r.distinct.Add(1)
}
