// Package bench measures siemship end to end: the real agent binary reads a
// file set of realistic ~2 KB Tetragon events, or receives realistic
// Cloudflare Logpush records as gzip NDJSON pushes, and ships them to
// receivers on loopback — with gzip to the strict HTTP receivers, as RFC
// 3164 over TCP or RELP to a real rsyslog — one row per source→sink
// combination. In the same run it measures the unavoidable part of the HTTP
// rows — reading the same bytes
// (for Logpush: gunzipping the same bodies) and gzip-compressing them at the
// same level — so results on a noisy machine compare as ratios.
//
//	make bench   (go test -run '^$' -bench BenchmarkEndToEnd -benchtime 1x ./test/bench/)
package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"golang.org/x/sync/errgroup"

	falconemu "github.com/siemship/siemship/internal/emulators/falcon"
	"github.com/siemship/siemship/internal/emulators/httpingest"
	pusher "github.com/siemship/siemship/internal/emulators/logpush"
	emulator "github.com/siemship/siemship/internal/emulators/logscale"
	"github.com/siemship/siemship/internal/sources/falconapi"
	"github.com/siemship/siemship/internal/testenv/syslogd"
	"github.com/siemship/siemship/internal/testkit"
	"github.com/siemship/siemship/internal/tetragongen"
	"github.com/siemship/siemship/test/internal/agentproc"
)

const (
	events    = 100_000
	fileBytes = 10 << 20 // Tetragon's default export-file-max-size-mb
	token     = "bench-token"
)

// row is one measured combination: its input, the sinks section of the
// agent's configuration, the environment it needs, and how many events the
// slowest of its receivers has.
type row struct {
	name  string
	input input
	setup func(b *testing.B, ctx context.Context) (sinks string, env []string, delivered func() int64)
	// source, when set, replaces the Tetragon source: its configuration
	// section, environment and, when its emulator counts them, the API
	// calls the agent made (nil: not counted).
	source func(b *testing.B, ctx context.Context) (sources string, env []string, calls func() int)
}

// input is what a row's agent reads: the Tetragon file set, or Logpush
// pushes of the same number of records.
type input int

const (
	tetragonFiles input = iota
	logpushPushes
	// spooledBacklog: the Tetragon file set, first taken into the sink's
	// spool with the receiver refusing (not measured), then delivered by a
	// fresh agent from the spool alone.
	spooledBacklog
	// falconEvents: the row's source (the Falcon emulator's event streams
	// or API resources) replaces the Tetragon files.
	falconEvents
)

// spoolSink is the LogScale sink with a disk spool in always mode: every
// batch written, fsynced and read back.
const spoolSink = "sinks:\n  logscale:\n    url: http://%s\n    spool:\n      enabled: true\n      mode: always\n"

