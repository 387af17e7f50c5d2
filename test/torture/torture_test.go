// Package torture runs the rotation torture test: a Tetragon-like writer
// (lumberjack, small files, few backups) writes numbered lines while the real
// agent binary ships them to the strict receiver with injected faults, and is
// stopped and restarted many times with SIGTERM and SIGKILL. Then every line
// is accounted for.
package torture

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gopkg.in/natefinch/lumberjack.v2"

	"github.com/siemship/siemship/internal/emulators/faults"
	"github.com/siemship/siemship/internal/emulators/httpingest"
	emulator "github.com/siemship/siemship/internal/emulators/logscale"
	"github.com/siemship/siemship/internal/sources/tetragon"
	"github.com/siemship/siemship/internal/testkit"
	"github.com/siemship/siemship/test/internal/agentproc"
)

const (
	totalLines = 200_000
	fileBytes  = 64 << 10 // rotate at 64 KiB
	backups    = 4
	linesPerMs = 4 // writer pace: ~4k lines/s
	token      = "torture-token"
)

func TestRotationTorturePlainBackups(t *testing.T)      { torture(t, false, false) }
func TestRotationTortureCompressedBackups(t *testing.T) { torture(t, true, false) }

// Two sinks, LogScale and HTTP ingest, both with injected faults, the HTTP
// receiver down for the first sessions: every line reaches both (or is
// reported lost to both), the checkpoint never passes what either has not
// acknowledged.
func TestRotationTortureTwoSinks(t *testing.T) { torture(t, false, true) }

// In the two-sink run the HTTP receiver refuses every request (connection
// reset) for the first httpDownFor, and Tetragon keeps more backups, so that
// the outage fits in what is on disk and lines reach both sinks rather than
// being reported lost.
const (
	httpDownFor    = 2 * time.Second
	twoSinkBackups = 40
)

