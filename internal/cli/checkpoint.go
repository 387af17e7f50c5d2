package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	"github.com/siemship/siemship/internal/checkpoints"
	"github.com/siemship/siemship/internal/config"
	"github.com/siemship/siemship/internal/leader"
	"github.com/siemship/siemship/internal/sources/falconapi"
	"github.com/siemship/siemship/internal/sources/falconstream"
)

func newCheckpointCmd() *cobra.Command {
	var path, kubeconfig, namespace string
	cmd := &cobra.Command{
		Use:   "checkpoint",
		Short: "Show or reset the sources' checkpoints (state_dir, or the leader's ConfigMap)",
		Long: "Each source's checkpoint is where the agent keeps it: a file in state_dir, or, with\n" +
			"leader_election enabled, the falcon sources' key in leader_election.offsets_configmap\n" +
			"(read with leader_election.kubeconfig, or --kubeconfig from outside the cluster).",
		Args: cobra.NoArgs,
	}
	cmd.PersistentFlags().StringVar(&path, "config", "", "YAML configuration file (env SIEMSHIP_CONFIG)")
	cmd.PersistentFlags().StringVar(&kubeconfig, "kubeconfig", "", "with leader_election: a kubeconfig file (default: leader_election.kubeconfig, else in-cluster)")
	cmd.PersistentFlags().StringVar(&namespace, "namespace", "", "with leader_election: the namespace of the Lease and ConfigMap (default: leader_election.namespace, else the pod's)")
	open := func() (*checkpointPlaces, error) { return openCheckpoints(path, kubeconfig, namespace) }
	show := &cobra.Command{
		Use:   "show",
		Short: "Print each source's checkpoint in words",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := open()
			if err != nil {
				return err
			}
			return p.show(cmd.Context(), cmd.OutOrStdout())
		},
	}
	var source, resource, to string
	reset := &cobra.Command{
		Use:   "reset",
		Short: "Make a source re-read: tetragon per start_at, falcon_stream per start_at, falcon_api from --to (or start_from)",
		Long: "Stop the agent first: a running agent overwrites its checkpoint. Under leader election\n" +
			"scale the Deployment to zero: the reset takes the Lease for its write and refuses while\n" +
			"an agent holds it.\n" +
			"tetragon: removes the checkpoint, so start_at applies at the next start.\n" +
			"falcon_stream: forgets every partition's offset, so start_at applies.\n" +
			"falcon_api: sets the high-water mark of --resource (every resource without it)\n" +
			"to --to (RFC 3339), or removes it so start_from applies.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := open()
			if err != nil {
				return err
			}
			return p.reset(cmd.Context(), cmd.OutOrStdout(), source, resource, to)
		},
	}
	reset.Flags().StringVar(&source, "source", "", "name of the source (required)")
	reset.Flags().StringVar(&resource, "resource", "", "falcon_api: the resource to reset (default: all)")
	reset.Flags().StringVar(&to, "to", "", "falcon_api: re-ingest from this RFC 3339 time (default: start_from)")
	reset.MarkFlagRequired("source") //nolint:errcheck // the flag exists
	cmd.AddCommand(show, reset)
	return cmd
}

var quietKlog sync.Once

// checkpointPlaces finds each source's checkpoint where the agent keeps it.
type checkpointPlaces struct {
	cfg     *config.Config
	files   *checkpoints.Store
	elector *leader.Elector // nil without leader election
}