var rows = []row{
	{name: "tetragon → logscale", input: tetragonFiles, setup: func(b *testing.B, ctx context.Context) (string, []string, func() int64) {
		addr, n := logscaleReceiver(b, ctx)
		return fmt.Sprintf("sinks:\n  logscale:\n    url: http://%s\n", addr), []string{"SIEMSHIP_LOGSCALE_TOKEN=" + token}, n.Load
	}},
	{name: "tetragon → http", input: tetragonFiles, setup: func(b *testing.B, ctx context.Context) (string, []string, func() int64) {
		addr, n := httpReceiver(b, ctx)
		return fmt.Sprintf("sinks:\n  taegis:\n    type: http\n    url: http://%s/v1/bench\n", addr), []string{"SIEMSHIP_SINKS_TAEGIS_TOKEN=" + token}, n.Load
	}},
	{name: "tetragon → logscale + http", input: tetragonFiles, setup: func(b *testing.B, ctx context.Context) (string, []string, func() int64) {
		la, ln := logscaleReceiver(b, ctx)
		ha, hn := httpReceiver(b, ctx)
		return fmt.Sprintf("sinks:\n  logscale:\n    url: http://%s\n  taegis:\n    type: http\n    url: http://%s/v1/bench\n", la, ha),
			[]string{"SIEMSHIP_LOGSCALE_TOKEN=" + token, "SIEMSHIP_SINKS_TAEGIS_TOKEN=" + token},
			func() int64 { return min(ln.Load(), hn.Load()) }
	}},
	// rsyslog shares the cores like the in-process receivers; what it
	// wrote is counted from its output file (Count reads only what was
	// appended), so a row ends when every event is on rsyslog's disk.
	{name: "tetragon → syslog tcp", input: tetragonFiles, setup: func(b *testing.B, ctx context.Context) (string, []string, func() int64) {
		rcv := syslogd.Start(b, syslogd.Options{Kind: syslogd.RsyslogTCP})
		return fmt.Sprintf("sinks:\n  rsyslog:\n    type: syslog\n    address: %s\n    transport: tcp\n", rcv.Addr), nil,
			func() int64 { return int64(rcv.Count()) }
	}},
	{name: "tetragon → syslog relp", input: tetragonFiles, setup: func(b *testing.B, ctx context.Context) (string, []string, func() int64) {
		rcv := syslogd.Start(b, syslogd.Options{Kind: syslogd.RsyslogRELP})
		return fmt.Sprintf("sinks:\n  rsyslog:\n    type: syslog\n    address: %s\n    transport: relp\n", rcv.Addr), nil,
			func() int64 { return int64(rcv.Count()) }
	}},
	{name: "tetragon → logscale (spool always)", input: tetragonFiles, setup: func(b *testing.B, ctx context.Context) (string, []string, func() int64) {
		addr, n := logscaleReceiver(b, ctx)
		return fmt.Sprintf(spoolSink, addr), []string{"SIEMSHIP_LOGSCALE_TOKEN=" + token}, n.Load
	}},
	{name: "spool backlog → logscale (drain)", input: spooledBacklog, setup: func(b *testing.B, ctx context.Context) (string, []string, func() int64) {
		addr, n := logscaleReceiver(b, ctx)
		return fmt.Sprintf(spoolSink, addr), []string{"SIEMSHIP_LOGSCALE_TOKEN=" + token}, n.Load
	}},
	{name: "logpush → logscale", input: logpushPushes, setup: func(b *testing.B, ctx context.Context) (string, []string, func() int64) {
		addr, n := logscaleReceiver(b, ctx)
		return fmt.Sprintf("sinks:\n  logscale:\n    url: http://%s\n", addr), []string{"SIEMSHIP_LOGSCALE_TOKEN=" + token}, n.Load
	}},
	{name: "falcon_stream → logscale", input: falconEvents, setup: func(b *testing.B, ctx context.Context) (string, []string, func() int64) {
		addr, n := logscaleReceiver(b, ctx)
		return fmt.Sprintf("sinks:\n  logscale:\n    url: http://%s\n", addr), []string{"SIEMSHIP_LOGSCALE_TOKEN=" + token}, n.Load
	}, source: falconSource},
	// Every record arrives once: the row ends when the receiver has seen
	// each of them (duplicates, if any, are logged and do not count).
	{name: "falcon_api → logscale", input: falconEvents, setup: func(b *testing.B, ctx context.Context) (string, []string, func() int64) {
		addr, n := uniqueLogscaleReceiver(b, ctx)
		return fmt.Sprintf("sinks:\n  logscale:\n    url: http://%s\n", addr), []string{"SIEMSHIP_LOGSCALE_TOKEN=" + token}, n
	}, source: falconAPISource},
}

// falconSource serves the events from the Falcon emulator, spread over
// four partitions, realistic detection and audit events of ~1 KB.
func falconSource(b *testing.B, ctx context.Context) (string, []string, func() int) {
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
		[]string{"SIEMSHIP_SOURCES_FALCON_CLIENT_ID=bench", "SIEMSHIP_SOURCES_FALCON_CLIENT_SECRET=bench-secret"}, nil
}

// falconAPITies is how many records share one timestamp: the source pages
// past ties at its high-water mark (the ids it already delivered there).
const falconAPITies = 5

