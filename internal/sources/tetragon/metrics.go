package tetragon

import (
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

type metrics struct {
	bytesRead       prometheus.Counter
	linesRead       prometheus.Counter
	eventsAcked     prometheus.Counter
	longLines       prometheus.Counter
	truncations     prometheus.Counter
	mismatches      prometheus.Counter
	lossIncidents   prometheus.Counter
	lostBytes       prometheus.Counter
	rotations       prometheus.Counter
	watchErrors     prometheus.Counter
	readErrors      prometheus.Counter
	checkpointSaves prometheus.Counter
	checkpointFails prometheus.Counter

	exportMissingWarnings prometheus.Counter
	ignoredFiles          prometheus.Counter
	budgetWaits           prometheus.Counter
}

// newMetrics registers the source's metrics; gauges computed at scrape time
// are registered by the Source itself (see Source.registerGauges).
func newMetrics(reg prometheus.Registerer, source string) *metrics {
	labels := prometheus.Labels{"source": source}
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "siemship", Subsystem: "source", Name: name, Help: help, ConstLabels: labels,
		})
	}
	m := &metrics{
		bytesRead:       c("bytes_read_total", "Bytes read from the export files."),
		linesRead:       c("events_read_total", "Lines (events) read from the export files."),
		eventsAcked:     c("events_acked_total", "Events delivered by every sink (the checkpoint may advance past them)."),
		longLines:       c("long_lines_total", "Lines longer than max_line_bytes, shipped truncated and flagged."),
		truncations:     c("truncations_total", "Times the file was found shorter than the read offset and re-read from the start."),
		mismatches:      c("identity_mismatches_total", "Checkpointed files whose inode or content did not match (never seeked into)."),
		lossIncidents:   c("data_loss_total", "Times data was deleted by Tetragon before siemship read it."),
		lostBytes:       c("lost_bytes_total", "Bytes known to be deleted by Tetragon before siemship read them (a lower bound)."),
		rotations:       c("rotations_total", "Moves from a finished file to the next one."),
		watchErrors:     c("watch_errors_total", "File notification errors (polling covers for them)."),
		readErrors:      c("read_errors_total", "Errors opening or reading export files."),
		checkpointSaves: c("checkpoint_writes_total", "Checkpoints written."),
		checkpointFails: c("checkpoint_errors_total", "Checkpoint writes that failed."),

		ignoredFiles:          c("ignored_files_total", "Names in the export directory that are not regular files (symlinks, FIFOs, devices): never read, counted once each."),
		budgetWaits:           c("buffer_waits_total", "Times the reader waited for buffer budget: events read but not yet delivered fill buffer_bytes (back-pressure)."),
		exportMissingWarnings: c("export_missing_warnings_total", "Warnings that the export directory stayed empty or absent (a wrong path?)."),
	}
	reg.MustRegister(m.bytesRead, m.linesRead, m.eventsAcked, m.longLines, m.truncations, m.mismatches, m.lossIncidents,
		m.lostBytes, m.rotations, m.watchErrors, m.readErrors, m.checkpointSaves, m.checkpointFails,
		m.exportMissingWarnings, m.ignoredFiles, m.budgetWaits)
	return m
}

// counterValue reads a counter without going through a registry.
func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return 0
	}
	return m.GetCounter().GetValue()
}