func openCheckpoints(path, kubeconfig, namespace string) (*checkpointPlaces, error) {
	cfg, _, err := config.Load(configPath(path), nil)
	if err != nil {
		return nil, err
	}
	p := &checkpointPlaces{cfg: cfg}
	// Only when a checkpoint is there: run from a workstation against a
	// ConfigMap, the pod's state_dir does not exist.
	if slices.ContainsFunc(cfg.Sources, p.inFile) {
		if p.files, err = checkpoints.Open(cfg.StateDir); err != nil {
			return nil, err
		}
	}
	if cfg.LeaderElection.Enabled && slices.ContainsFunc(cfg.Sources, cfg.CheckpointInConfigMap) {
		le := cfg.LeaderElection
		if kubeconfig != "" {
			le.Kubeconfig = kubeconfig
		}
		if namespace != "" {
			le.Namespace = namespace
		}
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		// client-go's progress lines are not for a terminal. klog's logger
		// is process-wide: set it once, before any client runs.
		quietKlog.Do(func() { klog.SetSlogLogger(log) })
		if p.elector, err = leader.New(le, prometheus.NewRegistry(), log); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// inFile reports whether s keeps a checkpoint in state_dir.
func (p *checkpointPlaces) inFile(s config.Source) bool {
	return s.Logpush == nil && !p.cfg.CheckpointInConfigMap(s)
}

// at is the checkpoint of s, reading the ConfigMap through cm.
func (p *checkpointPlaces) at(s config.Source, cm *leader.ConfigMapStore) checkpoints.Location {
	if p.cfg.CheckpointInConfigMap(s) {
		return checkpoints.InBlobs(cm, s.Name)
	}
	return p.files.At(s.Name)
}

// tetragonCheckpoint is the part of the Tetragon reader's checkpoint shown.
type tetragonCheckpoint struct {
	Path     string `json:"path"`
	Position struct {
		File struct {
			Name string `json:"name"`
		} `json:"file"`
		Offset int64 `json:"offset"`
	} `json:"position"`
	Fresh bool   `json:"fresh"`
	After string `json:"after"`
}

func (p *checkpointPlaces) show(ctx context.Context, w io.Writer) error {
	var cm *leader.ConfigMapStore
	if p.elector != nil {
		cm = p.elector.ConfigMap() // reading needs no Lease
	}
	for _, s := range p.cfg.Sources {
		if s.Logpush != nil {
			fmt.Fprintf(w, "source %s (%s): keeps no checkpoint (a push is answered only after delivery)\n", s.Name, s.Type)
			continue
		}
		at := p.at(s, cm)
		head := fmt.Sprintf("source %s (%s, %s)", s.Name, s.Type, at)
		switch {
		case s.Tetragon != nil:
			var st tetragonCheckpoint
			ok, err := at.Load(ctx, &st)
			switch {
			case err != nil:
				fmt.Fprintf(w, "%s: unreadable checkpoint: %v\n", head, err)
			case !ok:
				fmt.Fprintf(w, "%s: no checkpoint; the next start begins per start_at (%s)\n", head, s.Tetragon.StartAt)
			case st.Fresh:
				fmt.Fprintf(w, "%s: started in an empty %s; everything after backup %q is new\n", head, st.Path, st.After)
			default:
				fmt.Fprintf(w, "%s: delivered up to byte %d of %s (file then named %s)\n", head, st.Position.Offset, st.Path, st.Position.File.Name)
			}
		case s.Falcon != nil:
			offsets, ok, err := falconstream.Offsets{At: at}.Load(ctx)
			switch {
			case err != nil:
				fmt.Fprintf(w, "%s: unreadable checkpoint: %v\n", head, err)
			case !ok || len(offsets) == 0:
				fmt.Fprintf(w, "%s: no committed offset; partitions begin per start_at (%s)\n", head, s.Falcon.StartAt)
			default:
				fmt.Fprintf(w, "%s: delivered up to offset %s\n", head, describeOffsets(offsets))
			}
		case s.FalconAPI != nil:
			var st falconapi.State
			ok, err := at.Load(ctx, &st)
			switch {
			case err != nil:
				fmt.Fprintf(w, "%s: unreadable checkpoint: %v\n", head, err)
			case !ok:
				fmt.Fprintf(w, "%s: no checkpoint; the next start begins at start_from (%s)\n", head, s.FalconAPI.StartFrom)
			default:
				fmt.Fprintf(w, "%s:\n%s", head, falconapi.Describe(st))
			}
		}
	}
	return nil
}

func describeOffsets(offsets map[string]int64) string {
	var parts []string
	for _, id := range slices.Sorted(maps.Keys(offsets)) {
		parts = append(parts, fmt.Sprintf("%d of partition %s", offsets[id], id))
	}
	return strings.Join(parts, ", ")
}

func (p *checkpointPlaces) reset(ctx context.Context, w io.Writer, source, resource, to string) error {
	s := p.cfg.Source(source)
	if s == nil {
		return fmt.Errorf("no source named %q in the configuration", source)
	}
	var at time.Time
	if to != "" {
		var err error
		if at, err = time.Parse(time.RFC3339Nano, to); err != nil {
			return fmt.Errorf("--to %q: want an RFC 3339 time such as 2025-06-01T00:00:00Z", to)
		}
	}
	if (resource != "" || to != "") && s.FalconAPI == nil {
		return fmt.Errorf("--resource and --to apply to falcon_api sources; a %s reset restarts per start_at", s.Type)
	}
	switch {
	case s.Logpush != nil:
		return fmt.Errorf("source %s (%s) keeps no checkpoint", s.Name, s.Type)
	case s.Tetragon != nil:
		if err := os.Remove(p.files.Path(s.Name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove checkpoint of %s: %w", s.Name, err)
		}
		fmt.Fprintf(w, "source %s: checkpoint removed; the next start begins per start_at (%s)\n", s.Name, s.Tetragon.StartAt)
		return nil
	case !p.cfg.CheckpointInConfigMap(*s):
		return resetAt(ctx, w, *s, p.files.At(s.Name), resource, at)
	}
	// Twice the lease: the agents release it when they stop, so this is
	// only the wait after a leader that died without releasing it.
	wait := 2 * p.cfg.LeaderElection.LeaseDuration
	return p.elector.WhileLeading(ctx, wait, func(ctx context.Context, cm *leader.ConfigMapStore) error {
		return resetAt(ctx, w, *s, checkpoints.InBlobs(cm, s.Name), resource, at)
	})
}

// resetAt resets the checkpoint of the falcon source s at loc.
func resetAt(ctx context.Context, w io.Writer, s config.Source, loc checkpoints.Location, resource string, to time.Time) error {
	switch {
	case s.Falcon != nil:
		if err := (falconstream.Offsets{At: loc}).Save(ctx, map[string]int64{}); err != nil {
			return fmt.Errorf("reset %s: %w", s.Name, err)
		}
		fmt.Fprintf(w, "source %s: offsets forgotten in %s; partitions begin per start_at (%s)\n", s.Name, loc, s.Falcon.StartAt)
	case s.FalconAPI != nil:
		resources := s.FalconAPI.Resources
		if resource != "" {
			resources = []string{resource}
		}
		st, err := falconapi.Reset(ctx, loc, resources, to)
		if err != nil {
			return fmt.Errorf("reset %s: %w", s.Name, err)
		}
		fmt.Fprintf(w, "source %s: reset in %s; now:\n%s", s.Name, loc, falconapi.Describe(st))
	}
	return nil
}
