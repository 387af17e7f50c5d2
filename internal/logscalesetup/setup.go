package logscalesetup

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/siemship/siemship/logscale"
)

// Options say what Setup prepares.
type Options struct {
	// Repo is the repository (it must exist: LogScale Community creates
	// repositories in the UI only).
	Repo string
	// ParserName names the parser; empty: the template's name ("tetragon").
	ParserName string
	// TokenName names the ingest token to create or bind.
	TokenName string
	// Dashboard also creates the dashboard, replacing same-Asset ones.
	Dashboard bool
}

// Action says what Setup did to an asset.
type Action string

const (
	Created  Action = "created"
	Updated  Action = "updated"
	Replaced Action = "replaced"
	Bound    Action = "bound" // an existing token, now assigned the parser
	Kept     Action = "kept"  // an existing token already assigned the parser
	Skipped  Action = "skipped"
)

// Result reports what Setup did. Token.Token is the ingest token secret:
// never log it.
type Result struct {
	Parser         Asset
	ParserAction   Action
	Dashboard      Asset
	DashAction     Action
	Token          IngestToken
	TokenAction    Action
	PreviousParser string // the token's parser before it was bound, if any
}

// Setup creates or updates the parser, optionally the dashboard, and an
// ingest token assigned to the parser. Running it again converges: the
// parser is updated in place and the same token is kept.
func Setup(ctx context.Context, c *Client, o Options) (*Result, error) {
	if o.Repo == "" || o.TokenName == "" {
		return nil, errors.New("repository and token name are required")
	}
	tmpl := logscale.ParserTemplate()
	p, err := logscale.ParseParser(tmpl)
	if err != nil {
		return nil, err
	}
	if o.ParserName == "" {
		o.ParserName = p.Name
	}
	res := &Result{DashAction: Skipped}
	if res.Parser, res.ParserAction, err = putParser(ctx, c, o, p, tmpl); err != nil {
		return nil, err
	}
	if o.Dashboard {
		if res.Dashboard, res.DashAction, err = putDashboard(ctx, c, o.Repo); err != nil {
			return nil, err
		}
	}
	if err := putToken(ctx, c, o, res); err != nil {
		return nil, err
	}
	return res, nil
}

func putParser(ctx context.Context, c *Client, o Options, p logscale.Parser, tmpl []byte) (Asset, Action, error) {
	existing, err := c.parsers(ctx, o.Repo)
	if err != nil {
		return Asset{}, "", err
	}
	if slices.ContainsFunc(existing, func(e Asset) bool { return e.Name == o.ParserName }) {
		got, err := c.overwriteParser(ctx, o.Repo, o.ParserName, p)
		return got, Updated, err
	}
	got, err := c.createParserFromTemplate(ctx, o.Repo, o.ParserName, tmpl)
	return got, Created, err
}

// putDashboard creates the dashboard, then deletes the same-Asset ones that
// were there before, so the repository is never without it. LogScale allows
// several dashboards of one name; after this there is one.
func putDashboard(ctx context.Context, c *Client, view string) (Asset, Action, error) {
	name, err := logscale.DashboardName()
	if err != nil {
		return Asset{}, "", err
	}
	before, err := c.dashboards(ctx, view)
	if err != nil {
		return Asset{}, "", err
	}
	created, err := c.createDashboard(ctx, view, name, logscale.DashboardTemplate())
	if err != nil {
		return Asset{}, "", err
	}
	action := Created
	for _, d := range before {
		if d.Name != name || d.ID == created.ID {
			continue
		}
		if err := c.deleteDashboard(ctx, d.ID); err != nil {
			return created, "", err
		}
		action = Replaced
	}
	return created, action, nil
}

func putToken(ctx context.Context, c *Client, o Options, res *Result) error {
	tokens, err := c.ingestTokens(ctx, o.Repo)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(tokens, func(t IngestToken) bool { return t.Name == o.TokenName })
	if i < 0 {
		res.Token, err = c.addIngestToken(ctx, o.Repo, o.TokenName, o.ParserName)
		res.TokenAction = Created
		return err
	}
	res.Token, res.PreviousParser = tokens[i], tokens[i].ParserName()
	if res.PreviousParser == o.ParserName {
		res.TokenAction = Kept
		return nil
	}
	if err := c.assignParser(ctx, o.Repo, o.TokenName, o.ParserName); err != nil {
		return err
	}
	res.TokenAction = Bound
	return nil
}

func sortedKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }

// String summarises r for a terminal, without the token secret.
func (r *Result) String() string {
	s := fmt.Sprintf("parser %q %s (id %s)\n", r.Parser.Name, r.ParserAction, r.Parser.ID)
	if r.DashAction != Skipped {
		s += fmt.Sprintf("dashboard %q %s\n", r.Dashboard.Name, r.DashAction)
	}
	switch r.TokenAction {
	case Created:
		s += fmt.Sprintf("ingest token %q created, assigned the parser %q\n", r.Token.Name, r.Parser.Name)
	case Bound:
		prev := "no parser"
		if r.PreviousParser != "" {
			prev = fmt.Sprintf("parser %q", r.PreviousParser)
		}
		s += fmt.Sprintf("ingest token %q existed (with %s), now assigned the parser %q\n", r.Token.Name, prev, r.Parser.Name)
	case Kept:
		s += fmt.Sprintf("ingest token %q existed, already assigned the parser %q\n", r.Token.Name, r.Parser.Name)
	}
	return s
}
