package syslog

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are one sink's Prometheus metrics; every series carries the
// sink's name as label "sink".
type metrics struct {
	connections   prometheus.Gauge
	connects      prometheus.Counter
	reconnects    prometheus.Counter
	failures      *prometheus.CounterVec // by stage: dial, write, ack, peer
	messagesSent  prometheus.Counter
	messagesAcked prometheus.Counter
	resent        prometheus.Counter
	bytesSent     prometheus.Counter
	truncated     prometheus.Counter
	unacked       prometheus.Gauge // messages written and not yet acknowledged
	unackedBytes  prometheus.Gauge // bytes in the socket's send queue (SIOCOUTQ), Linux
	ready         prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, name string) (*metrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	reg = prometheus.WrapRegistererWith(prometheus.Labels{"sink": name}, reg)
	const ns, sub = "siemship", "syslog"
	counter := func(n, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: n, Help: help})
	}
	gauge := func(n, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: n, Help: help})
	}
	m := &metrics{
		connections: gauge("connections", "Open connections to the receiver (0 or 1)."),
		connects:    counter("connects_total", "Connections established."),
		reconnects:  counter("reconnects_total", "Connections replaced after a failure."),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "failures_total", Help: "Connection failures by stage: dial, write, ack (RELP answer or peer acknowledgement overdue or refused), closed (receiver closed)."},
			[]string{"stage"}),
		messagesSent:  counter("messages_sent_total", "Messages written to the socket, resends included."),
		messagesAcked: counter("messages_acked_total", "Messages delivered under the ack mode and acknowledged to their source."),
		resent:        counter("messages_resent_total", "Messages written again on a new connection because the old one broke before they were acknowledged."),
		bytesSent:     counter("bytes_sent_total", "Message bytes written (framing included, TLS overhead excluded)."),
		truncated:     counter("messages_truncated_total", "Messages cut to max_message_bytes."),
		unacked:       gauge("unacked_messages", "Messages written and not yet acknowledged (the RELP or peer window)."),
		unackedBytes:  gauge("unacked_kernel_bytes", "Bytes the kernel holds for the socket that the peer has not acknowledged (SIOCOUTQ; Linux)."),
		ready:         gauge("ready", "1 while connected and delivering, 0 while the receiver is unreachable or failing."),
	}
	for _, st := range []string{"dial", "write", "ack", "closed"} {
		m.failures.WithLabelValues(st)
	}
	for _, c := range []prometheus.Collector{m.connections, m.connects, m.reconnects, m.failures, m.messagesSent,
		m.messagesAcked, m.resent, m.bytesSent, m.truncated, m.unacked, m.unackedBytes, m.ready} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register syslog sink metrics: %w", err)
		}
	}
	return m, nil
}
