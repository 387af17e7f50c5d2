package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/siemship/siemship/internal/sinks/logscale"
	"github.com/siemship/siemship/internal/sources/tetragon"
	"github.com/siemship/siemship/internal/version"
)

// firstContact logs one summary at start: the configuration in effect, the
// Tetragon file, LogScale's reachability and the token's verdict — the four
// things a new user needs to know from `kubectl logs`.
func (a *Agent) firstContact(ctx context.Context) {
	c := a.cfg
	t := c.Sources.Tetragon
	fileState := "found"
	if fi, err := os.Stat(t.Path); err != nil {
		fileState = describeFileError(err)
	} else {
		fileState = fmt.Sprintf("found (%d bytes)", fi.Size())
	}
	verifyCtx, cancel := context.WithTimeout(ctx, c.Sinks.LogScale.Timeout)
	defer cancel()
	reach, token := "reachable", "accepted"
	if err := a.sink.Verify(verifyCtx); err != nil {
		var ve *logscale.VerifyError
		switch {
		case errors.As(err, &ve) && ve.Kind == logscale.Unreachable:
			reach, token = "unreachable: "+err.Error(), "not checked"
		case errors.As(err, &ve) && ve.Kind == logscale.Unverified:
			token = err.Error()
		default:
			token = "rejected: " + err.Error()
		}
	}
	a.log.Info("siemship started",
		"version", version.Version,
		"tetragon_file", t.Path, "tetragon_file_state", fileState,
		"logscale_url", c.Sinks.LogScale.URL, "logscale", reach, "ingest_token", token,
		"format", c.Sinks.LogScale.Format, "state_dir", c.StateDir, "listen", c.Listen,
		"kubernetes_metadata", c.Kubernetes.Enabled,
		"batch_events", c.Sinks.LogScale.BatchEvents, "batch_bytes", c.Sinks.LogScale.BatchBytes.String(),
		"buffer_bytes", c.BufferBytes.String(), "max_line_bytes", t.MaxLineBytes.String())
}

func describeFileError(err error) string {
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "not found: is Tetragon's export enabled (tetragon.exportFilename) and its directory mounted into this pod?"
	case errors.Is(err, os.ErrPermission):
		return "permission denied: the agent must run as uid 0, or Tetragon's exportFilePerm must allow reading"
	}
	return err.Error()
}

// statusLoop logs one line every status_interval, the heartbeat that
// `kubectl logs` readers look for.
func (a *Agent) statusLoop(ctx context.Context) {
	t := time.NewTicker(a.cfg.StatusInterval)
	defer t.Stop()
	var prevRead, prevAcked int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st := a.source.Stats()
		ready, checks := a.readiness()
		args := []any{
			"ready", ready,
			"events_read", st.EventsRead, "events_acked", st.EventsAcked,
			"read_per_s", float64(st.EventsRead-prevRead) / a.cfg.StatusInterval.Seconds(),
			"acked_per_s", float64(st.EventsAcked-prevAcked) / a.cfg.StatusInterval.Seconds(),
			"lag_bytes", st.LagBytes, "files_behind", st.FilesBehind,
			"rotations_before_loss", st.RotationsBeforeLoss, "lost_bytes", st.LostBytes,
		}
		for name, c := range checks {
			if !c.OK {
				args = append(args, name, c.Detail)
			}
		}
		a.log.Info("status", args...)
		if atRisk(st) {
			a.log.Warn("falling behind Tetragon: unread rotated files, Tetragon deletes the oldest after rotations_before_loss more rotations",
				"files_behind", st.FilesBehind, "lag_bytes", st.LagBytes, "rotations_before_loss", st.RotationsBeforeLoss,
				"hint", "see why LogScale is slow or refusing in the lines above; raise sinks.logscale.concurrency, or Tetragon's exportFileMaxBackups and exportFileMaxSizeMB")
		}
		prevRead, prevAcked = st.EventsRead, st.EventsAcked
	}
}

// atRisk says whether the reader is so far behind that Tetragon may delete
// a file before it is read. One file behind is normal for a moment after a
// rotation (the old file is drained first); more, or one rotation left
// before a deletion, is not.
func atRisk(st tetragon.Stats) bool {
	return st.FilesBehind > 1 || st.FilesBehind > 0 && st.RotationsBeforeLoss <= 1
}
