package cli

import (
	"github.com/spf13/cobra"

	"github.com/siemship/siemship/internal/demo"
)

func newDemoCmd() *cobra.Command {
	o := demo.Options{}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the whole pipeline locally: a Tetragon-like writer with real rotations, the agent, and a LogScale-compatible receiver",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return demo.Run(cmd.Context(), o, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Events, "events", 50000, "events to write")
	f.IntVar(&o.Rate, "rate", 5000, "events per second")
	f.IntVar(&o.RotateKiB, "rotate-kib", 2048, "rotate the export file after this many KiB")
	f.IntVar(&o.Backups, "backups", 5, "backups Tetragon keeps")
	f.BoolVar(&o.Compress, "compress", true, "gzip rotated backups, as Tetragon's tarball install does")
	f.Float64Var(&o.Faults, "faults", 0.1, "fraction of requests the receiver fails")
	f.StringVar(&o.Dir, "dir", "", "work directory (default: a temporary directory)")
	f.BoolVar(&o.Verbose, "verbose", false, "show the agent's log")
	return cmd
}
