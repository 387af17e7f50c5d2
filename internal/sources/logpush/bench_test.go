package logpush

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"

	pusher "github.com/siemship/siemship/internal/emulators/logpush"
	"github.com/siemship/siemship/internal/event"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkDecode measures the source from a gzip NDJSON request body to
// batches out (both passes, validation, time extraction, acknowledgement),
// in records per CPU-second, against gunzipping the same body alone.
func BenchmarkDecode(b *testing.B) {
	const records = 10000
	gen, _ := pusher.NewGenerator(pusher.HTTPRequests, pusher.UnixNano, time.Now(), 3)
	var nd bytes.Buffer
	for range records {
		nd.Write(gen.Next())
		nd.WriteByte('\n')
	}
	body := gzipBytes(nd.Bytes())
	dir := b.TempDir()
	writeFile(b, dir+"/secret", testSecret)
	cfg := DefaultConfig()
	cfg.AllowPlainHTTP = true
	cfg.SecretFile = dir + "/secret"
	src, err := New(cfg, "bench", semaphore.NewWeighted(256<<20), prometheus.NewRegistry(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	out := make(chan *event.Batch, 16)
	src.out = out
	stop := make(chan struct{})
	acked := make(chan struct{})
	go func() {
		defer close(acked)
		for {
			select {
			case bt := <-out:
				bt.Expect(1)
				bt.Delivered(len(bt.Events))
			case <-stop:
				return
			}
		}
	}()
	defer func() { close(stop); <-acked }()

	// Reference: gunzip alone, in the same run (absolute figures drift).
	zr := new(gzip.Reader)
	refStart := cpuTime()
	for range 20 {
		_ = zr.Reset(bytes.NewReader(body))
		_, _ = io.Copy(io.Discard, zr)
	}
	refPerBody := (cpuTime() - refStart) / 20

	b.ReportAllocs()
	b.SetBytes(int64(nd.Len()))
	b.ResetTimer()
	start := cpuTime()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/logpush?tags=dataset:http_requests", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testSecret)
		req.Header.Set("Content-Encoding", "gzip")
		w := httptest.NewRecorder()
		src.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
	cpu := cpuTime() - start
	b.StopTimer()
	perBody := cpu / time.Duration(b.N)
	b.ReportMetric(float64(records)/perBody.Seconds(), "records/cpu-s")
	b.ReportMetric(float64(perBody)/float64(refPerBody), "x_gunzip")
	b.ReportMetric(float64(nd.Len())/records, "bytes/record")
	b.ReportMetric(float64(nd.Len())/float64(len(body)), "ratio")
}
