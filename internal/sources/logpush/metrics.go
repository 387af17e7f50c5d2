package logpush

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Status labels besides HTTP codes: the client went away before an answer.
const codeAborted = "aborted"

type metrics struct {
	requests     *prometheus.CounterVec // by code
	records      *prometheus.CounterVec // by dataset
	acked        prometheus.Counter
	malformed    prometheus.Counter
	truncated    prometheus.Counter
	timeGuessed  prometheus.Counter
	wireBytes    prometheus.Counter
	decoded      prometheus.Counter
	validations  prometheus.Counter
	delivery     prometheus.Histogram
	inFlight     prometheus.Gauge
	reloadErrors prometheus.Counter
}

// newMetrics registers the source's metrics, each with a "source" label
// naming this source, so several Logpush sources can share a registry.
func newMetrics(reg prometheus.Registerer, source string) *metrics {
	labels := prometheus.Labels{"source": source}
	opts := func(name, help string) prometheus.CounterOpts {
		return prometheus.CounterOpts{Namespace: "siemship", Subsystem: "logpush", Name: name, Help: help, ConstLabels: labels}
	}
	m := &metrics{
		requests:    prometheus.NewCounterVec(opts("requests_total", "Requests answered, by HTTP status (\"aborted\": the client went away first)."), []string{"code"}),
		records:     prometheus.NewCounterVec(opts("records_total", "Records received and emitted, by dataset."), []string{"dataset"}),
		acked:       prometheus.NewCounter(opts("records_acked_total", "Records delivered by every sink of every route.")),
		malformed:   prometheus.NewCounter(opts("malformed_records_total", "Records that are not a JSON object; shipped as received and flagged.")),
		truncated:   prometheus.NewCounter(opts("truncated_records_total", "Records longer than max_record_bytes; shipped cut and flagged.")),
		timeGuessed: prometheus.NewCounter(opts("records_without_time_total", "Records without a usable time field; dated with the receive time and flagged.")),
		wireBytes:   prometheus.NewCounter(opts("received_bytes_total", "Request body bytes as received (compressed).")),
		decoded:     prometheus.NewCounter(opts("decompressed_bytes_total", "Request body bytes after decompression.")),
		validations: prometheus.NewCounter(opts("validation_requests_total", "Logpush job validation requests answered.")),
		delivery: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "siemship", Subsystem: "logpush", Name: "delivery_seconds", ConstLabels: labels,
			Help:    "Time from a request's arrival to every record of it delivered (the 200 answer).",
			Buckets: []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "siemship", Subsystem: "logpush", Name: "requests_in_flight", ConstLabels: labels,
			Help: "Requests being read or waiting for delivery.",
		}),
		reloadErrors: prometheus.NewCounter(opts("reload_errors_total", "Failed re-reads of the secret file or TLS pair (the previous one stays in use).")),
	}
	reg.MustRegister(m.requests, m.records, m.acked, m.malformed, m.truncated, m.timeGuessed, m.wireBytes,
		m.decoded, m.validations, m.delivery, m.inFlight, m.reloadErrors)
	return m
}

func (m *metrics) answered(code int) { m.requests.WithLabelValues(strconv.Itoa(code)).Inc() }

// counterValue reads a counter without going through a registry.
func counterValue(c prometheus.Collector) float64 {
	ch := make(chan prometheus.Metric, 64)
	go func() { c.Collect(ch); close(ch) }()
	sum := 0.0
	for mt := range ch {
		var d dto.Metric
		if err := mt.Write(&d); err == nil {
			sum += d.GetCounter().GetValue()
		}
	}
	return sum
}
