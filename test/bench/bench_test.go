// Package bench measures siemship end to end: the real agent binary reads a
// file set of realistic ~2 KB Tetragon events and ships them with gzip to
// strict receivers on loopback, one row per source→sink combination. In the
// same run it measures the unavoidable part — reading the same bytes and
// gzip-compressing them at the same level — so results on a noisy machine
// compare as ratios.
//
//	make bench   (go test -run '^$' -bench BenchmarkEndToEnd -benchtime 1x ./test/bench/)
package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	falconemu "github.com/siemship/siemship/internal/emulators/falcon"
	"github.com/siemship/siemship/internal/emulators/httpingest"
	emulator "github.com/siemship/siemship/internal/emulators/logscale"
	"github.com/siemship/siemship/internal/testkit"
	"github.com/siemship/siemship/internal/tetragongen"
	"github.com/siemship/siemship/test/internal/agentproc"
)

const (
	events    = 100_000
	fileBytes = 10 << 20 // Tetragon's default export-file-max-size-mb
	token     = "bench-token"
)

// row is one measured combination: the sinks section of the agent's
// configuration, the environment it needs, and how many events the
// slowest of its receivers has.
type row struct {
	name  string
	setup func(b *testing.B, ctx context.Context) (sinks string, env []string, delivered func() int64)
	// source, when set, replaces the Tetragon source: its configuration
	// section and environment.
	source func(b *testing.B, ctx context.Context) (sources string, env []string)
}

var rows = []row{
	{name: "tetragon → logscale", setup: func(b *testing.B, ctx context.Context) (string, []string, func() int64) {
		addr, n := logscaleReceiver(b, ctx)
		return fmt.Sprintf("sinks:\n  logscale:\n    url: http://%s\n", addr), []string{"SIEMSHIP_LOGSCALE_TOKEN=" + token}, n.Load
	}},
	{name: "tetragon → http", setup: func(b *testing.B, ctx context.Context) (string, []string, func() int64) {
		addr, n := httpReceiver(b, ctx)
		return fmt.Sprintf("sinks:\n  taegis:\n    type: http\n    url: http://%s/v1/bench\n", addr), []string{"SIEMSHIP_SINKS_TAEGIS_TOKEN=" + token}, n.Load
	}},
	{name: "tetragon → logscale + http", setup: func(b *testing.B, ctx context.Context) (string, []string, func() int64) {
		la, ln := logscaleReceiver(b, ctx)
		ha, hn := httpReceiver(b, ctx)
		return fmt.Sprintf("sinks:\n  logscale:\n    url: http://%s\n  taegis:\n    type: http\n    url: http://%s/v1/bench\n", la, ha),
			[]string{"SIEMSHIP_LOGSCALE_TOKEN=" + token, "SIEMSHIP_SINKS_TAEGIS_TOKEN=" + token},
			func() int64 { return min(ln.Load(), hn.Load()) }
	}},
	{name: "falcon_stream → logscale", setup: func(b *testing.B, ctx context.Context) (string, []string, func() int64) {
		addr, n := logscaleReceiver(b, ctx)
		return fmt.Sprintf("sinks:\n  logscale:\n    url: http://%s\n", addr), []string{"SIEMSHIP_LOGSCALE_TOKEN=" + token}, n.Load
	}, source: falconSource},
}

// falconSource serves the events from the Falcon emulator, spread over
// four partitions, realistic detection and audit events of ~1 KB.
func falconSource(b *testing.B, ctx context.Context) (string, []string) {
	const parts = 4
	emu := falconemu.New(falconemu.Config{ClientID: "bench", ClientSecret: "bench-secret", Partitions: parts, Seed: 9})
	for p := range parts {
		emu.Append(p, events/parts)
	}
	ln := listen(b)
	srv := &http.Server{Handler: emu, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	go func() { <-ctx.Done(); srv.Close() }()
	return fmt.Sprintf("sources:\n  falcon:\n    type: falcon_stream\n    base_url: http://%s\n", ln.Addr()),
		[]string{"SIEMSHIP_SOURCES_FALCON_CLIENT_ID=bench", "SIEMSHIP_SOURCES_FALCON_CLIENT_SECRET=bench-secret"}
}

// result is what one row measured.
type result struct {
	name      string
	wall, cpu time.Duration
	rssMiB    float64
}

func BenchmarkEndToEnd(b *testing.B) {
	dir := b.TempDir()
	exportDir := filepath.Join(dir, "export")
	files, total := generate(b, exportDir)
	b.Logf("generated %d events, %.1f MB in %d files (avg %d B/event)", events, float64(total)/1e6, len(files), total/events)
	refCPU := reference(b, files)
	bin := agentproc.Binary(b, testkit.RepoRoot(b))

	var results []result
	for i, r := range rows {
		b.Run(r.name, func(b *testing.B) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			sinks, env, delivered := r.setup(b, ctx)
			rowDir := filepath.Join(dir, fmt.Sprintf("row%d", i))
			os.MkdirAll(rowDir, 0o755)
			sources := fmt.Sprintf("sources:\n  tetragon:\n    path: %s\n", filepath.Join(exportDir, "tetragon.log"))
			if r.source != nil {
				var senv []string
				sources, senv = r.source(b, ctx)
				env = append(env, senv...)
			}
			cfg := filepath.Join(rowDir, "siemship.yaml")
			os.WriteFile(cfg, []byte(fmt.Sprintf("state_dir: %s\nlisten: \"\"\nlog:\n  format: text\n%s%s",
				filepath.Join(rowDir, "state"), sources, sinks)), 0o600)
			res := run(b, bin, cfg, filepath.Join(rowDir, "agent.log"), env, delivered)
			res.name = r.name
			results = append(results, res)
			b.ReportMetric(float64(events)/res.cpu.Seconds(), "events/cpu-s")
			b.ReportMetric(res.cpu.Seconds()/refCPU.Seconds(), "agent/ref")
			b.ReportMetric(res.rssMiB, "peak-rss-MiB")
		})
	}

	perM := func(d time.Duration) float64 { return d.Seconds() / events * 1e6 }
	fmt.Printf("\nsiemship end to end: %d Tetragon events of %d B, gzip level 1, strict receivers on loopback\n", events, total/events)
	fmt.Printf("reference (read + gzip the same bytes, 4 MiB chunks): %.2f CPU-s per million events\n\n", perM(refCPU))
	fmt.Printf("%-32s %12s %14s %10s %10s %13s\n", "row", "events/s", "events/cpu-s", "cpu-s/M", "agent/ref", "peak RSS MiB")
	for _, r := range results {
		fmt.Printf("%-32s %12.0f %14.0f %10.2f %9.2f× %13.1f\n", r.name, float64(events)/r.wall.Seconds(),
			float64(events)/r.cpu.Seconds(), perM(r.cpu), r.cpu.Seconds()/refCPU.Seconds(), r.rssMiB)
	}
	if len(results) == len(rows) {
		fmt.Printf("\ntwo sinks / one sink agent CPU: %.2f×   (target ≤ 2.1×)\n", results[2].cpu.Seconds()/results[0].cpu.Seconds())
	}
	fmt.Printf("targets: agent/ref ≤ 1.25× (today's agent ~1.9×), peak RSS ≤ 48 MiB\n")
}

