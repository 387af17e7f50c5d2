package cli

import (
	"fmt"
	"os"
	"runtime/pprof"

	"github.com/spf13/cobra"

	"github.com/siemship/siemship/internal/agent"
	"github.com/siemship/siemship/internal/config"
)

func newRunCmd() *cobra.Command {
	var path, cpuProfile string
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Tail Tetragon's export and ship it to LogScale",
		Long: "Runs the agent until SIGTERM or SIGINT, then delivers the events in flight within\n" +
			"shutdown_grace, saves the checkpoint and exits 0. The ingest token comes from\n" +
			"sinks.logscale.token_file or " + config.TokenEnv + ", never from the command line.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cpuProfile != "" {
				stop, err := startCPUProfile(cpuProfile)
				if err != nil {
					return err
				}
				defer stop()
			}
			cfg, warnings, err := config.Load(configPath(path), cmd.Flags())
			if err != nil {
				return err
			}
			log := agent.NewLogger(cfg.Log, os.Stderr)
			for _, w := range warnings {
				log.Warn(w)
			}
			token, err := cfg.Sinks.LogScale.ReadToken()
			if err != nil {
				return err
			}
			a, err := agent.New(cfg, token, log)
			if err != nil {
				return err
			}
			if err := a.Run(cmd.Context()); err != nil {
				return fmt.Errorf("agent stopped: %w", err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&path, "config", "", "YAML configuration file (env SIEMSHIP_CONFIG)")
	cmd.Flags().StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile to this file until the agent stops (for performance work)")
	cmd.Flags().MarkHidden("cpuprofile") //nolint:errcheck // the flag exists
	config.AddFlags(cmd.Flags())
	return cmd
}

func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create CPU profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("start CPU profile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// configPath falls back to SIEMSHIP_CONFIG so a container needs no arguments.
func configPath(flag string) string {
	if flag != "" {
		return flag
	}
	return os.Getenv("SIEMSHIP_CONFIG")
}
