package logscale

import (
	"fmt"
	"net/http"
	"strings"
)

// tokenEntry is a token table row; Token is the secret string.
type tokenEntry struct {
	Token
	Secret string
}

// authError carries the HTTP status an auth failure is answered with.
type authError struct {
	status int
	reason string
}

func (e *authError) Error() string { return e.reason }

// AddToken adds or replaces an ingest token. It is usable immediately.
func (s *Server) AddToken(token string, t Token) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.Name == "" {
		t.Name = fmt.Sprintf("token-%d", len(s.tokens)+1)
	}
	s.tokens[token] = &tokenEntry{Token: t, Secret: token}
	s.assets.addRepo(t.Repo)
}

// BlockToken marks a token blocked (403) or unblocks it.
func (s *Server) BlockToken(token string, blocked bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.tokens[token]; ok {
		e.Blocked = blocked
	}
}

// DeleteRepo marks a repository deleted: its tokens get 422 from now on.
func (s *Server) DeleteRepo(repo string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deleted[repo] = true
}

// IngestTokens lists the token table, secrets included (for tests).
func (s *Server) IngestTokens() map[string]Token {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[string]Token, len(s.tokens))
	for k, e := range s.tokens {
		out[k] = e.Token
	}
	return out
}

// bearer extracts the credential of an Authorization header for one of the
// given schemes (compared case-insensitively, as RFC 9110 asks).
func bearer(h string, schemes ...string) (string, bool) {
	scheme, cred, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok {
		return "", false
	}
	cred = strings.TrimSpace(cred)
	for _, sc := range schemes {
		if strings.EqualFold(scheme, sc) && cred != "" {
			return cred, true
		}
	}
	return "", false
}

// authIngest resolves the request's ingest token: 401 when missing or
// unknown, 403 when blocked, 422 when its repository was deleted.
func (s *Server) authIngest(r *http.Request, rt route) (Token, error) {
	schemes := []string{"Bearer"}
	if rt.hec {
		schemes = append(schemes, "Splunk")
	}
	tok, ok := bearer(r.Header.Get("Authorization"), schemes...)
	if !ok {
		return Token{}, &authError{http.StatusUnauthorized, "missing or malformed Authorization header"}
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.tokens[tok]
	switch {
	case !ok:
		return Token{}, &authError{http.StatusUnauthorized, "unknown ingest token"}
	case e.Blocked:
		return Token{}, &authError{http.StatusForbidden, "ingest token is blocked"}
	case s.deleted[e.Repo]:
		return Token{}, &authError{http.StatusUnprocessableEntity, "repository of the ingest token was deleted"}
	}
	return e.Token, nil
}

// authAPI checks a Bearer API token (GraphQL and packages). Ingest tokens
// are not API tokens.
func (s *Server) authAPI(r *http.Request) bool {
	tok, ok := bearer(r.Header.Get("Authorization"), "Bearer")
	if !ok {
		return false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.apiTok[tok]
}

// repoExists reports whether repo is known and not deleted.
func (s *Server) repoExists(repo string) bool {
	s.mu.RLock()
	deleted := s.deleted[repo]
	s.mu.RUnlock()
	return !deleted && s.assets.hasRepo(repo)
}

// redactAuth keeps the scheme of an Authorization header and hides the secret.
func redactAuth(h string) string {
	scheme, _, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok {
		return "<redacted>"
	}
	return scheme + " <redacted>"
}
