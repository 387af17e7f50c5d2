package logscalesetup

import (
	"context"
	"fmt"

	"github.com/siemship/siemship/logscale"
)

// The GraphQL documents, as in the LogScale contract. Scalars YAML and
// RepoOrViewName are sent as JSON strings.
const (
	qParsers = `query($r:String!){ repository(name:$r){ parsers{ id name } } }`

	mCreateParserFromTemplate = `mutation($view:RepoOrViewName!,$name:String!,$yaml:YAML!){ createParserFromTemplate(input:{viewName:$view,name:$name,yamlTemplate:$yaml}){ id name } }`

	// createParserV2 with allowOverwritingExistingParser replaces a parser in
	// place, keeping its id, so tokens assigned to it stay assigned and no
	// event arrives while the parser is missing (delete and create would
	// leave such a window).
	mCreateParserV2 = `mutation($in:CreateParserInputV2!){ createParserV2(input:$in){ id name } }`

	qDashboards = `query($v:String!){ searchDomain(name:$v){ dashboards{ id name } } }`

	mCreateDashboard = `mutation($view:RepoOrViewName!,$name:String!,$yaml:YAML!){ createDashboardFromTemplateV2(input:{viewName:$view,name:$name,yamlTemplate:$yaml}){ id name } }`

	mDeleteDashboard = `mutation($id:String!){ deleteDashboard(input:{id:$id}){ __typename } }`

	qIngestTokens = `query($r:String!){ repository(name:$r){ ingestTokens{ name token parser{ name } } } }`

	mAddIngestToken = `mutation($r:String!,$n:String!,$p:String!){ addIngestTokenV3(input:{repositoryName:$r,name:$n,parser:$p}){ name token parser{ name } } }`

	mAssignParser = `mutation($r:String!,$n:String!,$p:String!){ assignParserToIngestTokenV2(input:{repositoryName:$r,tokenName:$n,parser:$p}){ __typename } }`
)

// Asset is a parser or dashboard: its id and name.
type Asset struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// IngestToken is an ingest token as LogScale lists it. Token is the secret.
type IngestToken struct {
	Name   string `json:"name"`
	Token  string `json:"token"`
	Parser *struct {
		Name string `json:"name"`
	} `json:"parser"`
}

// ParserName is the name of the token's parser, "" for none.
func (t IngestToken) ParserName() string {
	if t.Parser == nil {
		return ""
	}
	return t.Parser.Name
}

func (c *Client) parsers(ctx context.Context, repo string) ([]Asset, error) {
	var out struct {
		Repository struct{ Parsers []Asset } `json:"repository"`
	}
	if err := c.Do(ctx, qParsers, map[string]any{"r": repo}, &out); err != nil {
		return nil, fmt.Errorf("list parsers of %q: %w", repo, err)
	}
	return out.Repository.Parsers, nil
}

func (c *Client) createParserFromTemplate(ctx context.Context, repo, name string, template []byte) (Asset, error) {
	var out struct {
		P Asset `json:"createParserFromTemplate"`
	}
	vars := map[string]any{"view": repo, "name": name, "yaml": string(template)}
	if err := c.Do(ctx, mCreateParserFromTemplate, vars, &out); err != nil {
		return Asset{}, fmt.Errorf("create parser %q in %q: %w", name, repo, err)
	}
	return out.P, nil
}

// overwriteParser replaces repo's parser called name with p's content.
func (c *Client) overwriteParser(ctx context.Context, repo, name string, p logscale.Parser) (Asset, error) {
	in := map[string]any{
		"name":                           name,
		"script":                         p.Script,
		"repositoryName":                 repo,
		"fieldsToTag":                    nonNil(p.TagFields),
		"fieldsToBeRemovedBeforeParsing": nonNil(p.FieldsToBeRemovedBeforeParsing),
		"testCases":                      testCaseInputs(p.TestCases),
		"allowOverwritingExistingParser": true,
	}
	var out struct {
		P Asset `json:"createParserV2"`
	}
	if err := c.Do(ctx, mCreateParserV2, map[string]any{"in": in}, &out); err != nil {
		return Asset{}, fmt.Errorf("update parser %q in %q: %w", name, repo, err)
	}
	return out.P, nil
}

