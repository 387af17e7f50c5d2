package falconapi

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	records   *prometheus.CounterVec // by resource
	errors    *prometheus.CounterVec // by resource and cause
	disabled  *prometheus.GaugeVec   // by resource
	expired   *prometheus.CounterVec // by resource
	polls     *prometheus.CounterVec // by resource
	saveFails prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, source string) *metrics {
	labels := prometheus.Labels{"source": source}
	m := &metrics{
		records: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "siemship", Subsystem: "falcon_api", Name: "records_total",
			Help: "Record versions emitted, by resource.", ConstLabels: labels}, []string{"resource"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "siemship", Subsystem: "falcon_api", Name: "poll_errors_total",
			Help: "Polls that failed, by resource and cause (scope, gone, other).", ConstLabels: labels}, []string{"resource", "cause"}),
		disabled: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "siemship", Subsystem: "falcon_api", Name: "resource_disabled",
			Help: "1 when a resource was disabled because Falcon removed its API (404/410).", ConstLabels: labels}, []string{"resource"}),
		expired: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "siemship", Subsystem: "falcon_api", Name: "after_expired_total",
			Help: "after tokens refused as expired (the query restarted from the high-water mark).", ConstLabels: labels}, []string{"resource"}),
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "siemship", Subsystem: "falcon_api", Name: "polls_total",
			Help: "Polls started, by resource.", ConstLabels: labels}, []string{"resource"}),
		saveFails: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "siemship", Subsystem: "falcon_api", Name: "checkpoint_failures_total",
			Help: "Failed checkpoint writes (the positions stay in memory and are written at the next try).", ConstLabels: labels}),
	}
	reg.MustRegister(m.records, m.errors, m.disabled, m.expired, m.polls, m.saveFails)
	return m
}