// falconAPISource fills the Falcon emulator's resources with the records
// its own generators make (~320 B of JSON on average), events in all, spread
// evenly over the source's default resources (hosts, alerts,
// vulnerabilities, filevantage), falconAPITies per millisecond timestamp,
// a few hours old (inside the default start_from of 24h). The agent polls
// every default resource with the source's defaults, so each endpoint's
// page limits; the emulator counts every request it answers.
func falconAPISource(b *testing.B, ctx context.Context) (string, []string, func() int) {
	emu := falconemu.New(falconemu.Config{ClientID: "bench", ClientSecret: "bench-secret", Seed: 9})
	resources := falconapi.DefaultConfig().Resources
	per := events / len(resources)
	start := time.Now().Add(-3 * time.Hour)
	for _, r := range resources {
		for i := 0; i < per; i += falconAPITies {
			emu.AddRecords(r, min(falconAPITies, per-i), start.Add(time.Duration(i)*time.Millisecond))
		}
	}
	if got := len(resources) * per; got != events {
		b.Fatalf("%d records for %d resources, want %d", got, len(resources), events)
	}
	ln := listen(b)
	srv := &http.Server{Handler: emu, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	go func() { <-ctx.Done(); srv.Close() }()
	b.Cleanup(func() {
		st := emu.ResourceStats()
		var parts []string
		for _, r := range resources {
			parts = append(parts, fmt.Sprintf("%s %d+%d", r, st.Queries[r], st.Entities[r]))
		}
		b.Logf("falcon_api: %d requests in all; queries+details by resource: %s", emu.Stats().Requests, strings.Join(parts, ", "))
	})
	return fmt.Sprintf("sources:\n  falcon_api:\n    type: falcon_api\n    base_url: http://%s\n", ln.Addr()),
		[]string{"SIEMSHIP_SOURCES_FALCON_API_CLIENT_ID=bench", "SIEMSHIP_SOURCES_FALCON_API_CLIENT_SECRET=bench-secret"},
		func() int { return emu.Stats().Requests }
}

// result is what one row measured, and the reference it compares to.
type result struct {
	name           string
	wall, cpu, ref time.Duration
	rssMiB         float64
	calls          int // API calls the source made, when its emulator counts them
}

func BenchmarkEndToEnd(b *testing.B) {
	dir := b.TempDir()
	exportDir := filepath.Join(dir, "export")
	files, total := generate(b, exportDir)
	b.Logf("generated %d events, %.1f MB in %d files (avg %d B/event)", events, float64(total)/1e6, len(files), total/events)
	refCPU := reference(b, files)
	bodies := generatePushes(b)
	b.Logf("generated %d Logpush records, %.1f MB in %d gzip pushes of %.1f MB (%.1f MB uncompressed)",
		events, float64(bodies.wire)/1e6, len(bodies.gz), float64(bodies.wire)/1e6/float64(len(bodies.gz)), float64(bodies.raw)/1e6)
	lpRefCPU := logpushReference(b, bodies)
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
			var calls func() int
			if r.source != nil {
				var senv []string
				sources, senv, calls = r.source(b, ctx)
				env = append(env, senv...)
			}
			cfg := filepath.Join(rowDir, "siemship.yaml")
			var res result
			writeCfg := func(sinks string) {
				os.WriteFile(cfg, []byte(fmt.Sprintf("state_dir: %s\nlisten: \"\"\nlog:\n  format: text\nsources:\n  tetragon:\n    path: %s\n%s",
					filepath.Join(rowDir, "state"), filepath.Join(exportDir, "tetragon.log"), sinks)), 0o600)
			}
			switch r.input {
			case tetragonFiles, spooledBacklog:
				if r.input == spooledBacklog {
					closed := listen(b) // a port that refuses: everything is spooled
					closed.Close()
					writeCfg(fmt.Sprintf(spoolSink, closed.Addr()))
					fill(b, bin, cfg, filepath.Join(rowDir, "state"), filepath.Join(exportDir, "tetragon.log"), filepath.Join(rowDir, "fill.log"), env)
				}
				writeCfg(sinks)
				if limit := os.Getenv("BENCH_MEMORY_LIMIT"); limit != "" {
					env = append(env, "SIEMSHIP_MEMORY_LIMIT="+limit)
				}
				res = run(b, bin, cfg, filepath.Join(rowDir, "agent.log"), env, delivered, nil)
				res.ref = refCPU
			case falconEvents:
				os.WriteFile(cfg, []byte(fmt.Sprintf("state_dir: %s\nlisten: \"\"\nlog:\n  format: text\n%s%s",
					filepath.Join(rowDir, "state"), sources, sinks)), 0o600)
				res = run(b, bin, cfg, filepath.Join(rowDir, "agent.log"), env, delivered, nil)
				res.ref = refCPU
			case logpushPushes:
				addr := freeAddr(b)
				secret := filepath.Join(rowDir, "secret")
				os.WriteFile(secret, []byte(token+"\n"), 0o600)
				// A push is held compressed in buffer_bytes until delivered
				// (see the warning in internal/config), hence 256MiB, and so
				// no memory_limit below twice that.
				os.WriteFile(cfg, []byte(fmt.Sprintf("state_dir: %s\nlisten: \"\"\nlog:\n  format: text\nbuffer_bytes: 256MiB\nmemory_limit: 0\n"+
					"sources:\n  cloudflare:\n    type: logpush\n    listen: %s\n    allow_plain_http: true\n    secret_file: %s\n%s",
					filepath.Join(rowDir, "state"), addr, secret, sinks)), 0o600)
				res = run(b, bin, cfg, filepath.Join(rowDir, "agent.log"), env, delivered, func(p *agentproc.Proc) {
					p.WaitForLog(b, "serving Logpush", time.Minute)
					pushAll(b, ctx, "http://"+addr+"/logpush?tags=dataset:"+pusher.HTTPRequests, bodies)
				})
				res.ref = lpRefCPU
			}
			res.name = r.name
			if calls != nil {
				res.calls = calls()
				b.ReportMetric(float64(res.calls)*1000/events, "calls/1000-records")
			}
			results = append(results, res)
			b.ReportMetric(float64(events)/res.cpu.Seconds(), "events/cpu-s")
			b.ReportMetric(res.cpu.Seconds()/res.ref.Seconds(), "agent/ref")
			b.ReportMetric(res.rssMiB, "peak-rss-MiB")
		})
	}

	perM := func(d time.Duration) float64 { return d.Seconds() / events * 1e6 }
	fmt.Printf("\nsiemship end to end: %d Tetragon events of %d B, gzip level 1, strict receivers on loopback\n", events, total/events)
	fmt.Printf("reference (read + gzip the same bytes, 4 MiB chunks): %.2f CPU-s per million events\n", perM(refCPU))
	fmt.Printf("logpush rows: %d records of %d B (HTTP requests) in %d gzip NDJSON pushes; reference (gunzip the pushes + gzip the same bytes, 4 MiB chunks): %.2f CPU-s per million records\n\n",
		events, bodies.raw/events, len(bodies.gz), perM(lpRefCPU))
	fmt.Printf("%-32s %12s %14s %10s %10s %13s\n", "row", "events/s", "events/cpu-s", "cpu-s/M", "agent/ref", "peak RSS MiB")
	for _, r := range results {
		fmt.Printf("%-32s %12.0f %14.0f %10.2f %9.2f× %13.1f\n", r.name, float64(events)/r.wall.Seconds(),
			float64(events)/r.cpu.Seconds(), perM(r.cpu), r.cpu.Seconds()/r.ref.Seconds(), r.rssMiB)
	}
	byName := map[string]result{}
	for _, r := range results {
		byName[r.name] = r
	}
	if one, two := byName["tetragon → logscale"], byName["tetragon → logscale + http"]; one.cpu > 0 && two.cpu > 0 {
		fmt.Printf("\ntwo sinks / one sink agent CPU: %.2f×   (target ≤ 2.1×)\n", two.cpu.Seconds()/one.cpu.Seconds())
	}
	if none, always := byName["tetragon → logscale"], byName["tetragon → logscale (spool always)"]; none.cpu > 0 && always.cpu > 0 {
		fmt.Printf("spool always / no spool agent CPU: %.2f×\n", always.cpu.Seconds()/none.cpu.Seconds())
	}
	if drain := byName["spool backlog → logscale (drain)"]; drain.wall > 0 {
		fmt.Printf("draining a spooled backlog: %.0f MB/s of events\n", float64(total)/1e6/drain.wall.Seconds())
	}
	for _, r := range results {
		if r.calls > 0 {
			fmt.Printf("%s: %.2f API calls per 1,000 records (%d calls, token included)\n", r.name, float64(r.calls)*1000/events, r.calls)
		}
	}
	fmt.Printf("syslog rows: RFC 3164, JSON body, uncompressed, to a real rsyslog (imtcp / imrelp) writing every message to a file; a row ends when all are in it; agent/ref still compares to read + gzip\n")
	fmt.Printf("targets: agent/ref ≤ 1.25× (today's agent ~1.9×), peak RSS ≤ 48 MiB\n")
}

