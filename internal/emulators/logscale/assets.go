package logscale

import (
	"fmt"
	"slices"
	"sync"
)

// Parser is a parser as created over GraphQL or by a package.
type Parser struct {
	ID                             string
	Repo                           string
	Name                           string
	Script                         string
	FieldsToTag                    []string
	FieldsToBeRemovedBeforeParsing []string
	TestCases                      []ParserTestCase
	YAML                           string // the template it was created from, if any
	Package                        string // "org/name" of the installing package, if any
}

// ParserTestCase is a parser test case.
type ParserTestCase struct {
	RawString  string            `json:"rawString"`
	Assertions []ParserAssertion `json:"assertions,omitempty"`
}

// ParserAssertion asserts on one output event of a test case.
type ParserAssertion struct {
	OutputEventIndex int               `json:"outputEventIndex"`
	FieldsHaveValues map[string]string `json:"fieldsHaveValues,omitempty"`
	FieldsNotPresent []string          `json:"fieldsNotPresent,omitempty"`
}

// Dashboard is a dashboard as created over GraphQL or by a package.
type Dashboard struct {
	ID      string
	View    string
	Name    string
	Widgets int
	YAML    string
	Package string
}

// builtinParsers exist in every LogScale repository (a subset of LogScale's).
var builtinParsers = []string{"accesslog", "json", "json-for-action", "kv", "kv-generic", "syslog", "syslog-utc"}

// assets holds repositories with their parsers and dashboards.
type assets struct {
	mu     sync.Mutex
	repos  map[string]*repoAssets
	nextID int
}

type repoAssets struct {
	parsers    []*Parser
	dashboards []*Dashboard
}

func newAssets(repos []string) *assets {
	a := &assets{repos: map[string]*repoAssets{}}
	for _, r := range repos {
		a.addRepo(r)
	}
	return a
}

func (a *assets) addRepo(name string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if name != "" && a.repos[name] == nil {
		a.repos[name] = &repoAssets{}
	}
}

func (a *assets) hasRepo(name string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.repos[name] != nil
}

func (a *assets) id(kind string) string {
	a.nextID++
	return fmt.Sprintf("%s-%08d", kind, a.nextID)
}

func (a *assets) repo(name string) (*repoAssets, error) {
	r := a.repos[name]
	if r == nil {
		return nil, fmt.Errorf("repository or view %q not found", name)
	}
	return r, nil
}

// parsers lists repo's parsers, oldest first.
func (a *assets) parsers(repo string) ([]Parser, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	r, err := a.repo(repo)
	if err != nil {
		return nil, err
	}
	out := make([]Parser, 0, len(r.parsers))
	for _, p := range r.parsers {
		out = append(out, *p)
	}
	return out, nil
}

// parserExists reports whether name (or "org/package:name") names a parser
// of repo or a built-in one.
func (a *assets) parserExists(repo, name string) bool {
	if slices.Contains(builtinParsers, name) {
		return true
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	r := a.repos[repo]
	if r == nil {
		return false
	}
	return slices.ContainsFunc(r.parsers, func(p *Parser) bool {
		return p.Name == name || (p.Package != "" && p.Package+":"+p.Name == name)
	})
}

// putParser creates p in repo. A parser of the same name is replaced,
// keeping its id, when overwrite is set, and is an error otherwise.
func (a *assets) putParser(repo string, p Parser, overwrite bool) (Parser, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	r, err := a.repo(repo)
	if err != nil {
		return Parser{}, err
	}
	p.Repo = repo
	for i, old := range r.parsers {
		if old.Name != p.Name {
			continue
		}
		if !overwrite {
			return Parser{}, fmt.Errorf("a parser named %q already exists in %q", p.Name, repo)
		}
		p.ID = old.ID
		r.parsers[i] = &p
		return p, nil
	}
	p.ID = a.id("parser")
	r.parsers = append(r.parsers, &p)
	return p, nil
}

func (a *assets) deleteParser(repo, id string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	r, err := a.repo(repo)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(r.parsers, func(p *Parser) bool { return p.ID == id })
	if i < 0 {
		return fmt.Errorf("parser %q not found in %q", id, repo)
	}
	r.parsers = slices.Delete(r.parsers, i, i+1)
	return nil
}

// putDashboard creates d in view; a same-named one is replaced when
// overwrite is set (packages), otherwise LogScale allows duplicates.
func (a *assets) putDashboard(view string, d Dashboard, overwrite bool) (Dashboard, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	r, err := a.repo(view)
	if err != nil {
		return Dashboard{}, err
	}
	d.View = view
	if overwrite {
		if i := slices.IndexFunc(r.dashboards, func(o *Dashboard) bool { return o.Name == d.Name }); i >= 0 {
			d.ID = r.dashboards[i].ID
			r.dashboards[i] = &d
			return d, nil
		}
	}
	d.ID = a.id("dashboard")
	r.dashboards = append(r.dashboards, &d)
	return d, nil
}

func (a *assets) dashboards(view string) ([]Dashboard, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	r, err := a.repo(view)
	if err != nil {
		return nil, err
	}
	out := make([]Dashboard, 0, len(r.dashboards))
	for _, d := range r.dashboards {
		out = append(out, *d)
	}
	return out, nil
}

// deleteDashboard deletes the dashboard with id, in whichever view it is.
func (a *assets) deleteDashboard(id string) (Dashboard, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, r := range a.repos {
		if i := slices.IndexFunc(r.dashboards, func(d *Dashboard) bool { return d.ID == id }); i >= 0 {
			d := *r.dashboards[i]
			r.dashboards = slices.Delete(r.dashboards, i, i+1)
			return d, nil
		}
	}
	return Dashboard{}, fmt.Errorf("dashboard %q not found", id)
}

// Parsers returns repo's parsers (nil for an unknown repository).
func (s *Server) Parsers(repo string) []Parser {
	p, _ := s.assets.parsers(repo)
	return p
}

// Dashboards returns view's dashboards (nil for an unknown view).
func (s *Server) Dashboards(view string) []Dashboard {
	d, _ := s.assets.dashboards(view)
	return d
}
