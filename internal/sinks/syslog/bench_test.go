package syslog

import (
	"context"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/siemship/siemship/internal/event"
	"github.com/siemship/siemship/internal/testenv/syslogd"
)

// BenchmarkSyslogRsyslog delivers realistic Tetragon events in batches of
// 500 to a real rsyslog on loopback and reports the sink's events per
// CPU-second (this process's user+system time; rsyslog's own is not
// counted) beside events per wall-clock second, where rsyslog shares the
// cores.
func BenchmarkSyslogRsyslog(b *testing.B) {
	evs := genEvents(b, 5000, 21)
	for _, c := range []struct {
		name, kind string
		mod        func(*Config)
	}{
		{"tcp-written-rfc3164-json", syslogd.RsyslogTCP, func(c *Config) {}},
		{"tcp-peer-rfc5424-json", syslogd.RsyslogTCP, func(c *Config) { c.Ack, c.Format = AckPeer, FormatRFC5424 }},
		{"relp-rfc5424-json", syslogd.RsyslogRELP, func(c *Config) { c.Transport, c.Format = TransportRELP, FormatRFC5424 }},
		{"tcp-written-rfc3164-kv", syslogd.RsyslogTCP, func(c *Config) { c.Body = BodyKV }},
	} {
		b.Run(c.name, func(b *testing.B) {
			rcv := syslogd.Start(b, syslogd.Options{Kind: c.kind})
			cfg := testConfig(rcv.Addr)
			c.mod(&cfg)
			s, err := New(cfg, "bench", prometheus.NewRegistry(), nil)
			if err != nil {
				b.Fatal(err)
			}
			in := make(chan *event.Batch, 4)
			errc := make(chan error, 1)
			go func() { errc <- s.Run(context.Background(), in) }() // owned: in is closed below, then errc read
			var acked atomic.Int64
			const batch = 500
			before := cpu()
			b.ReportAllocs()
			b.ResetTimer()
			sent := 0
			for sent < b.N {
				k := min(batch, b.N-sent)
				chunk := make([]event.Event, k)
				for i := range chunk {
					chunk[i] = evs[(sent+i)%len(evs)]
				}
				bt := event.NewBatch("tetragon", chunk, func() { acked.Add(int64(k)) })
				bt.Expect(1)
				in <- bt
				sent += k
			}
			close(in)
			if err := <-errc; err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			used := cpu() - before
			if acked.Load() != int64(b.N) {
				b.Fatalf("%d of %d acknowledged", acked.Load(), b.N)
			}
			b.ReportMetric(float64(b.N)/used.Seconds(), "events/cpu-s")
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// cpu returns this process's user+system CPU time.
func cpu() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
