package logscale

import (
	"bytes"

	"github.com/klauspost/compress/gzip"
	"github.com/siemship/siemship/internal/sinks/delivery"

	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/siemship/siemship/internal/event"
)

// BenchmarkEncode builds and compresses full requests (up to 5 MiB) of
// realistic, varied Tetragon events, as the sender does per request.
func BenchmarkEncode(b *testing.B) {
	lines := genTetragon(b, 20000, 42)
	evs := make([]event.Event, len(lines))
	for i, l := range lines {
		evs[i] = event.Event{Raw: l, Time: 1772366400000 + int64(i), Type: eventType(l), Size: len(l)}
	}
	for _, c := range []struct {
		name         string
		format, comp string
	}{
		{"structured-gzip1", FormatStructured, delivery.CompressionGzip},
		{"hec-gzip1", FormatHEC, delivery.CompressionGzip},
		{"structured-none", FormatStructured, delivery.CompressionNone},
	} {
		b.Run(c.name, func(b *testing.B) {
			cfg := DefaultConfig()
			bl := newBuilder(newEncoder(c.format, nil))
			zw, _ := gzip.NewWriterLevel(nil, cfg.CompressionLevel)
			var body bytes.Buffer
			b.ReportAllocs()
			next, events, raw, wire := 0, 0, 0, 0
			for b.Loop() {
				for bl.Len() < cfg.MaxEvents && bl.Add("tetragon", &evs[next], int(cfg.MaxBytes)) {
					next = (next + 1) % len(evs)
				}
				body.Reset()
				if c.comp == delivery.CompressionGzip {
					zw.Reset(&body)
					_ = bl.WriteBody(zw)
					_ = zw.Close()
				} else {
					_ = bl.WriteBody(&body)
				}
				events += bl.Len()
				raw += bl.Size()
				wire += body.Len()
				bl.Reset()
			}
			sec := b.Elapsed().Seconds()
			b.ReportMetric(float64(events)/sec, "events/s")
			b.ReportMetric(float64(raw)/sec/1e6, "MB/s")
			b.ReportMetric(float64(raw)/float64(max(wire, 1)), "ratio")
		})
	}
}

// BenchmarkRun measures the whole sink (batching, gzip, HTTP) against a
// receiver that only reads and counts the bytes: events per second of wall
// time, with the machine's cores shared by sink and receiver.
func BenchmarkRun(b *testing.B) {
	lines := genTetragon(b, 20000, 43)
	types := make([]string, len(lines))
	for i, l := range lines {
		types[i] = eventType(l)
	}
	var received atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		received.Add(n)
	}))
	defer srv.Close()
	cfg := DefaultConfig()
	cfg.URL, cfg.Token = srv.URL, "t"
	s, err := New(cfg, "bench", prometheus.NewRegistry(), nil)
	if err != nil {
		b.Fatal(err)
	}
	in := make(chan *event.Batch, 4)
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background(), in) }()
	acks := newAckRecorder()
	b.ReportAllocs()
	events := 0
	for i := 0; b.Loop(); i++ {
		// One batch of 500 events per iteration, as a file reader hands out.
		evs := make([]event.Event, 500)
		for j := range evs {
			k := (i*500 + j) % len(lines)
			evs[j] = event.Event{Raw: lines[k], Time: int64(i*500 + j), Type: types[k], Size: len(lines[k])}
		}
		in <- acks.wrap(i, "tetragon", evs)
		events += len(evs)
	}
	close(in)
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(received.Load())/float64(events), "wire-bytes/event")
}
