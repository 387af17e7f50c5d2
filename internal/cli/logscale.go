package cli

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/siemship/siemship/internal/logscalesetup"
	"github.com/siemship/siemship/logscale"
)

// apiTokenEnv holds the LogScale API token for `logscale setup`.
const apiTokenEnv = "LOGSCALE_API_TOKEN"

func newLogScaleCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "logscale",
		Short: "Prepare LogScale for siemship: parser, dashboard, ingest token",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newLogScaleSetupCmd(), newLogScalePackageCmd())
	return cmd
}

type setupOptions struct {
	url, ingestURL, apiTokenFile, tokenOut, namespace, secretName string
	opts                                                          logscalesetup.Options
}

func newLogScaleSetupCmd() *cobra.Command {
	var o setupOptions
	cmd := &cobra.Command{
		Use:   "setup --url URL --repo REPO",
		Short: "Create or update the Tetragon parser and dashboard, and an ingest token assigned the parser",
		Long: "Speaks LogScale's GraphQL API with a personal or organization API token, read from\n" +
			"--api-token-file or " + apiTokenEnv + " (never a flag value). The repository must exist.\n" +
			"Running it again updates the parser in place and keeps the token. The ingest token is\n" +
			"written to --token-out (mode 0600), never printed, and the next step is printed: the\n" +
			"kubectl command that stores it in a Secret.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd) },
	}
	f := cmd.Flags()
	f.StringVar(&o.url, "url", "", "LogScale URL of the UI and API, e.g. https://cloud.community.humio.com (required)")
	f.StringVar(&o.opts.Repo, "repo", "", "repository to prepare (required; create it in the LogScale UI first)")
	f.StringVar(&o.apiTokenFile, "api-token-file", "", "file holding the LogScale API token (default: $"+apiTokenEnv+")")
	f.StringVar(&o.opts.ParserName, "parser-name", "", "parser name (default: the template's, tetragon)")
	f.StringVar(&o.opts.TokenName, "token-name", "siemship", "ingest token to create, or to assign the parser if it exists")
	f.BoolVar(&o.opts.Dashboard, "dashboard", true, "also create the Tetragon dashboard (replacing one of the same name)")
	f.StringVar(&o.tokenOut, "token-out", "siemship-ingest-token", "file to write the ingest token to (mode 0600); - for standard output")
	f.StringVar(&o.ingestURL, "ingest-url", "", "ingest URL for the printed install command, if it differs from --url")
	f.StringVar(&o.namespace, "namespace", "kube-system", "namespace of the printed kubectl command (Tetragon's)")
	f.StringVar(&o.secretName, "secret-name", "siemship-logscale", "Secret name of the printed kubectl command")
	_ = cmd.MarkFlagRequired("url")
	_ = cmd.MarkFlagRequired("repo")
	return cmd
}

func (o *setupOptions) run(cmd *cobra.Command) error {
	apiToken, err := readAPIToken(o.apiTokenFile)
	if err != nil {
		return err
	}
	client, err := logscalesetup.NewClient(o.url, apiToken, &http.Client{Timeout: 30 * time.Second})
	if err != nil {
		return err
	}
	res, err := logscalesetup.Setup(cmd.Context(), client, o.opts)
	if err != nil {
		return err
	}
	// With --token-out -, standard output carries the token alone (for a
	// pipe), so the report goes to standard error.
	report := cmd.OutOrStdout()
	if o.tokenOut == "-" {
		report = cmd.ErrOrStderr()
	}
	fmt.Fprint(report, res)
	written, err := o.writeToken(cmd.OutOrStdout(), res.Token.Token)
	if err != nil {
		return err
	}
	o.printNextStep(report, written)
	return nil
}

// readAPIToken reads the API token from file, else the environment.
func readAPIToken(file string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("read API token file: %w", err)
		}
		if tok := strings.TrimSpace(string(b)); tok != "" {
			return tok, nil
		}
		return "", fmt.Errorf("API token file %s is empty", file)
	}
	if tok := strings.TrimSpace(os.Getenv(apiTokenEnv)); tok != "" {
		return tok, nil
	}
	return "", errors.New("no LogScale API token: set " + apiTokenEnv + " or --api-token-file (a personal or organization API token, not an ingest token)")
}

// writeToken writes the ingest token where --token-out says and reports
// whether it did: LogScale may not return the secret of an existing token.
func (o *setupOptions) writeToken(stdout io.Writer, token string) (bool, error) {
	if token == "" {
		return false, nil
	}
	if o.tokenOut == "-" {
		_, err := fmt.Fprintln(stdout, token)
		return true, err
	}
	f, err := os.OpenFile(o.tokenOut, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return false, fmt.Errorf("write ingest token file: %w", err)
	}
	// An existing file keeps its mode on open: narrow it.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return false, fmt.Errorf("write ingest token file: %w", err)
	}
	if _, err := f.WriteString(token); err != nil {
		f.Close()
		return false, fmt.Errorf("write ingest token file: %w", err)
	}
	if err := f.Close(); err != nil {
		return false, fmt.Errorf("write ingest token file: %w", err)
	}
	return true, nil
}

func (o *setupOptions) printNextStep(w io.Writer, written bool) {
	ingest := o.ingestURL
	if ingest == "" {
		ingest = strings.TrimRight(o.url, "/")
	}
	fmt.Fprintln(w, "\nNext step: store the ingest token in the cluster, then install siemship:")
	switch {
	case !written:
		fmt.Fprintf(w, "  # LogScale did not return the token's secret: copy it from the repository's settings (Ingest tokens)\n")
		fmt.Fprintf(w, "  kubectl -n %s create secret generic %s --from-literal=token=<ingest token>\n", o.namespace, o.secretName)
	case o.tokenOut == "-":
		fmt.Fprintf(w, "  # the token went to standard output, e.g. piped into:\n")
		fmt.Fprintf(w, "  kubectl -n %s create secret generic %s --from-file=token=/dev/stdin\n", o.namespace, o.secretName)
	default:
		fmt.Fprintf(w, "  kubectl -n %s create secret generic %s --from-file=token=%s\n", o.namespace, o.secretName, o.tokenOut)
		fmt.Fprintf(w, "  rm %s\n", o.tokenOut)
	}
	fmt.Fprintf(w, "  helm install siemship chart/siemship -n %s --set config.sinks.logscale.url=%s\n", o.namespace, ingest)
	fmt.Fprintf(w, "Then: kubectl -n %s logs daemonset/siemship | grep 'siemship started'\n", o.namespace)
}

func newLogScalePackageCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "package -o FILE",
		Short: "Write the LogScale package (parser and dashboard) as a zip for the LogScale UI or /api/v1/packages/install",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			zip, err := logscale.PackageZip()
			if err != nil {
				return err
			}
			if err := os.WriteFile(out, zip, 0o644); err != nil {
				return fmt.Errorf("write package: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (%d bytes)\n", out, len(zip))
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "siemship-tetragon-package.zip", "zip file to write")
	return cmd
}
