package spool

import (
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	writes         prometheus.Counter // events written
	writeBytes     prometheus.Counter
	direct         prometheus.Counter // events passed straight to the sink (overflow)
	replayed       prometheus.Counter // events the sink delivered from the spool
	dropped        prometheus.Counter // events deleted by drop_oldest
	droppedSegs    prometheus.Counter
	corruptions    prometheus.Counter
	corruptBytes   prometheus.Counter
	tornTails      prometheus.Counter
	fullWaits      prometheus.Counter
	diskFull       prometheus.Counter
	writeErrors    prometheus.Counter
	commitFailures prometheus.Counter
}

// newMetrics registers the spool's counters and its gauges (read from s at
// scrape time), labelled with the sink.
func newMetrics(reg prometheus.Registerer, s *Sink) (*metrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	reg = prometheus.WrapRegistererWith(prometheus.Labels{"sink": s.name}, reg)
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "siemship", Subsystem: "spool", Name: name, Help: help})
	}
	g := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "siemship", Subsystem: "spool", Name: name, Help: help}, f)
	}
	m := &metrics{
		writes:         c("written_events_total", "Events written to the spool (acknowledged upstream once durable)."),
		writeBytes:     c("written_bytes_total", "Record bytes written to the spool."),
		direct:         c("direct_events_total", "Events passed straight to the sink in overflow mode (the spool was empty and the sink kept up)."),
		replayed:       c("replayed_events_total", "Events read back from the spool and delivered by the sink."),
		dropped:        c("dropped_events_total", "Events deleted unsent because the spool was full (when_full: drop_oldest); each drop is reported as a siemship_data_loss event."),
		droppedSegs:    c("dropped_segments_total", "Segments deleted unsent because the spool was full (when_full: drop_oldest)."),
		corruptions:    c("corruptions_total", "Damaged spans found in the spool, skipped and reported as siemship_data_loss events."),
		corruptBytes:   c("corrupt_bytes_total", "Bytes skipped in damaged spans of the spool."),
		tornTails:      c("torn_tails_total", "Records cut short at the end of a segment (a write interrupted by a crash), never acknowledged upstream, cut on open."),
		fullWaits:      c("full_waits_total", "Times writing waited for room: the spool was at max_bytes or the disk was full (back-pressure upstream)."),
		diskFull:       c("disk_full_total", "Times writing found the disk under the spool full (ENOSPC, EDQUOT) before max_bytes; it then waits for deliveries to free space (block) or drops the oldest segment (drop_oldest)."),
		writeErrors:    c("write_errors_total", "Spool writes that failed (ENOSPC included); the batch is retried and not acknowledged upstream before it is durable."),
		commitFailures: c("commit_errors_total", "Failed writes of the spool's read position (a restart then replays more)."),
	}
	cols := []prometheus.Collector{m.writes, m.writeBytes, m.direct, m.replayed, m.dropped, m.droppedSegs,
		m.corruptions, m.corruptBytes, m.tornTails, m.fullWaits, m.diskFull, m.writeErrors, m.commitFailures,
		g("bytes", "Bytes of the spool's segment files on disk.", func() float64 { return float64(s.Stats().Bytes) }),
		g("records", "Records (batches) in the spool not yet delivered by the sink.", func() float64 { return float64(s.Stats().Records) }),
		g("events", "Events in the spool not yet delivered by the sink.", func() float64 { return float64(s.Stats().Events) }),
		g("oldest_age_seconds", "Time since the oldest undelivered record was written to the spool; 0 when empty.", func() float64 { return s.Stats().OldestAge.Seconds() }),
		g("max_bytes", "The spool's cap (max_bytes).", func() float64 { return float64(s.cfg.MaxBytes) }),
	}
	for _, col := range cols {
		if err := reg.Register(col); err != nil {
			return nil, err
		}
	}
	return m, nil
}
