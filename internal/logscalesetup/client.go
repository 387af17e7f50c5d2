// Package logscalesetup prepares a LogScale repository for siemship over
// LogScale's GraphQL API: it creates or updates the Tetragon parser and the
// dashboard from their templates, and creates an ingest token bound to the
// parser or binds an existing one. Queries and mutations are those of the
// LogScale contract, so the repository's LogScale-compatible receiver runs
// the same documents in tests.
package logscalesetup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client speaks LogScale's GraphQL API with a personal or organization API
// token. Safe for concurrent use. The token never appears in errors.
type Client struct {
	endpoint string
	token    string
	http     *http.Client
}

// NewClient returns a client for the LogScale at baseURL (for example
// https://cloud.community.humio.com). hc may be nil.
func NewClient(baseURL, apiToken string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("LogScale URL %q: want http(s)://host[:port][/prefix]", baseURL)
	}
	if strings.TrimSpace(apiToken) == "" {
		return nil, errors.New("no LogScale API token")
	}
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	return &Client{endpoint: u.String() + "/graphql", token: strings.TrimSpace(apiToken), http: hc}, nil
}

// GraphQLError is an answer whose errors list is not empty.
type GraphQLError struct {
	Messages []string
}

func (e *GraphQLError) Error() string { return strings.Join(e.Messages, "; ") }

// maxAnswer bounds a GraphQL answer; setup answers are a few KiB.
const maxAnswer = 16 << 20

// Do runs one query or mutation and decodes its data into out (may be nil).
// LogScale answers 200 with an errors list when an operation fails; that
// becomes a *GraphQLError.
func (c *Client) Do(ctx context.Context, query string, vars map[string]any, out any) error {
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		return fmt.Errorf("encode GraphQL request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build GraphQL request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("LogScale GraphQL API at %s: %w", c.endpoint, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return fmt.Errorf("read GraphQL answer: %w", err)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return fmt.Errorf("LogScale rejected the API token (%d): use a personal or organization API token with the right to change the repository's parsers and tokens, not an ingest token", resp.StatusCode)
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("LogScale GraphQL API at %s answered %d %s", c.endpoint, resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	var answer struct {
		Data   json.RawMessage `json:"data"`
		Errors []struct {
			Message string `json:"message"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(data, &answer); err != nil {
		return fmt.Errorf("GraphQL answer is not JSON: %w", err)
	}
	if len(answer.Errors) > 0 {
		ge := &GraphQLError{}
		for _, e := range answer.Errors {
			ge.Messages = append(ge.Messages, strings.ReplaceAll(e.Message, c.token, "[redacted]"))
		}
		return ge
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(answer.Data, out); err != nil {
		return fmt.Errorf("decode GraphQL data: %w", err)
	}
	return nil
}
