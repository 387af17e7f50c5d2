package delivery

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// metrics are one sink's Prometheus metrics; every series carries the
// sink's name as label "sink".
type metrics struct {
	requests          *prometheus.CounterVec // by status code or "network_error"
	eventsSent        prometheus.Counter
	eventsAcked       prometheus.Counter
	eventsRetried     prometheus.Counter
	eventsDeadLetter  *prometheus.CounterVec // by status code
	bytesSent         prometheus.Counter
	bytesUncompressed prometheus.Counter
	duration          prometheus.Histogram
	inflight          prometheus.Gauge
	ready             prometheus.Gauge

	deadLetterRotations prometheus.Counter
	deadLetterDiscarded prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, name string) (*metrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	reg = prometheus.WrapRegistererWith(prometheus.Labels{"sink": name}, reg)
	const ns, sub = "siemship", "sink"
	counter := func(n, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: n, Help: help})
	}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "requests_total", Help: "HTTP requests to the SIEM by status code (or network_error)."},
			[]string{"status"}),
		eventsSent:    counter("events_sent_total", "Events in requests sent, counted once per attempt."),
		eventsAcked:   counter("events_acked_total", "Events the SIEM accepted and that were acknowledged to their source."),
		eventsRetried: counter("events_retried_total", "Events sent again: retries, split halves and bisections."),
		eventsDeadLetter: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "events_dead_lettered_total", Help: "Events rejected for good and written to the dead-letter file, by status code."},
			[]string{"status"}),
		bytesSent:         counter("bytes_sent_total", "Request body bytes on the wire (compressed)."),
		bytesUncompressed: counter("bytes_uncompressed_total", "Request body bytes before compression."),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub,
			Name: "request_duration_seconds", Help: "Duration of one HTTP request to the SIEM.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "inflight_requests", Help: "Requests holding a concurrency slot (being sent or waiting to retry)."}),
		ready: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "ready", Help: "1 when the last request succeeded, 0 while the SIEM is unreachable or rejects the configuration."}),
	}
	m.deadLetterRotations = counter("dead_letter_rotations_total", "Times the dead-letter file reached dead_letter_max_bytes and was rotated.")
	m.deadLetterDiscarded = counter("dead_letter_discarded_bytes_total", "Bytes of older dead letters discarded by rotations.")
	// Create the series of the statuses that dead-letter, so dashboards and
	// alerts see a zero instead of a missing series.
	for _, code := range []string{"400", "413", "422"} {
		m.eventsDeadLetter.WithLabelValues(code)
	}
	for _, c := range []prometheus.Collector{m.requests, m.eventsSent, m.eventsAcked, m.eventsRetried,
		m.eventsDeadLetter, m.bytesSent, m.bytesUncompressed, m.duration, m.inflight, m.ready,
		m.deadLetterRotations, m.deadLetterDiscarded} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register sink metrics: %w", err)
		}
	}
	return m, nil
}

func counterValue(c prometheus.Counter) float64 {
	var out dto.Metric
	_ = c.Write(&out) // a plain counter always writes
	return out.GetCounter().GetValue()
}

func gaugeValue(g prometheus.Gauge) float64 {
	var out dto.Metric
	_ = g.Write(&out)
	return out.GetGauge().GetValue()
}

// counterVecSum adds up every series of v.
func counterVecSum(v *prometheus.CounterVec) float64 {
	ch := make(chan prometheus.Metric, 16)
	go func() { v.Collect(ch); close(ch) }()
	sum := 0.0
	for m := range ch {
		var out dto.Metric
		_ = m.Write(&out)
		sum += out.GetCounter().GetValue()
	}
	return sum
}