// run starts the agent on cfg, calls feed (if any) to give it its input,
// and waits until delivered reaches events.
func run(b *testing.B, bin, cfg, logPath string, env []string, delivered func() int64, feed func(*agentproc.Proc)) result {
	start := time.Now()
	p := agentproc.Start(b, bin, cfg, logPath, append(env, "GOMAXPROCS=2")...)
	if feed != nil {
		feed(p)
	}
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
	// The agent's own high-water mark, read while it runs: the Maxrss of
	// its rusage is never below this test process's peak (see PeakRSS).
	peak := p.PeakRSS(b)
	p.Terminate(b, time.Minute)
	ru := p.Usage()
	if inherited := ru.Maxrss; inherited > peak*11/10 {
		b.Logf("rusage Maxrss %.1f MiB, the agent's own peak %.1f MiB: the difference is this test process's, inherited through vfork", float64(inherited)/1024, float64(peak)/1024)
	}
	return result{wall: wall, cpu: time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), rssMiB: float64(peak) / 1024}
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

// uniqueLogscaleReceiver is logscaleReceiver counting distinct events
// (by their attributes, the record byte for byte); repeats are logged.
func uniqueLogscaleReceiver(b *testing.B, ctx context.Context) (string, func() int64) {
	var (
		mu      sync.Mutex
		seen    = make(map[string]bool, events)
		repeats int
		size    int
	)
	recv := emulator.New(emulator.Config{
		Tokens:  map[string]emulator.Token{token: {Name: "bench", Repo: "falcon"}},
		Discard: true,
		OnEvent: func(e emulator.StoredEvent) {
			mu.Lock()
			defer mu.Unlock()
			if seen[e.Attributes] {
				repeats++
				return
			}
			seen[strings.Clone(e.Attributes)] = true
			size += len(e.Attributes)
		},
	})
	ln := listen(b)
	go recv.Serve(ctx, ln)
	b.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		b.Logf("%d distinct events (avg %d B), %d repeated", len(seen), size/max(len(seen), 1), repeats)
	})
	return ln.Addr().String(), func() int64 {
		mu.Lock()
		defer mu.Unlock()
		return int64(len(seen))
	}
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

