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
		Short: "Ship events from the configured sources to the configured sinks",
		Long: "Runs the agent until SIGTERM or SIGINT, then delivers the events in flight within\n" +
			"shutdown_grace, saves the checkpoints and exits 0. Tokens come from each sink's\n" +
			"token_file or its environment variable (see the README), never from the command line.",
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
			a, err := agent.New(cfg, log)
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
