package k8smeta

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	matches   *prometheus.CounterVec // by method: uid, name, container, host
	misses    *prometheus.CounterVec // by reason: not_found, unavailable
	apiErrors *prometheus.CounterVec // by resource: pods, namespaces, nodes, replicasets, jobs
	available prometheus.Gauge
	enrich    prometheus.Histogram
	waits     prometheus.Counter

	// Children resolved once, so that counting per batch does not look up
	// label values.
	byMethod [methodCount]prometheus.Counter
	byMiss   [missCount]prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{
		matches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "siemship_k8s_matches_total",
			Help: "Events matched to pod metadata, by method (uid, name, container) or host for host processes.",
		}, []string{"method"}),
		misses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "siemship_k8s_misses_total",
			Help: "Events of a pod shipped without its metadata: not_found (not in the cache after waiting) or unavailable (API not synced or failing).",
		}, []string{"reason"}),
		apiErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "siemship_k8s_api_errors_total",
			Help: "Failed Kubernetes API calls, by resource (pods, namespaces, nodes: informers; replicasets, jobs: owner lookups).",
		}, []string{"resource"}),
		available: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "siemship_k8s_api_available",
			Help: "1 when the metadata caches are synced and being kept up to date, 0 when the API server is unreachable or refuses the agent.",
		}),
		enrich: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "siemship_k8s_enrich_seconds",
			Help:    "Time spent enriching one batch, including waiting for pods not in the cache yet.",
			Buckets: prometheus.ExponentialBuckets(0.00005, 4, 9),
		}),
		waits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "siemship_k8s_waits_total",
			Help: "Batches that waited for pods not in the cache yet.",
		}),
	}
	for i := range methodCount {
		m.byMethod[i] = m.matches.WithLabelValues(method(i).String())
	}
	for i := range missCount {
		m.byMiss[i] = m.misses.WithLabelValues(miss(i).String())
	}
	return m
}

// register adds the metrics, and gauges reading the cache sizes, to reg.
func (m *metrics) register(reg prometheus.Registerer, s *store, o *ownerResolver) error {
	sizes := []struct {
		kind string
		get  func() float64
	}{
		{"pods", func() float64 { live, _, _ := s.counts(); return float64(live) }},
		{"deleted_pods", func() float64 { _, deleted, _ := s.counts(); return float64(deleted) }},
		{"namespaces", func() float64 { _, _, ns := s.counts(); return float64(ns) }},
		{"owners", func() float64 { return float64(o.size()) }},
	}
	cs := []prometheus.Collector{m.matches, m.misses, m.apiErrors, m.available, m.enrich, m.waits}
	for _, sz := range sizes {
		cs = append(cs, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "siemship_k8s_cache_objects",
			Help:        "Objects in the Kubernetes metadata cache, by kind (deleted_pods: kept for late events).",
			ConstLabels: prometheus.Labels{"kind": sz.kind},
		}, sz.get))
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register kubernetes metadata metrics: %w", err)
		}
	}
	return nil
}