// pushes are the Logpush rows' input: gzip NDJSON bodies of realistic
// http_requests records from the pusher emulator's generator.
type pushes struct {
	gz        [][]byte
	records   []int // records per body
	raw, wire int   // total bytes uncompressed and compressed
}

// recordsPerPush: Cloudflare closes an upload at max_upload_records
// (default 100k), max_upload_bytes or max_upload_interval_seconds (30 s),
// so a busy zone's pushes hold thousands of records; 5,000 gives the
// agent 20 pushes, several in flight at once.
const recordsPerPush = 5000

func generatePushes(b *testing.B) pushes {
	gen, err := pusher.NewGenerator(pusher.HTTPRequests, pusher.UnixNano, time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC), 7)
	if err != nil {
		b.Fatal(err)
	}
	var ps pushes
	var nd []byte
	for left := events; left > 0; left -= recordsPerPush {
		n := min(left, recordsPerPush)
		nd = nd[:0]
		for range n {
			nd = append(nd, gen.Next()...)
			nd = append(nd, '\n')
		}
		gz := pusher.Gzip(nd)
		ps.gz, ps.records = append(ps.gz, gz), append(ps.records, n)
		ps.raw += len(nd)
		ps.wire += len(gz)
	}
	return ps
}

// logpushReference gunzips the pushes and gzips the decompressed bytes in
// 4 MiB chunks at level 1, returning the CPU time it took: the least any
// receiver that forwards Logpush records compressed must spend.
func logpushReference(b *testing.B, ps pushes) time.Duration {
	before := cpuTime()
	buf := make([]byte, 4<<20)
	zw, _ := gzip.NewWriterLevel(io.Discard, 1)
	var zr gzip.Reader
	for _, body := range ps.gz {
		if err := zr.Reset(bytes.NewReader(body)); err != nil {
			b.Fatal(err)
		}
		for {
			n, err := io.ReadFull(&zr, buf)
			if n > 0 {
				zw.Reset(io.Discard)
				zw.Write(buf[:n])
				zw.Close()
			}
			if err != nil {
				break
			}
		}
	}
	return cpuTime() - before
}

