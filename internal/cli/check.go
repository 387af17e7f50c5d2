package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/siemship/siemship/internal/agent"
	"github.com/siemship/siemship/internal/config"
	"github.com/siemship/siemship/internal/sinks/logscale"
)

func newCheckCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Validate the configuration, reach LogScale and try the ingest token without sending data",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return check(cmd.Context(), cmd.OutOrStdout(), configPath(path), cmd)
		},
	}
	cmd.Flags().StringVar(&path, "config", "", "YAML configuration file (env SIEMSHIP_CONFIG)")
	config.AddFlags(cmd.Flags())
	return cmd
}

func check(ctx context.Context, w io.Writer, path string, cmd *cobra.Command) error {
	cfg, warnings, err := config.Load(path, cmd.Flags())
	if err != nil {
		fmt.Fprintf(w, "configuration: INVALID\n%v\n", err)
		return errors.New("configuration is invalid")
	}
	fmt.Fprintln(w, "configuration: ok")
	for _, wn := range warnings {
		fmt.Fprintln(w, "  warning:", wn)
	}
	problems := 0
	if msg, ok := checkTetragonFile(cfg.Sources.Tetragon.Path); ok {
		fmt.Fprintln(w, "tetragon file:", msg)
	} else {
		fmt.Fprintln(w, "tetragon file: PROBLEM:", msg)
		problems++
	}
	token, err := cfg.Sinks.LogScale.ReadToken()
	if err != nil {
		fmt.Fprintln(w, "ingest token: PROBLEM:", err)
		return errors.New("no ingest token")
	}
	err = logscale.Verify(ctx, agent.SinkConfig(cfg, token))
	var ve *logscale.VerifyError
	switch {
	case err == nil:
		fmt.Fprintf(w, "logscale: %s reachable\ningest token: accepted\n", cfg.Sinks.LogScale.URL)
	case errors.As(err, &ve) && ve.Kind == logscale.Unreachable:
		fmt.Fprintf(w, "logscale: PROBLEM: %v\ningest token: not checked\n", err)
		problems++
	case errors.As(err, &ve) && ve.Kind == logscale.Unverified:
		fmt.Fprintf(w, "logscale: %s reachable\ningest token: %v\n", cfg.Sinks.LogScale.URL, err)
	default:
		fmt.Fprintf(w, "logscale: %s reachable\ningest token: REJECTED: %v\n", cfg.Sinks.LogScale.URL, err)
		problems++
	}
	if problems > 0 {
		return fmt.Errorf("%d problem(s) found", problems)
	}
	return nil
}

// checkTetragonFile says whether the export file (or its directory) is there.
func checkTetragonFile(path string) (string, bool) {
	f, err := os.Open(path)
	if err == nil {
		f.Close()
		return path + " is readable", true
	}
	if errors.Is(err, os.ErrNotExist) {
		if _, derr := os.Stat(filepath.Dir(path)); derr != nil {
			return fmt.Sprintf("directory %s does not exist: mount Tetragon's export directory (hostPath) into the pod", filepath.Dir(path)), false
		}
		return fmt.Sprintf("%s does not exist yet: is Tetragon's JSON export enabled? (the agent waits for it)", path), false
	}
	if errors.Is(err, os.ErrPermission) {
		return fmt.Sprintf("%s: permission denied: run as uid 0 or set Tetragon's exportFilePerm to 640/644", path), false
	}
	return err.Error(), false
}
