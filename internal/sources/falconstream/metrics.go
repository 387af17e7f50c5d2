package falconstream

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Reconnect causes (the cause label of reconnects_total).
const (
	causeEOF          = "eof"
	causeError        = "error"
	causeUnauthorized = "unauthorized"
	causeSilence      = "silence"
	causeRefresh      = "refresh_failed"
)

type metrics struct {
	seen       *prometheus.GaugeVec   // by partition
	committed  *prometheus.GaugeVec   // by partition
	streaming  *prometheus.GaugeVec   // by partition
	events     *prometheus.CounterVec // by partition
	acked      *prometheus.CounterVec // by partition
	reconnects *prometheus.CounterVec // by partition, cause
	refreshes  *prometheus.CounterVec // by partition
	inUse      prometheus.Counter
	skipped    prometheus.Counter
	truncated  prometheus.Counter
	saveFails  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, source string) *metrics {
	labels := prometheus.Labels{"source": source}
	counter := func(name, help string, l ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "siemship", Subsystem: "falcon_stream", Name: name, Help: help, ConstLabels: labels}, l)
	}
	gauge := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "siemship", Subsystem: "falcon_stream", Name: name, Help: help, ConstLabels: labels}, []string{"partition"})
	}
	plain := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "siemship", Subsystem: "falcon_stream", Name: name, Help: help, ConstLabels: labels})
	}
	m := &metrics{
		seen:       gauge("offset_seen", "Latest offset read from the partition."),
		committed:  gauge("offset_committed", "Latest offset delivered by every sink (persisted at the next checkpoint)."),
		streaming:  gauge("streaming", "1 while the partition's stream is open."),
		events:     counter("events_total", "Events read.", "partition"),
		acked:      counter("events_acked_total", "Events delivered by every sink of every route.", "partition"),
		reconnects: counter("reconnects_total", "Sessions ended and reopened, by the partition and cause that ended them (eof, error, unauthorized, silence, refresh_failed).", "partition", "cause"),
		refreshes:  counter("refreshes_total", "Session refreshes that Falcon accepted.", "partition"),
		inUse:      plain("app_id_in_use_total", "Discoveries answered with no partitions: the appId was in use."),
		skipped:    plain("replayed_events_skipped_total", "Events at offsets already read (a server replay), not forwarded again."),
		truncated:  plain("truncated_events_total", "Events longer than max_event_bytes, shipped cut and flagged."),
		saveFails:  plain("checkpoint_failures_total", "Failed offset checkpoint writes."),
	}
	reg.MustRegister(m.seen, m.committed, m.streaming, m.events, m.acked, m.reconnects, m.refreshes,
		m.inUse, m.skipped, m.truncated, m.saveFails)
	return m
}