// testCaseInputs converts template test cases into ParserTestCaseInput:
// assertions nest under outputAssertions, and fieldsHaveValues becomes a
// list of {fieldName, expectedValue}.
func testCaseInputs(tcs []logscale.TestCase) []map[string]any {
	out := make([]map[string]any, 0, len(tcs))
	for _, tc := range tcs {
		var oas []map[string]any
		for _, a := range tc.Assertions {
			hv := make([]map[string]any, 0, len(a.FieldsHaveValues))
			for _, k := range sortedKeys(a.FieldsHaveValues) {
				hv = append(hv, map[string]any{"fieldName": k, "expectedValue": a.FieldsHaveValues[k]})
			}
			oas = append(oas, map[string]any{
				"outputEventIndex": a.OutputEventIndex,
				"assertions":       map[string]any{"fieldsHaveValues": hv, "fieldsNotPresent": nonNil(a.FieldsNotPresent)},
			})
		}
		out = append(out, map[string]any{
			"event":            map[string]any{"rawString": tc.Event.RawString},
			"outputAssertions": nonNilMaps(oas),
		})
	}
	return out
}

func (c *Client) dashboards(ctx context.Context, view string) ([]Asset, error) {
	var out struct {
		SearchDomain struct{ Dashboards []Asset } `json:"searchDomain"`
	}
	if err := c.Do(ctx, qDashboards, map[string]any{"v": view}, &out); err != nil {
		return nil, fmt.Errorf("list dashboards of %q: %w", view, err)
	}
	return out.SearchDomain.Dashboards, nil
}

func (c *Client) createDashboard(ctx context.Context, view, name string, template []byte) (Asset, error) {
	var out struct {
		D Asset `json:"createDashboardFromTemplateV2"`
	}
	vars := map[string]any{"view": view, "name": name, "yaml": string(template)}
	if err := c.Do(ctx, mCreateDashboard, vars, &out); err != nil {
		return Asset{}, fmt.Errorf("create dashboard %q in %q: %w", name, view, err)
	}
	return out.D, nil
}

func (c *Client) deleteDashboard(ctx context.Context, id string) error {
	if err := c.Do(ctx, mDeleteDashboard, map[string]any{"id": id}, nil); err != nil {
		return fmt.Errorf("delete dashboard %s: %w", id, err)
	}
	return nil
}

func (c *Client) ingestTokens(ctx context.Context, repo string) ([]IngestToken, error) {
	var out struct {
		Repository struct {
			IngestTokens []IngestToken `json:"ingestTokens"`
		} `json:"repository"`
	}
	if err := c.Do(ctx, qIngestTokens, map[string]any{"r": repo}, &out); err != nil {
		return nil, fmt.Errorf("list ingest tokens of %q: %w", repo, err)
	}
	return out.Repository.IngestTokens, nil
}

func (c *Client) addIngestToken(ctx context.Context, repo, name, parser string) (IngestToken, error) {
	var out struct {
		T IngestToken `json:"addIngestTokenV3"`
	}
	if err := c.Do(ctx, mAddIngestToken, map[string]any{"r": repo, "n": name, "p": parser}, &out); err != nil {
		return IngestToken{}, fmt.Errorf("create ingest token %q in %q: %w", name, repo, err)
	}
	return out.T, nil
}

func (c *Client) assignParser(ctx context.Context, repo, token, parser string) error {
	if err := c.Do(ctx, mAssignParser, map[string]any{"r": repo, "n": token, "p": parser}, nil); err != nil {
		return fmt.Errorf("assign parser %q to ingest token %q in %q: %w", parser, token, repo, err)
	}
	return nil
}

func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

func nonNilMaps(l []map[string]any) []map[string]any {
	if l == nil {
		return []map[string]any{}
	}
	return l
}
