// Package cli holds siemship's commands. main only calls Execute.
package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	emulator "github.com/siemship/siemship/internal/emulators/logscale"
	"github.com/siemship/siemship/internal/version"
)

// Execute runs the command line and returns the process exit code.
func Execute() int {
	// SIGTERM (kubelet) and SIGINT (a terminal) both mean: stop gracefully.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := newRoot().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "siemship:", err)
		return 1
	}
	return 0
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "siemship",
		Short:         "Ship security events to SIEMs without losing any",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version.Version,
	}
	root.SetVersionTemplate("siemship {{.Version}}\n")
	root.AddCommand(newRunCmd(), newCheckCmd(), newVersionCmd(), newDemoCmd(), emulator.NewCommand(), newLogScaleCmd(), newCheckpointCmd())
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "siemship", version.Version)
		},
	}
}