// pushAll sends the validation request, then every body, four at a time
// like parallel Logpush uploads; a push answered 429/503 (back-pressure)
// is pushed again, as Cloudflare does, after a short pause.
func pushAll(b *testing.B, ctx context.Context, dest string, ps pushes) {
	p, err := pusher.New(pusher.Config{Destination: dest + "&header_Authorization=Bearer%20" + token})
	if err != nil {
		b.Fatal(err)
	}
	if err := p.Validate(ctx); err != nil {
		b.Fatal(err)
	}
	client := &http.Client{Timeout: 5 * time.Minute}
	var retried atomic.Int64
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for _, body := range ps.gz {
		g.Go(func() error {
			for {
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, dest, bytes.NewReader(body))
				if err != nil {
					return err
				}
				req.Header.Set("Authorization", "Bearer "+token)
				req.Header.Set("Content-Encoding", "gzip")
				resp, err := client.Do(req)
				if err != nil {
					return fmt.Errorf("push: %w", err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				switch resp.StatusCode {
				case http.StatusOK:
					return nil
				case http.StatusTooManyRequests, http.StatusServiceUnavailable:
					// Back-pressure: Logpush pushes the batch again later.
					retried.Add(1)
					select {
					case <-ctx.Done():
						return ctx.Err()
					case <-time.After(100 * time.Millisecond):
					}
				default:
					return fmt.Errorf("push answered %d", resp.StatusCode)
				}
			}
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	if n := retried.Load(); n > 0 {
		b.Logf("%d pushes answered 429/503 and pushed again", n)
	}
}

func freeAddr(b *testing.B) string {
	ln := listen(b)
	defer ln.Close()
	return ln.Addr().String()
}

func fill(b *testing.B, bin, cfg, state, export, logPath string, env []string) {
	p := agentproc.Start(b, bin, cfg, logPath, env...)
	deadline := time.Now().Add(5 * time.Minute)
	for {
		data, _ := os.ReadFile(filepath.Join(state, "tetragon.json"))
		var st struct {
			Position struct {
				File   struct{ Name string }
				Offset int64
			}
		}
		fi, err := os.Stat(export)
		if json.Unmarshal(data, &st) == nil && err == nil && st.Position.File.Name == "tetragon.log" && st.Position.Offset == fi.Size() {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("the spool did not take every event within 5 minutes")
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.Terminate(b, time.Minute)
}
