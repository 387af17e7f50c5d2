package falcon

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the API client's counters, with a "source" label naming the
// source that owns the client.
type Metrics struct {
	Calls          *prometheus.CounterVec // by call and code
	TokenRenewals  prometheus.Counter
	RateLimitWaits prometheus.Counter
	RateLimitSecs  prometheus.Counter
}

// NewMetrics registers the client metrics of source on reg.
func NewMetrics(reg prometheus.Registerer, source string) *Metrics {
	labels := prometheus.Labels{"source": source}
	opts := func(name, help string) prometheus.CounterOpts {
		return prometheus.CounterOpts{Namespace: "siemship", Subsystem: "falcon", Name: name, Help: help, ConstLabels: labels}
	}
	m := &Metrics{
		Calls: prometheus.NewCounterVec(opts("api_calls_total",
			"Falcon API calls by call (token, revoke, discover, refresh, stream) and HTTP status (\"error\": no answer)."), []string{"call", "code"}),
		TokenRenewals:  prometheus.NewCounter(opts("token_renewals_total", "OAuth2 access tokens obtained.")),
		RateLimitWaits: prometheus.NewCounter(opts("rate_limit_waits_total", "Calls held back after a 429 until X-Ratelimit-Retryafter.")),
		RateLimitSecs:  prometheus.NewCounter(opts("rate_limit_wait_seconds_total", "Seconds calls were held back by 429 answers.")),
	}
	reg.MustRegister(m.Calls, m.TokenRenewals, m.RateLimitWaits, m.RateLimitSecs)
	return m
}

func (m *Metrics) call(call string, code int) {
	if m == nil {
		return
	}
	c := "error"
	if code > 0 {
		c = strconv.Itoa(code)
	}
	m.Calls.WithLabelValues(call, c).Inc()
}
