package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/siemship/siemship/internal/checkpoints"
	"github.com/siemship/siemship/internal/config"
	"github.com/siemship/siemship/internal/sources/falconapi"
)

func newCheckpointCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "checkpoint",
		Short: "Show or reset the sources' checkpoints in state_dir",
		Args:  cobra.NoArgs,
	}
	cmd.PersistentFlags().StringVar(&path, "config", "", "YAML configuration file (env SIEMSHIP_CONFIG)")
	show := &cobra.Command{
		Use:   "show",
		Short: "Print each source's checkpoint in words",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, store, err := openCheckpoints(path)
			if err != nil {
				return err
			}
			return showCheckpoints(cmd.OutOrStdout(), cfg, store)
		},
	}
	var source, resource, to string
	reset := &cobra.Command{
		Use:   "reset",
		Short: "Make a source re-read: tetragon from start_at, falcon_api from --to (or start_from)",
		Long: "Stop the agent first: a running agent overwrites its checkpoint.\n" +
			"tetragon: removes the checkpoint, so start_at applies at the next start.\n" +
			"falcon_api: sets the high-water mark of --resource (every resource without it)\n" +
			"to --to (RFC 3339), or removes it so start_from applies.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, store, err := openCheckpoints(path)
			if err != nil {
				return err
			}
			return resetCheckpoint(cmd.OutOrStdout(), cfg, store, source, resource, to)
		},
	}
	reset.Flags().StringVar(&source, "source", "", "name of the source (required)")
	reset.Flags().StringVar(&resource, "resource", "", "falcon_api: the resource to reset (default: all)")
	reset.Flags().StringVar(&to, "to", "", "falcon_api: re-ingest from this RFC 3339 time (default: start_from)")
	reset.MarkFlagRequired("source") //nolint:errcheck // the flag exists
	cmd.AddCommand(show, reset)
	return cmd
}

func openCheckpoints(path string) (*config.Config, *checkpoints.Store, error) {
	cfg, _, err := config.Load(configPath(path), nil)
	if err != nil {
		return nil, nil, err
	}
	store, err := checkpoints.Open(cfg.StateDir)
	if err != nil {
		return nil, nil, err
	}
	return cfg, store, nil
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

func showCheckpoints(w io.Writer, cfg *config.Config, store *checkpoints.Store) error {
	for _, s := range cfg.Sources {
		switch {
		case s.Tetragon != nil:
			var st tetragonCheckpoint
			ok, err := store.Load(s.Name, &st)
			switch {
			case err != nil:
				fmt.Fprintf(w, "source %s (tetragon): unreadable checkpoint: %v\n", s.Name, err)
			case !ok:
				fmt.Fprintf(w, "source %s (tetragon): no checkpoint; the next start begins per start_at (%s)\n", s.Name, s.Tetragon.StartAt)
			case st.Fresh:
				fmt.Fprintf(w, "source %s (tetragon): started in an empty %s; everything after backup %q is new\n", s.Name, st.Path, st.After)
			default:
				fmt.Fprintf(w, "source %s (tetragon): delivered up to byte %d of %s (file then named %s)\n", s.Name, st.Position.Offset, st.Path, st.Position.File.Name)
			}
		case s.FalconAPI != nil:
			var st falconapi.State
			ok, err := store.Load(s.Name, &st)
			switch {
			case err != nil:
				fmt.Fprintf(w, "source %s (falcon_api): unreadable checkpoint: %v\n", s.Name, err)
			case !ok:
				fmt.Fprintf(w, "source %s (falcon_api): no checkpoint; the next start begins at start_from (%s)\n", s.Name, s.FalconAPI.StartFrom)
			default:
				fmt.Fprintf(w, "source %s (falcon_api):\n%s", s.Name, falconapi.Describe(st))
			}
		default:
			fmt.Fprintf(w, "source %s (%s): keeps no checkpoint (a push is answered only after delivery)\n", s.Name, s.Type)
		}
	}
	return nil
}

func resetCheckpoint(w io.Writer, cfg *config.Config, store *checkpoints.Store, source, resource, to string) error {
	s := cfg.Source(source)
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
	switch {
	case s.Tetragon != nil:
		if resource != "" || to != "" {
			return errors.New("--resource and --to apply to falcon_api sources; a tetragon reset restarts per start_at")
		}
		if err := os.Remove(store.Path(s.Name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove checkpoint of %s: %w", s.Name, err)
		}
		fmt.Fprintf(w, "source %s: checkpoint removed; the next start begins per start_at (%s)\n", s.Name, s.Tetragon.StartAt)
	case s.FalconAPI != nil:
		resources := s.FalconAPI.Resources
		if resource != "" {
			resources = []string{resource}
		}
		st, err := falconapi.Reset(store, s.Name, resources, at)
		if err != nil {
			return fmt.Errorf("reset %s: %w", s.Name, err)
		}
		fmt.Fprintf(w, "source %s: reset; now:\n%s", s.Name, falconapi.Describe(st))
	default:
		return fmt.Errorf("source %s (%s) keeps no checkpoint", s.Name, s.Type)
	}
	return nil
}
