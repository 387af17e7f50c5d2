// Package bench measures siemship end to end: the real agent binary reads a
// file set of realistic ~2 KB Tetragon events and ships them with gzip to the
// strict receiver on loopback. In the same run it measures the unavoidable
// part — reading the same bytes and gzip-compressing them at the same level —
// so results on a noisy machine compare as a ratio.
//
//	make bench   (go test -run '^$' -bench BenchmarkEndToEnd -benchtime 1x ./test/bench/)
package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

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

func BenchmarkEndToEnd(b *testing.B) {
	dir := b.TempDir()
	exportDir := filepath.Join(dir, "export")
	files, total := generate(b, exportDir)
	b.Logf("generated %d events, %.1f MB in %d files (avg %d B/event)", events, float64(total)/1e6, len(files), total/events)

	refCPU := reference(b, files)
	bin := agentproc.Binary(b, testkit.RepoRoot(b))

	var received atomic.Int64
	recv := emulator.New(emulator.Config{
		Tokens:  map[string]emulator.Token{token: {Name: "bench", Repo: "tetragon"}},
		Discard: true,
		OnEvent: func(emulator.StoredEvent) { received.Add(1) },
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go recv.Serve(ctx, ln)

	cfg := filepath.Join(dir, "siemship.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("state_dir: %s\nlisten: \"\"\nlog:\n  format: text\nsources:\n  tetragon:\n    path: %s\nsinks:\n  logscale:\n    url: http://%s\n",
		filepath.Join(dir, "state"), filepath.Join(exportDir, "tetragon.log"), ln.Addr())), 0o600)

	b.ResetTimer()
	start := time.Now()
	p := agentproc.Start(b, bin, cfg, filepath.Join(dir, "agent.log"), "SIEMSHIP_LOGSCALE_TOKEN="+token, "GOMAXPROCS=2", "SIEMSHIP_MEMORY_LIMIT="+os.Getenv("BENCH_MEMORY_LIMIT"))
	for received.Load() < events {
		if exited, err := p.Exited(); exited {
			b.Fatalf("agent exited: %v", err)
		}
		if time.Since(start) > 10*time.Minute {
			b.Fatalf("only %d of %d events after 10 minutes", received.Load(), events)
		}
		time.Sleep(5 * time.Millisecond)
	}
	wall := time.Since(start)
	p.Terminate(b, time.Minute)
	b.StopTimer()

	ru := p.Usage()
	agentCPU := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	rssMiB := float64(ru.Maxrss) / 1024
	perM := func(d time.Duration) float64 { return d.Seconds() / events * 1e6 }
	b.ReportMetric(float64(events)/wall.Seconds(), "events/s")
	b.ReportMetric(float64(events)/agentCPU.Seconds(), "events/cpu-s")
	b.ReportMetric(perM(agentCPU), "agent-cpu-s/Mevents")
	b.ReportMetric(perM(refCPU), "ref-cpu-s/Mevents")
	b.ReportMetric(agentCPU.Seconds()/refCPU.Seconds(), "agent/ref")
	b.ReportMetric(rssMiB, "peak-rss-MiB")
	fmt.Printf("\nsiemship end to end: %d events of %d B, gzip level 1, strict receiver on loopback\n", events, total/events)
	fmt.Printf("  wall %.2fs → %.0f events/s\n", wall.Seconds(), float64(events)/wall.Seconds())
	fmt.Printf("  agent CPU %.2fs → %.0f events per CPU-second, %.2f CPU-s per million events\n", agentCPU.Seconds(), float64(events)/agentCPU.Seconds(), perM(agentCPU))
	fmt.Printf("  reference (read + gzip the same bytes, 4 MiB chunks): %.2f CPU-s per million events\n", perM(refCPU))
	fmt.Printf("  agent / reference CPU: %.2f×   (target ≤ 2×)\n", agentCPU.Seconds()/refCPU.Seconds())
	fmt.Printf("  agent peak RSS: %.1f MiB   (target ≤ 64 MiB)\n", rssMiB)
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
