package logscale

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/siemship/siemship/internal/emulators/faults"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"
)

// Environment variables read by the receiver command, so that secrets need
// not appear on a command line (and so in a pod spec or `ps`).
const (
	EnvTokens    = "SIEMSHIP_RECEIVER_TOKENS"     // comma-separated TOKEN=REPO[:PARSER]
	EnvAPITokens = "SIEMSHIP_RECEIVER_API_TOKENS" // comma-separated API tokens
)

type cmdOptions struct {
	listen       string
	tokens       []string
	apiTokens    []string
	repos        []string
	discard      bool
	faultRate    float64
	faultSeed    int64
	slowDelay    time.Duration
	maxBody      string
	logEvery     time.Duration
	noInspection bool
}

// NewCommand returns the `receiver` command: a standalone LogScale-compatible
// receiver for the local demo and in-cluster tests. It stops cleanly when
// the command's context is cancelled.
func NewCommand() *cobra.Command {
	var o cmdOptions
	cmd := &cobra.Command{
		Use:   "receiver",
		Short: "Run a strict LogScale-compatible receiver (tests and demos)",
		Long: "Run a strict LogScale-compatible receiver: ingest endpoints, GraphQL setup API, packages,\n" +
			"fault injection and an inspection API under /_emulator/. Ingest tokens come from --token\n" +
			"and " + EnvTokens + ", API tokens from --api-token and " + EnvAPITokens + ".",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd) },
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", "127.0.0.1:8080", "address to listen on")
	f.StringArrayVar(&o.tokens, "token", nil, "ingest token as TOKEN=REPO[:PARSER] (repeatable)")
	f.StringArrayVar(&o.apiTokens, "api-token", nil, "API token for /graphql and packages (repeatable)")
	f.StringArrayVar(&o.repos, "repo", nil, "repository that exists without an ingest token (repeatable)")
	f.BoolVar(&o.discard, "discard", false, "validate fully but keep only counters")
	f.Float64Var(&o.faultRate, "faults", 0, "fraction of ingest requests answered with a random fault (0-1)")
	f.Int64Var(&o.faultSeed, "fault-seed", 1, "seed of the random faults")
	f.DurationVar(&o.slowDelay, "slow-delay", faults.DefaultSlowDelay, "delay of a slow-answer fault")
	f.StringVar(&o.maxBody, "max-body", "32MiB", "largest request body after decompression")
	f.DurationVar(&o.logEvery, "log-interval", 10*time.Second, "how often to log counters")
	f.BoolVar(&o.noInspection, "no-inspection", false, "disable the /_emulator/ inspection API")
	return cmd
}

func (o *cmdOptions) run(cmd *cobra.Command) error {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil)).With("component", "receiver")
	cfg, err := o.config(os.Getenv)
	if err != nil {
		return err
	}
	cfg.Logger = log
	s := New(cfg)
	if o.faultRate > 0 {
		s.SetFaults(Faults{Rate: o.faultRate, Seed: o.faultSeed, SlowDelay: o.slowDelay})
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", o.listen, err)
	}
	log.Info("listening", "addr", ln.Addr().String(), "ingest_tokens", len(cfg.Tokens),
		"api_tokens", len(cfg.APITokens), "discard", cfg.Discard, "faults", o.faultRate,
		"max_body", humanize.IBytes(uint64(cfg.MaxBodyBytes)))
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.Serve(gctx, ln) })
	g.Go(func() error {
		s.logCounters(gctx, log, o.logEvery)
		return nil
	})
	return g.Wait()
}

// config builds the Config from flags and the environment (getenv).
func (o *cmdOptions) config(getenv func(string) string) (Config, error) {
	maxBody, err := humanize.ParseBytes(o.maxBody)
	if err != nil || maxBody == 0 {
		return Config{}, fmt.Errorf("--max-body %q: want a size like 32MiB", o.maxBody)
	}
	cfg := Config{
		Tokens: map[string]Token{}, Repos: o.repos, Discard: o.discard,
		MaxBodyBytes: int64(maxBody), DisableInspection: o.noInspection,
	}
	specs := append(splitList(getenv(EnvTokens)), o.tokens...)
	for i, spec := range specs {
		tok, t, err := parseTokenSpec(spec)
		if err != nil {
			return Config{}, fmt.Errorf("ingest token %d: %w", i+1, err)
		}
		cfg.Tokens[tok] = t
	}
	cfg.APITokens = append(splitList(getenv(EnvAPITokens)), o.apiTokens...)
	return cfg, nil
}

// parseTokenSpec parses TOKEN=REPO[:PARSER]. Errors never echo the token.
func parseTokenSpec(spec string) (string, Token, error) {
	tok, rest, ok := strings.Cut(strings.TrimSpace(spec), "=")
	repo, parser, _ := strings.Cut(rest, ":")
	if !ok || tok == "" || repo == "" {
		return "", Token{}, fmt.Errorf("want TOKEN=REPO[:PARSER]")
	}
	return tok, Token{Repo: repo, Parser: parser}, nil
}

func splitList(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// logCounters logs one line of counters every interval until ctx is done.
func (s *Server) logCounters(ctx context.Context, log *slog.Logger, every time.Duration) {
	if every <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	var last int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st := s.Stats()
		log.Info("counters", "events", st.Events, "events_per_s", float64(st.Events-last)/every.Seconds(),
			"requests", st.Requests, "by_status", st.RequestsByStatus, "faults", st.Faults,
			"decoded", humanize.IBytes(uint64(st.DecodedBytes)))
		last = st.Events
	}
}
