package agent

import (
	"context"
	"log/slog"
	"time"

	"github.com/siemship/siemship/internal/config"
	"github.com/siemship/siemship/internal/pipeline"
	"github.com/siemship/siemship/internal/sources/tetragon"
	"github.com/siemship/siemship/internal/spool"
	"github.com/siemship/siemship/internal/version"
)

// firstContact logs one summary at start: the configuration in effect and,
// for every source and sink, whether its check passed (file found, server
// reachable, token accepted) — what a new user needs from `kubectl logs`.
func (a *Agent) firstContact(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	args := []any{"version", version.Version, "state_dir", a.cfg.StateDir, "listen", a.cfg.Listen,
		"kubernetes_metadata", a.cfg.Kubernetes.Enabled, "buffer_bytes", a.cfg.BufferBytes.String()}
	var sources, sinks []any
	for i, in := range a.inputs {
		sources = append(sources, slog.Group(in.Name, append(describeSource(a.cfg.Sources[i]), "check", verdict(ctx, in.Source))...))
	}
	for i, out := range a.outputs {
		sinks = append(sinks, slog.Group(out.Name, append(describeSink(a.cfg.Sinks[i]), "check", verdict(ctx, out.Sink))...))
	}
	args = append(args, slog.Group("sources", sources...), slog.Group("sinks", sinks...))
	if len(a.routes) > 0 {
		var routes []string
		for i := range a.routes {
			routes = append(routes, a.routes[i].DisplayName())
		}
		args = append(args, "routes", routes)
	}
	a.log.Info("siemship started", args...)
}

func verdict(ctx context.Context, c pipeline.Component) string {
	if err := c.Verify(ctx); err != nil {
		return err.Error()
	}
	return "ok"
}

func describeSource(s config.Source) []any {
	args := []any{"type", s.Type}
	switch {
	case s.Tetragon != nil:
		args = append(args, "path", s.Tetragon.Path, "max_line_bytes", s.Tetragon.MaxLineBytes)
	case s.Logpush != nil:
		args = append(args, "listen", s.Logpush.Listen, "tls", s.Logpush.TLSCertFile != "")
	case s.Falcon != nil:
		args = append(args, "cloud", s.Falcon.Cloud, "base_url", s.Falcon.BaseURL, "app_id", s.Falcon.AppID)
	case s.FalconAPI != nil:
		args = append(args, "resources", s.FalconAPI.Resources, "interval", s.FalconAPI.Interval.String())
	}
	return args
}

func describeSink(s config.Sink) []any {
	args := []any{"type", s.Type}
	switch {
	case s.LogScale != nil:
		args = append(args, "url", s.LogScale.URL, "format", s.LogScale.Format, "batch_events", s.LogScale.MaxEvents)
	case s.HTTP != nil:
		args = append(args, "url", redactedURL(s.HTTP.URL), "batch_events", s.HTTP.MaxEvents)
	case s.Syslog != nil:
		args = append(args, "address", s.Syslog.Address, "transport", s.Syslog.Transport, "format", s.Syslog.Format, "body", s.Syslog.Body)
	}
	return args
}

// statusLoop logs one line every status_interval, the heartbeat that
// `kubectl logs` readers look for.
func (a *Agent) statusLoop(ctx context.Context) {
	t := time.NewTicker(a.cfg.StatusInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		a.log.Info("status", a.statusArgs()...)
		for _, in := range a.inputs {
			if src, ok := in.Source.(*tetragon.Source); ok {
				st := src.Stats()
				a.warnAtRisk(in.Name, st)
				a.warnSpoolRoom(in.Name, st)
			}
		}
	}
}

// statusArgs are readiness, each component's status fields by name, and
// the reasons of what is not ready.
func (a *Agent) statusArgs() []any {
	ready, checks := a.readiness()
	var sources, sinks []any
	for _, in := range a.inputs {
		sources = append(sources, slog.Group(in.Name, in.Source.Status()...))
	}
	for _, out := range a.outputs {
		sinks = append(sinks, slog.Group(out.Name, out.Sink.Status()...))
	}
	args := []any{"ready", ready, slog.Group("sources", sources...), slog.Group("sinks", sinks...)}
	for name, c := range checks {
		if !c.OK {
			args = append(args, name, c.Detail)
		}
	}
	return args
}

func (a *Agent) warnAtRisk(name string, st tetragon.Stats) {
	if !atRisk(st) {
		return
	}
	a.log.Warn("falling behind Tetragon: unread rotated files, Tetragon deletes the oldest after rotations_before_loss more rotations",
		"source", name, "files_behind", st.FilesBehind, "lag_bytes", st.LagBytes, "rotations_before_loss", st.RotationsBeforeLoss,
		"hint", "see why the sinks are slow or refusing in the lines above; raise the sink's concurrency, or Tetragon's exportFileMaxBackups and exportFileMaxSizeMB")
}

// atRisk says whether the reader is so far behind that Tetragon may delete
// a file before it is read. One file behind is normal for a moment after a
// rotation (the old file is drained first); more, or one rotation left
// before a deletion, is not.
func atRisk(st tetragon.Stats) bool {
	return st.FilesBehind > 1 || st.FilesBehind > 0 && st.RotationsBeforeLoss <= 1
}

// roomer is a sink behind a disk spool (spool.Sink).
type roomer interface{ Room() int64 }

var _ roomer = (*spool.Sink)(nil)

// shortSpool is a spooled sink with less room left than Tetragon keeps.
type shortSpool struct {
	sink string
	room int64
}

// shortSpools returns the spooled sinks fed by source (per routes; none:
// every sink) whose room left is under retained, what Tetragon keeps on
// disk. Such a spool fills before Tetragon's files would: then it blocks
// (and the reader falls behind with only Tetragon's retention left) or
// drops, so rotations_before_loss alone overstates the margin.
func shortSpools(source string, routes []pipeline.Route, outputs []pipeline.Output, retained int64) []shortSpool {
	fed := map[string]bool{}
	for _, r := range routes {
		if r.From == source {
			for _, to := range r.To {
				fed[to] = true
			}
		}
	}
	var short []shortSpool
	for _, out := range outputs {
		sp, ok := out.Sink.(roomer)
		if !ok || len(routes) > 0 && !fed[out.Name] {
			continue
		}
		if room := sp.Room(); retained > 0 && room < retained {
			short = append(short, shortSpool{sink: out.Name, room: room})
		}
	}
	return short
}

func (a *Agent) warnSpoolRoom(source string, st tetragon.Stats) {
	for _, sp := range shortSpools(source, a.routes, a.outputs, st.RetainedBytes) {
		a.log.Warn("a spool has less room left than Tetragon keeps on disk: when it fills it blocks or drops, and only Tetragon's files are left to wait in",
			"source", source, "sink", sp.sink, "spool_room_bytes", sp.room, "tetragon_bytes", st.RetainedBytes,
			"files_behind", st.FilesBehind, "rotations_before_loss", st.RotationsBeforeLoss,
			"hint", "see why the sink is slow or refusing; raise the spool's max_bytes or free the disk under it")
	}
}