// run starts the agent on cfg and waits until delivered reaches events.
func run(b *testing.B, bin, cfg, logPath string, env []string, delivered func() int64) result {
	start := time.Now()
	p := agentproc.Start(b, bin, cfg, logPath, append(env, "GOMAXPROCS=2", "SIEMSHIP_MEMORY_LIMIT="+os.Getenv("BENCH_MEMORY_LIMIT"))...)
	for delivered() < events {
		if exited, err := p.Exited(); exited {
			b.Fatalf("agent exited: %v", err)
		}
		if time.Since(start) > 10*time.Minute {
			b.Fatalf("only %d of %d events after 10 minutes", delivered(), events)
		}
		time.Sleep(5 * time.Millisecond)
	}
	wall := time.Since(start)
	p.Terminate(b, time.Minute)
	ru := p.Usage()
	return result{wall: wall, cpu: time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), rssMiB: float64(ru.Maxrss) / 1024}
}

func logscaleReceiver(b *testing.B, ctx context.Context) (string, *atomic.Int64) {
	var n atomic.Int64
	recv := emulator.New(emulator.Config{
		Tokens:  map[string]emulator.Token{token: {Name: "bench", Repo: "tetragon"}},
		Discard: true,
		OnEvent: func(emulator.StoredEvent) { n.Add(1) },
	})
	ln := listen(b)
	go recv.Serve(ctx, ln)
	return ln.Addr().String(), &n
}

func httpReceiver(b *testing.B, ctx context.Context) (string, *atomic.Int64) {
	var n atomic.Int64
	recv := httpingest.New(httpingest.Config{Keys: []string{token}, Path: "/v1/bench", MaxBodyBytes: 32 << 20, Discard: true,
		OnEvent: func([]byte) { n.Add(1) }})
	ln := listen(b)
	srv := &http.Server{Handler: recv, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	go func() { <-ctx.Done(); srv.Close() }()
	return ln.Addr().String(), &n
}

func listen(b *testing.B) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	return ln
}

// generate writes the events as Tetragon would: 10 MB files, backups named
// by rotation time, the newest as tetragon.log.
func generate(b *testing.B, dir string) ([]string, int) {
	os.MkdirAll(dir, 0o755)
	g := tetragongen.New(7, "bench-worker-1")
	var files []string
	var cur *os.File
	size, total := 0, 0
	t0 := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	open := func() {
		name := filepath.Join(dir, "tetragon-"+t0.Add(time.Duration(len(files))*time.Minute).Format("2006-01-02T15-04-05.000")+".log")
		f, err := os.Create(name)
		if err != nil {
			b.Fatal(err)
		}
		cur, size = f, 0
		files = append(files, name)
	}
	open()
	var line []byte
	for seq := range events {
		line = append(g.Line(line[:0], seq), '\n')
		if size+len(line) > fileBytes {
			cur.Close()
			open()
		}
		cur.Write(line)
		size += len(line)
		total += len(line)
	}
	cur.Close()
	live := filepath.Join(dir, "tetragon.log")
	if err := os.Rename(files[len(files)-1], live); err != nil {
		b.Fatal(err)
	}
	files[len(files)-1] = live
	return files, total
}

// reference reads the files and gzips them in 4 MiB chunks at level 1,
// returning the CPU time it took.
func reference(b *testing.B, files []string) time.Duration {
	before := cpuTime()
	buf := make([]byte, 4<<20)
	zw, _ := gzip.NewWriterLevel(io.Discard, 1)
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			b.Fatal(err)
		}
		for {
			n, err := io.ReadFull(f, buf)
			if n > 0 {
				zw.Reset(io.Discard)
				zw.Write(buf[:n])
				zw.Close()
			}
			if err != nil {
				break
			}
		}
		f.Close()
	}
	return cpuTime() - before
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
