package logscale

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
)

// tokenObjs lists repo's ingest tokens by name.
func (s *Server) tokenObjs(repo string) []obj {
	s.mu.RLock()
	var entries []tokenEntry
	for _, e := range s.tokens {
		if e.Repo == repo {
			entries = append(entries, *e)
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(entries, func(a, b tokenEntry) int { return strings.Compare(a.Name, b.Name) })
	out := make([]obj, 0, len(entries))
	for _, e := range entries {
		out = append(out, s.tokenObj(e))
	}
	return out
}

func (s *Server) tokenObj(e tokenEntry) obj {
	o := obj{"__typename": "IngestToken", "name": e.Name, "token": e.Secret, "parser": nil}
	if e.Parser == "" {
		return o
	}
	p := Parser{Name: e.Parser} // built-in, or deleted since: no id
	for _, rp := range s.Parsers(e.Repo) {
		if rp.Name == e.Parser || rp.Package+":"+rp.Name == e.Parser {
			p = rp
		}
	}
	o["parser"] = parserObj(p)
	return o
}

// tokenByName finds repo's token named name; the caller holds s.mu.
func (s *Server) tokenByName(repo, name string) *tokenEntry {
	for _, e := range s.tokens {
		if e.Repo == repo && e.Name == name {
			return e
		}
	}
	return nil
}

func (s *Server) addIngestToken(args map[string]any) (any, error) {
	var in struct{ RepositoryName, Name, Parser, CustomToken string }
	if err := decodeInput(args["input"], &in); err != nil {
		return nil, err
	}
	if err := s.viewArg(in.RepositoryName); err != nil {
		return nil, err
	}
	if strings.TrimSpace(in.Name) == "" {
		return nil, fmt.Errorf("token name must not be empty")
	}
	if in.Parser != "" && !s.assets.parserExists(in.RepositoryName, in.Parser) {
		return nil, fmt.Errorf("parser %q not found in %q", in.Parser, in.RepositoryName)
	}
	secret := in.CustomToken
	if secret == "" {
		secret = newSecret()
	}
	s.mu.Lock()
	if s.tokenByName(in.RepositoryName, in.Name) != nil || s.tokens[secret] != nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("an ingest token named %q already exists in %q", in.Name, in.RepositoryName)
	}
	e := &tokenEntry{Token: Token{Name: in.Name, Repo: in.RepositoryName, Parser: in.Parser}, Secret: secret}
	s.tokens[secret] = e
	s.mu.Unlock()
	return s.tokenObj(*e), nil
}

func (s *Server) assignParser(args map[string]any) (any, error) {
	var in struct{ RepositoryName, TokenName, Parser string }
	if err := decodeInput(args["input"], &in); err != nil {
		return nil, err
	}
	if err := s.viewArg(in.RepositoryName); err != nil {
		return nil, err
	}
	if !s.assets.parserExists(in.RepositoryName, in.Parser) {
		return nil, fmt.Errorf("parser %q not found in %q", in.Parser, in.RepositoryName)
	}
	return s.setTokenParser(in.RepositoryName, in.TokenName, in.Parser)
}

func (s *Server) unassignParser(args map[string]any) (any, error) {
	repo, _ := args["repositoryName"].(string)
	name, _ := args["tokenName"].(string)
	if _, err := s.setTokenParser(repo, name, ""); err != nil {
		return nil, err
	}
	return obj{"__typename": "UnassignIngestTokenMutation", "result": true}, nil
}

func (s *Server) setTokenParser(repo, tokenName, parser string) (any, error) {
	s.mu.Lock()
	e := s.tokenByName(repo, tokenName)
	if e != nil {
		e.Parser = parser
	}
	var cp tokenEntry
	if e != nil {
		cp = *e
	}
	s.mu.Unlock()
	if e == nil {
		return nil, fmt.Errorf("ingest token %q not found in %q", tokenName, repo)
	}
	return s.tokenObj(cp), nil
}

func (s *Server) removeIngestToken(args map[string]any) (any, error) {
	repo, _ := args["repositoryName"].(string)
	name, _ := args["name"].(string)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.tokenByName(repo, name)
	if e == nil {
		return nil, fmt.Errorf("ingest token %q not found in %q", name, repo)
	}
	delete(s.tokens, e.Secret)
	return obj{"__typename": "BooleanResultType", "result": true}, nil
}

func newSecret() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
