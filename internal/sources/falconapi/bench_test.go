package falconapi

import (
	"syscall"
	"testing"
	"time"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkResources ingests 20,000 records of each resource from the
// in-process emulator and reports records per CPU-second (the emulator's
// CPU included: an upper bound of the source's cost) and API calls (query
// + details, token excluded) per 1,000 records.
//
//	go test -run '^$' -bench BenchmarkResources -benchtime 1x ./internal/sources/falconapi/
func BenchmarkResources(b *testing.B) {
	const n = 20000
	for _, r := range all {
		b.Run(r, func(b *testing.B) {
			b.ReportAllocs()
			var cpu time.Duration
			calls := 0
			for range b.N {
				e := newEnv(b)
				seed(e, n, r)
				start := cpuTime()
				_, stop := e.run(e.config(r), false)
				deadline := time.Now().Add(2 * time.Minute)
				for e.missingFinal(r) > 0 && time.Now().Before(deadline) {
					time.Sleep(5 * time.Millisecond)
				}
				cpu += cpuTime() - start
				stop()
				if left := e.missingFinal(r); left > 0 {
					b.Fatalf("%d records missing", left)
				}
				st := e.emu.ResourceStats()
				calls += st.Queries[r] + st.Entities[r]
				e.srv.Close()
			}
			b.ReportMetric(float64(n*b.N)/cpu.Seconds(), "records/CPU-s")
			b.ReportMetric(float64(calls)*1000/float64(n*b.N), "calls/1000rec")
		})
	}
}
