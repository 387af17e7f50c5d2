package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"

	"github.com/siemship/siemship/internal/checkpoints"
	"github.com/siemship/siemship/internal/config"
	"github.com/siemship/siemship/internal/event"
	"github.com/siemship/siemship/internal/pipeline"
	"github.com/siemship/siemship/internal/processing/tetragonparse"
	"github.com/siemship/siemship/internal/secret"
	"github.com/siemship/siemship/internal/sinks/httpingest"
	"github.com/siemship/siemship/internal/sinks/logscale"
	"github.com/siemship/siemship/internal/sinks/syslog"
	"github.com/siemship/siemship/internal/sources/falconapi"
	"github.com/siemship/siemship/internal/sources/falconstream"
	"github.com/siemship/siemship/internal/sources/logpush"
	"github.com/siemship/siemship/internal/sources/tetragon"
	"github.com/siemship/siemship/internal/spool"
	"github.com/siemship/siemship/internal/version"
)

// buildSource builds a source and its processing.
func (a *Agent) buildSource(s config.Source, store *checkpoints.Store, budget *semaphore.Weighted, enrichMu *sync.Mutex) (pipeline.Input, error) {
	log := a.log.With("source", s.Name)
	reg := prometheus.WrapRegistererWith(prometheus.Labels{"source": s.Name}, a.reg)
	switch {
	case s.Tetragon != nil:
		src := tetragon.New(s.Name, *s.Tetragon, store, budget, a.reg, log)
		parser := tetragonparse.New(reg, log)
		return pipeline.Input{Name: s.Name, Source: src, Process: a.tetragonProcessing(parser, enrichMu)}, nil
	case s.Logpush != nil:
		// Records leave the receiver typed and timed: no processing.
		src, err := logpush.New(*s.Logpush, s.Name, budget, a.reg, log)
		if err != nil {
			return pipeline.Input{}, err
		}
		return pipeline.Input{Name: s.Name, Source: src}, nil
	case s.Falcon != nil:
		// Events leave the source typed and timed: no processing.
		c := *s.Falcon
		idRef, secRef := c.CredentialRefs(s.Name)
		var err error
		if c.ClientID, err = readSecret(idRef); err != nil {
			return pipeline.Input{}, err
		}
		if c.ClientSecret, err = readSecret(secRef); err != nil {
			return pipeline.Input{}, err
		}
		src, err := falconstream.New(c, s.Name, falconstream.Offsets{At: a.checkpointAt(s, store)}, budget, a.reg, log)
		if err != nil {
			return pipeline.Input{}, err
		}
		return pipeline.Input{Name: s.Name, Source: a.gated(s, src)}, nil
	case s.FalconAPI != nil:
		c := *s.FalconAPI
		var err error
		if c.ClientID, err = readSecret(c.ClientIDRef(s.Name)); err != nil {
			return pipeline.Input{}, err
		}
		if c.ClientSecret, err = readSecret(c.ClientSecretRef(s.Name)); err != nil {
			return pipeline.Input{}, err
		}
		c.Budget, c.BudgetBytes = budget, int64(a.cfg.BufferBytes)
		// Records leave the source typed and timed: no processing.
		src, err := falconapi.New(s.Name, c, a.checkpointAt(s, store), a.reg, log)
		if err != nil {
			return pipeline.Input{}, err
		}
		return pipeline.Input{Name: s.Name, Source: a.gated(s, src)}, nil
	}
	return pipeline.Input{}, fmt.Errorf("type %q cannot be built", s.Type)
}

// checkpointAt is where source s keeps its checkpoint: under leader
// election a leader-only source keeps it in the ConfigMap every replica
// reads, any other in the state directory.
func (a *Agent) checkpointAt(s config.Source, store *checkpoints.Store) checkpoints.Location {
	if a.cfg.CheckpointInConfigMap(s) {
		return checkpoints.InBlobs(a.offsets, s.Name)
	}
	return store.At(s.Name)
}

// gated runs a leader-only source only while this process leads, when
// leader election is on.
func (a *Agent) gated(s config.Source, src pipeline.Source) pipeline.Source {
	if a.elector == nil || !config.LeaderOnly(s.Type) {
		return src
	}
	return a.elector.Gate(s.Name, src)
}

// tetragonProcessing parses each batch and, when configured, adds
// Kubernetes metadata; before the first batch it waits (bounded) for the
// metadata caches so that start-up events are enriched.
func (a *Agent) tetragonProcessing(parser *tetragonparse.Parser, enrichMu *sync.Mutex) func(context.Context, *event.Batch) {
	var synced sync.Once
	return func(ctx context.Context, b *event.Batch) {
		parser.Parse(b)
		if a.enricher == nil {
			return
		}
		synced.Do(func() {
			if !a.enricher.WaitSynced(ctx, a.cfg.Kubernetes.SyncTimeout) {
				a.log.Warn("kubernetes metadata not synced yet, shipping events with a k8s.miss marker until it is",
					"waited", a.cfg.Kubernetes.SyncTimeout.String())
			}
		})
		enrichMu.Lock()
		defer enrichMu.Unlock()
		a.enricher.Enrich(b)
	}
}

// BuildSink builds a sink, reading its secrets; `siemship check` verifies
// with exactly what the agent will use. log gets the sink's name added.
func BuildSink(s config.Sink, reg prometheus.Registerer, log *slog.Logger) (pipeline.Sink, error) {
	log = log.With("sink", s.Name)
	switch {
	case s.LogScale != nil:
		c := *s.LogScale
		tok, err := readSecret(c.TokenRef(s.Name))
		if err != nil {
			return nil, err
		}
		c.Token, c.Version = tok, version.Version
		sink, err := logscale.New(c, s.Name, reg, log)
		return withSpool(c.Spool, s.Name, sink, err, reg, log)
	case s.HTTP != nil:
		c := *s.HTTP
		tok, err := readSecret(c.TokenRef(s.Name))
		if err != nil {
			return nil, err
		}
		c.Token, c.Version = tok, version.Version
		sink, err := httpingest.New(c, s.Name, reg, log)
		return withSpool(c.Spool, s.Name, sink, err, reg, log)
	case s.Syslog != nil:
		return syslog.New(*s.Syslog, s.Name, reg, log)
	}
	return nil, fmt.Errorf("type %q cannot be built", s.Type)
}

// withSpool puts the sink behind its disk spool when one is enabled.
func withSpool[S pipeline.Sink](cfg spool.Config, name string, sink S, err error, reg prometheus.Registerer, log *slog.Logger) (pipeline.Sink, error) {
	if err != nil {
		return nil, err
	}
	if !cfg.Enabled {
		return sink, nil
	}
	return spool.New(cfg, name, sink, reg, log)
}

func readSecret(ref secret.Ref) (secret.Secret, error) {
	tok, _, err := ref.Read()
	return tok, err
}

// SecretSource says where the secret of a sink comes from, for `check`
// ("file /etc/…" or "environment variable …"), or why it cannot be read.
func SecretSource(s config.Sink) (string, error) {
	var ref secret.Ref
	switch {
	case s.LogScale != nil:
		ref = s.LogScale.TokenRef(s.Name)
	case s.HTTP != nil:
		ref = s.HTTP.TokenRef(s.Name)
	default:
		return "", nil
	}
	_, from, err := ref.Read()
	return from, err
}

// redactedURL keeps scheme and host of a URL whose path may be secret
// (ingest URLs often embed an integration id).
func redactedURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "[unparsable URL]"
	}
	if u.Path != "" && u.Path != "/" {
		u.Path = "/…"
	}
	u.RawQuery, u.User = "", nil
	return u.String()
}