func torture(t *testing.T, compress, twoSinks bool) {
	bin := agentproc.Binary(t, testkit.RepoRoot(t))
	dir := testkit.KeptDir(t)
	exportDir := filepath.Join(dir, "export")
	os.MkdirAll(exportDir, 0o755)

	rec := newRecorder()
	recv := emulator.New(emulator.Config{
		Tokens:  map[string]emulator.Token{token: {Name: "torture", Repo: "tetragon"}},
		OnEvent: rec.onEvent,
	})
	recv.SetFaults(emulator.Faults{Rate: 0.12, Seed: 7, SlowDelay: 300 * time.Millisecond})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go recv.Serve(ctx, ln)

	// The second sink: a Taegis-style receiver, down at first.
	rec2 := newRecorder()
	keep := backups
	var downUntil time.Time
	extraSink, env := "", []string{"SIEMSHIP_LOGSCALE_TOKEN=" + token}
	if twoSinks {
		keep = twoSinkBackups
		recv2 := httpingest.New(httpingest.Config{Keys: []string{token}, Path: "/v1/torture", MaxBodyBytes: 32 << 20, Discard: true, OnEvent: rec2.onLine})
		recv2.Faults().Set(faults.Config{Rate: 0.12, Seed: 8, SlowDelay: 300 * time.Millisecond})
		downUntil = time.Now().Add(httpDownFor)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if time.Now().Before(downUntil) {
				faults.ResetConn(w)
				return
			}
			recv2.ServeHTTP(w, r)
		}))
		defer srv.Close()
		extraSink = fmt.Sprintf("  taegis:\n    type: http\n    url: %s/v1/torture\n    linger: 200ms\n    retry_initial: 50ms\n    retry_max: 1s\n", srv.URL)
		env = append(env, "SIEMSHIP_SINKS_TAEGIS_TOKEN="+token)
	}

	cfg := filepath.Join(dir, "siemship.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`state_dir: %s
listen: ""
shutdown_grace: 30s
status_interval: 5s
log:
  format: text
  level: debug
sources:
  tetragon:
    path: %s
    max_backups: %d
    poll_interval: 50ms
sinks:
  logscale:
    url: http://%s
    linger: 200ms
    retry_initial: 50ms
    retry_max: 1s
%s`, filepath.Join(dir, "state"), filepath.Join(exportDir, "tetragon.log"), keep, ln.Addr(), extraSink)), 0o600)

	w := &writer{dir: exportDir, compress: compress, backups: keep}
	writerDone := make(chan error, 1)
	go func() { writerDone <- w.run() }()

	logPath := filepath.Join(dir, "agent.log")
	rng := rand.New(rand.NewPCG(1, 2))
	var terms, kills int
	writing := true
	for writing || terms+kills < 20 {
		session := rec.session.Add(1)
		rec2.session.Store(session)
		if time.Now().Before(downUntil) {
			// What LogScale gets while the HTTP sink is down, the checkpoint
			// cannot cover: a later session sends it again.
			rec.excuse(session)
		}
		p := agentproc.Start(t, bin, cfg, logPath, env...)
		// A signal before the handlers are installed kills like SIGKILL;
		// SIGTERM is meant to test the graceful path, so wait for start-up.
		p.WaitForLog(t, "siemship started", time.Minute)
		time.Sleep(time.Duration(500+rng.IntN(2500)) * time.Millisecond)
		if exited, err := p.Exited(); exited {
			t.Fatalf("agent exited on its own: %v (log %s)", err, logPath)
		}
		if rng.IntN(2) == 0 {
			p.Terminate(t, 40*time.Second)
			terms++
		} else {
			p.Kill(t)
			rec.killed(rec.session.Load())
			rec2.killed(rec.session.Load())
			kills++
			time.Sleep(50 * time.Millisecond) // let the receiver drop requests of the dead process
		}
		select {
		case err := <-writerDone:
			if err != nil {
				t.Fatal(err)
			}
			writing = false
		default:
		}
	}
	if terms < 5 || kills < 5 {
		t.Fatalf("only %d SIGTERM and %d SIGKILL restarts", terms, kills)
	}

	// A last run until every line is either delivered or reported lost.
	rec2.session.Store(rec.session.Add(1))
	p := agentproc.Start(t, bin, cfg, logPath, env...)
	// Everything may be delivered already: the SIGTERM below must still
	// find the signal handler installed.
	p.WaitForLog(t, "siemship started", time.Minute)
	deadline := time.Now().Add(3 * time.Minute)
	prev, progressed := -1, time.Now()
	for {
		lost := w.lostLines(t, rec.lossReports())
		missing := rec.missing(lost)
		if twoSinks {
			missing = append(missing, rec2.missing(w.lostLines(t, rec2.lossReports()))...)
		}
		if len(missing) == 0 {
			break
		}
		if len(missing) != prev {
			prev, progressed = len(missing), time.Now()
		}
		if time.Now().After(deadline) || time.Since(progressed) > 30*time.Second {
			w.explain(t, rec, missing)
			t.Fatalf("%d lines neither delivered nor reported lost, first %v (agent log %s)", len(missing), head(missing), logPath)
		}
		time.Sleep(200 * time.Millisecond)
	}
	p.Terminate(t, 40*time.Second)

	lost := w.lostLines(t, rec.lossReports())
	rec.check(t, lost)
	if twoSinks {
		lost2 := w.lostLines(t, rec2.lossReports())
		rec2.check(t, lost2)
		if len(lost2) != len(lost) {
			t.Errorf("loss reports cover %d lines at LogScale and %d at the HTTP sink: both must hear of every loss", len(lost), len(lost2))
		}
		t.Logf("HTTP sink (down for the first %v): delivered %d distinct, %d duplicates, %d lines reported lost",
			httpDownFor, rec2.distinct(), rec2.dups(), len(lost2))
	}
	// Nothing the receiver was sent is invalid, so nothing may be dead-lettered.
	for _, sink := range []string{"logscale", "taegis"} {
		if dl, err := os.ReadFile(filepath.Join(dir, "state", sink+"-dead-letter.ndjson")); err == nil && len(dl) > 0 {
			t.Errorf("events were dead-lettered by %s: %.300s", sink, dl)
		}
	}
	t.Logf("compress=%v: %d lines in %d files; %d SIGTERM + %d SIGKILL restarts; delivered %d distinct, %d duplicates; %d lines reported lost in %d reports; receiver faults %v",
		compress, totalLines, len(w.files), terms, kills, rec.distinct(), rec.dups(), len(lost), len(rec.lossReports()), recv.Stats().Faults)
	perKill := rec.dupsPerKill()
	worst := 0
	for _, n := range perKill {
		worst = max(worst, n)
	}
	t.Logf("duplicates per SIGKILL: %.0f on average, %d at most (%v, by killed session)",
		float64(rec.dups())/float64(max(kills, 1)), worst, perKill)
}

// line is a Tetragon-shaped numbered line.
func line(seq int) string {
	return fmt.Sprintf(`{"process_exec":{"process":{"exec_id":"torture:%09d","pid":%d,"uid":0,"binary":"/usr/bin/curl","arguments":"-sS https://example.internal/%09d"}},"node_name":"torture-node","time":"2026-11-22T10:%02d:%02d.%09dZ"}`+"\n",
		seq, 100000+seq%50000, seq, (seq/60000)%60, (seq/1000)%60, seq)
}

var seqRe = regexp.MustCompile(`"exec_id":"torture:(\d{9})"`)

// writer writes the lines through lumberjack, rotating at fileBytes, and
// remembers which lines went to which file.
type writer struct {
	dir      string
	compress bool
	backups  int
	mu       sync.Mutex
	files    []fileSpan // in rotation order
}

type fileSpan struct{ first, count int }

func (w *writer) run() error {
	lj := &lumberjack.Logger{
		Filename:   filepath.Join(w.dir, "tetragon.log"),
		MaxSize:    1 << 20, // MB: never reached; Rotate below makes 64 KiB files
		MaxBackups: w.backups,
		Compress:   w.compress,
	}
	defer lj.Close()
	size := 0
	w.files = append(w.files, fileSpan{first: 0})
	for seq := 0; seq < totalLines; seq++ {
		l := line(seq)
		if size+len(l) > fileBytes {
			if err := lj.Rotate(); err != nil {
				return err
			}
			w.mu.Lock()
			w.files = append(w.files, fileSpan{first: seq})
			w.mu.Unlock()
			size = 0
		}
		if _, err := lj.Write([]byte(l)); err != nil {
			return err
		}
		size += len(l)
		w.mu.Lock()
		w.files[len(w.files)-1].count++
		w.mu.Unlock()
		if seq%linesPerMs == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	return nil
}

// fileOf finds the file whose content has the fingerprint (len, sum).
func (w *writer) fileOf(fpLen int, sum string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, f := range w.files {
		var head []byte
		for s := f.first; s < f.first+f.count && len(head) < fpLen; s++ {
			head = append(head, line(s)...)
		}
		if len(head) < fpLen {
			continue
		}
		if n, got := tetragon.Fingerprint(head[:fpLen]); n == fpLen && got == sum {
			return i
		}
	}
	return -1
}

// lostLines maps loss reports to the lines they cover: the rest of the
// file lost from, and every file between it and the one resumed at.
func (w *writer) lostLines(t *testing.T, reports []tetragon.Loss) map[int]bool {
	lost := map[int]bool{}
	for _, r := range reports {
		if r.From.File.Len == 0 || (r.ResumedAt != nil && r.ResumedAt.Len == 0) {
			t.Fatalf("loss report names a file by an empty fingerprint, which matches any file: %+v", r)
		}
		from := w.fileOf(r.From.File.Len, r.From.File.Sum)
		if from < 0 {
			t.Fatalf("loss report names a file the writer never wrote: %+v", r.From.File)
		}
		to := len(w.files)
		if r.ResumedAt != nil {
			if to = w.fileOf(r.ResumedAt.Len, r.ResumedAt.Sum); to < 0 {
				t.Fatalf("loss report resumes at an unknown file: %+v", *r.ResumedAt)
			}
		}
		w.mu.Lock()
		f := w.files[from]
		for s, off := f.first, int64(0); s < f.first+f.count; s++ {
			if off >= r.From.Offset {
				lost[s] = true
			}
			off += int64(len(line(s)))
		}
		for i := from + 1; i < to; i++ {
			for s := w.files[i].first; s < w.files[i].first+w.files[i].count; s++ {
				lost[s] = true
			}
		}
		w.mu.Unlock()
	}
	return lost
}

// explain logs, for a failure, the loss reports as file indexes and where
// the missing lines sit, with the sessions that delivered their neighbours.
func (w *writer) explain(t *testing.T, rec *recorder, missing []int) {
	for _, r := range rec.lossReports() {
		from, to, toLen := w.fileOf(r.From.File.Len, r.From.File.Sum), -1, 0
		if r.ResumedAt != nil {
			to, toLen = w.fileOf(r.ResumedAt.Len, r.ResumedAt.Sum), r.ResumedAt.Len
		}
		t.Logf("loss report: from file %d (fp %d bytes) offset %d, resumed at file %d (fp %d bytes), files %v",
			from, r.From.File.Len, r.From.Offset, to, toLen, r.Files)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	seen := map[int]bool{}
	for _, seq := range missing {
		for i, f := range w.files {
			if seq >= f.first && seq < f.first+f.count && !seen[i] {
				seen[i] = true
				var before, after []int64
				if f.first > 0 {
					before = rec.by[f.first-1]
				}
				if end := f.first + f.count; end < len(rec.by) {
					after = rec.by[end]
				}
				t.Logf("missing lines in file %d (lines %d-%d): line before delivered by sessions %v, line after by %v",
					i, f.first, f.first+f.count-1, before, after)
			}
		}
	}
}

// recorder keeps, per line, the agent sessions that delivered it.
type recorder struct {
	session atomic.Int64
	mu      sync.Mutex
	by      [][]int64 // line → sessions that delivered it
	kill    map[int64]bool
	excused map[int64]bool // see excuse
	losses  []tetragon.Loss
	strange []string // events that are neither a whole line nor a loss report
}

func newRecorder() *recorder {
	return &recorder{by: make([][]int64, totalLines), kill: map[int64]bool{}}
}

func (r *recorder) onEvent(e emulator.StoredEvent) { r.record(e.Attributes, e.RawString) }

// onLine records one NDJSON line of the HTTP ingest receiver.
func (r *recorder) onLine(line []byte) { r.record(string(line), string(line)) }

// record files one event, given as its JSON and as it was received.
func (r *recorder) record(attributes, raw string) {
	s := r.session.Load()
	if m := seqRe.FindStringSubmatch(attributes); m != nil {
		seq, _ := strconv.Atoi(m[1])
		r.mu.Lock()
		r.by[seq] = append(r.by[seq], s)
		r.mu.Unlock()
		return
	}
	var report struct {
		Loss *tetragon.Loss `json:"siemship_data_loss"`
	}
	if err := json.Unmarshal([]byte(attributes), &report); err == nil && report.Loss != nil {
		r.mu.Lock()
		r.losses = append(r.losses, *report.Loss)
		r.mu.Unlock()
		return
	}
	// Anything else means a line was cut or mangled on the way.
	r.mu.Lock()
	r.strange = append(r.strange, raw)
	r.mu.Unlock()
}

// excuse marks a session whose deliveries the checkpoint could not cover
// although it ended gracefully (another sink was down): a later session
// may send them again.
func (r *recorder) excuse(session int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.excused == nil {
		r.excused = map[int64]bool{}
	}
	r.excused[session] = true
}

func (r *recorder) killed(session int64) {
	r.mu.Lock()
	r.kill[session] = true
	r.mu.Unlock()
}

func (r *recorder) lossReports() []tetragon.Loss {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]tetragon.Loss(nil), r.losses...)
}

func (r *recorder) missing(lost map[int]bool) []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []int
	for seq, s := range r.by {
		if len(s) == 0 && !lost[seq] {
			out = append(out, seq)
		}
	}
	return out
}

func (r *recorder) distinct() (n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.by {
		if len(s) > 0 {
			n++
		}
	}
	return n
}

// dupsPerKill attributes each duplicate to the session whose delivery was
// repeated (a later session sent the line again): only SIGKILLed sessions
// may have any, and how many says how far the checkpoint lagged delivery.
func (r *recorder) dupsPerKill() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	by := map[int64]int{}
	for _, sessions := range r.by {
		for i := 0; i+1 < len(sessions); i++ {
			by[sessions[i]]++
		}
	}
	var out []int
	for s := int64(1); s <= r.session.Load(); s++ {
		if r.kill[s] {
			out = append(out, by[s])
		}
	}
	return out
}

func (r *recorder) dups() (n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.by {
		n += max(0, len(s)-1)
	}
	return n
}

// check asserts the promises: every line delivered or reported lost; a line
// reported lost was either never delivered or delivered by a session that
// was SIGKILLed before its checkpoint covered it; duplicates only come from
// sessions that ended with SIGKILL.
func (r *recorder) check(t *testing.T, lost map[int]bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, raw := range r.strange {
		if i < 5 {
			t.Errorf("received an event that is not a whole line: %.200q", raw)
		}
	}
	var unexplainedDup, lostButDelivered, missing int
	for seq, sessions := range r.by {
		if len(sessions) == 0 {
			if !lost[seq] {
				missing++
			}
			continue
		}
		if lost[seq] {
			// Possible only for lines a killed session delivered beyond its last checkpoint.
			if !r.kill[sessions[0]] && !r.excused[sessions[0]] {
				lostButDelivered++
			}
		}
		for i := 0; i+1 < len(sessions); i++ {
			if !r.kill[sessions[i]] && !r.excused[sessions[i]] {
				unexplainedDup++
				if unexplainedDup <= 5 {
					t.Errorf("line %d delivered by sessions %v; session %d ended with SIGTERM, so it must not be re-sent", seq, sessions, sessions[i])
				}
			}
		}
	}
	if missing > 0 {
		t.Errorf("%d lines neither delivered nor reported lost", missing)
	}
	if lostButDelivered > 0 {
		t.Errorf("%d lines reported lost were delivered by a session that was not killed", lostButDelivered)
	}
	if unexplainedDup > 0 {
		t.Errorf("%d duplicates not explained by a SIGKILL", unexplainedDup)
	}
}

func head(s []int) []int {
	if len(s) > 10 {
		return s[:10]
	}
	return s
}
