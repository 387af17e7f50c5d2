package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"golang.org/x/sync/semaphore"

	"github.com/siemship/siemship/internal/agent"
	"github.com/siemship/siemship/internal/config"
	"github.com/siemship/siemship/internal/processing/k8smeta"
	"github.com/siemship/siemship/internal/sources/falconstream"
	"github.com/siemship/siemship/internal/sources/logpush"
	"github.com/siemship/siemship/internal/sources/tetragon"
)

func newCheckCmd() *cobra.Command {
	var path string
	var configOnly bool
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Validate the configuration and check every source and sink without moving data",
		Long: "Validates the configuration, the state directory, each source (e.g. the Tetragon file is\n" +
			"readable) and each sink (reachable, token accepted, without sending events), and, with\n" +
			"Kubernetes metadata on, the kubeconfig and every permission the agent's ClusterRole grants.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return check(cmd.Context(), cmd.OutOrStdout(), configPath(path), cmd, configOnly)
		},
	}
	cmd.Flags().StringVar(&path, "config", "", "YAML configuration file (env SIEMSHIP_CONFIG)")
	cmd.Flags().BoolVar(&configOnly, "config-only", false, "only validate the configuration (no files, servers or API calls)")
	config.AddFlags(cmd.Flags())
	return cmd
}

func check(ctx context.Context, w io.Writer, path string, cmd *cobra.Command, configOnly bool) error {
	cfg, warnings, err := config.Load(path, cmd.Flags())
	if err != nil {
		fmt.Fprintf(w, "configuration: INVALID\n%v\n", err)
		return errors.New("configuration is invalid")
	}
	fmt.Fprintln(w, "configuration: ok")
	for _, wn := range warnings {
		fmt.Fprintln(w, "  warning:", wn)
	}
	if configOnly {
		return nil
	}
	problems := 0
	report := func(what string, err error, ok string) {
		if err != nil {
			fmt.Fprintf(w, "%s: PROBLEM: %v\n", what, err)
			problems++
			return
		}
		fmt.Fprintf(w, "%s: %s\n", what, ok)
	}
	report("state_dir", config.CheckStateDir(cfg.StateDir), cfg.StateDir+" is writable")
	for _, s := range cfg.Sources {
		switch {
		case s.Tetragon != nil:
			report("source "+s.Name, tetragon.CheckFile(s.Tetragon.Path), s.Tetragon.Path+" is readable")
		case s.Logpush != nil:
			src, err := logpush.New(*s.Logpush, s.Name, semaphore.NewWeighted(int64(cfg.BufferBytes)), prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
			if err == nil {
				err = src.Verify(ctx)
			}
			report("source "+s.Name, err, "secret file and TLS pair are readable")
		case s.Falcon != nil:
			report("source "+s.Name, checkFalcon(ctx, s), "credentials accepted (token obtained)")
		}
	}
	discard := slog.New(slog.DiscardHandler)
	for _, s := range cfg.Sinks {
		from, err := agent.SecretSource(s)
		if err != nil {
			report("sink "+s.Name, err, "")
			continue
		}
		if from != "" {
			fmt.Fprintf(w, "sink %s: token from %s\n", s.Name, from)
		}
		sink, err := agent.BuildSink(s, prometheus.NewRegistry(), discard)
		if err == nil {
			err = sink.Verify(ctx)
		}
		report("sink "+s.Name, err, "reachable, token accepted")
	}
	if cfg.Kubernetes.Enabled {
		for _, line := range k8smeta.CheckAccess(ctx, cfg.Kubernetes) {
			report("kubernetes", line.Err, line.OK)
		}
	}
	if problems > 0 {
		return fmt.Errorf("%d problem(s) found", problems)
	}
	return nil
}

// checkFalcon reads the Falcon credentials and obtains a token with them;
// it does not discover streams (that would take the appId's session from a
// running agent).
func checkFalcon(ctx context.Context, s config.Source) error {
	c := *s.Falcon
	idRef, secRef := c.CredentialRefs(s.Name)
	var err error
	if c.ClientID, _, err = idRef.Read(); err != nil {
		return err
	}
	if c.ClientSecret, _, err = secRef.Read(); err != nil {
		return err
	}
	src, err := falconstream.New(c, s.Name, nil, nil, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	return src.Verify(ctx)
}
