package logscale

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/validator"
)

// gqlSchema is parsed once; it is never modified.
var gqlSchema = sync.OnceValue(loadSchema)

type gqlRequest struct {
	Query         string         `json:"query"`
	Variables     map[string]any `json:"variables"`
	OperationName string         `json:"operationName"`
}

type gqlError struct {
	Message string `json:"message"`
	Path    []any  `json:"path,omitempty"`
}

// obj is a resolved GraphQL object: field name → value, plus "__typename".
// A value may be a fieldFunc for fields that take arguments.
type obj map[string]any

type fieldFunc func(args map[string]any) (any, error)

// serveGraphQL answers POST /graphql. As LogScale does, it answers 200 with
// {"data":…} or {"errors":[…]} once the caller is authenticated.
func (s *Server) serveGraphQL(w http.ResponseWriter, r *http.Request) {
	if !s.authAPI(r) {
		http.Error(w, "missing or unknown API token", http.StatusUnauthorized)
		return
	}
	var req gqlRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 8<<20)).Decode(&req); err != nil || req.Query == "" {
		http.Error(w, "body must be a JSON object with a query", http.StatusBadRequest)
		return
	}
	writeJSON(w, http.StatusOK, s.execute(req))
}

// execute validates the document against the schema, coerces the variables
// and resolves the operation's root fields in order.
func (s *Server) execute(req gqlRequest) map[string]any {
	schema := gqlSchema()
	doc, errs := gqlparser.LoadQueryWithRules(schema, req.Query, nil)
	if len(errs) > 0 {
		out := make([]gqlError, 0, len(errs))
		for _, e := range errs {
			out = append(out, gqlError{Message: e.Message})
		}
		return map[string]any{"errors": out}
	}
	op, err := operation(doc, req.OperationName)
	if err != nil {
		return errorsOnly(err, nil)
	}
	vars, err := validator.VariableValues(schema, op, req.Variables)
	if err != nil {
		return errorsOnly(err, nil)
	}
	ex := &executor{schema: schema, doc: doc, vars: vars}
	root, rootType := s.queryRoot(), "Query"
	if op.Operation == ast.Mutation {
		root, rootType = s.mutationRoot(), "Mutation"
	}
	data := map[string]any{}
	for _, f := range ex.fields(op.SelectionSet, rootType) {
		v, err := ex.field(root, f)
		if err != nil {
			return map[string]any{"data": nil, "errors": []gqlError{{Message: err.Error(), Path: []any{key(f)}}}}
		}
		data[key(f)] = v
	}
	return map[string]any{"data": data}
}

func errorsOnly(err error, path []any) map[string]any {
	return map[string]any{"errors": []gqlError{{Message: err.Error(), Path: path}}}
}

func operation(doc *ast.QueryDocument, name string) (*ast.OperationDefinition, error) {
	if name != "" {
		if op := doc.Operations.ForName(name); op != nil {
			return op, nil
		}
		return nil, fmt.Errorf("unknown operation %q", name)
	}
	if len(doc.Operations) != 1 {
		return nil, fmt.Errorf("operationName is required with %d operations", len(doc.Operations))
	}
	if doc.Operations[0].Operation == ast.Subscription {
		return nil, fmt.Errorf("subscriptions are not supported")
	}
	return doc.Operations[0], nil
}

func key(f *ast.Field) string {
	if f.Alias != "" {
		return f.Alias
	}
	return f.Name
}

// executor projects resolved objects onto a validated document's selections.
type executor struct {
	schema *ast.Schema
	doc    *ast.QueryDocument
	vars   map[string]any
}

// field resolves f on o and projects the result onto f's selection set.
func (ex *executor) field(o obj, f *ast.Field) (any, error) {
	v := o[f.Name]
	if fn, ok := v.(fieldFunc); ok {
		var err error
		if v, err = fn(f.ArgumentMap(ex.vars)); err != nil {
			return nil, err
		}
	}
	return ex.project(v, f.SelectionSet)
}

func (ex *executor) project(v any, sel ast.SelectionSet) (any, error) {
	switch v := v.(type) {
	case obj:
		typ, _ := v["__typename"].(string)
		out := map[string]any{}
		for _, f := range ex.fields(sel, typ) {
			if f.Name == "__typename" {
				out[key(f)] = typ
				continue
			}
			fv, err := ex.field(v, f)
			if err != nil {
				return nil, err
			}
			out[key(f)] = fv
		}
		return out, nil
	case []obj:
		out := make([]any, 0, len(v))
		for _, item := range v {
			p, err := ex.project(item, sel)
			if err != nil {
				return nil, err
			}
			out = append(out, p)
		}
		return out, nil
	default:
		return v, nil
	}
}

// fields flattens sel for an object of type typ: fragments whose type
// condition does not apply to typ are left out.
func (ex *executor) fields(sel ast.SelectionSet, typ string) []*ast.Field {
	var out []*ast.Field
	for _, s := range sel {
		switch s := s.(type) {
		case *ast.Field:
			out = append(out, s)
		case *ast.InlineFragment:
			if ex.applies(s.TypeCondition, typ) {
				out = append(out, ex.fields(s.SelectionSet, typ)...)
			}
		case *ast.FragmentSpread:
			if fr := ex.doc.Fragments.ForName(s.Name); fr != nil && ex.applies(fr.TypeCondition, typ) {
				out = append(out, ex.fields(fr.SelectionSet, typ)...)
			}
		}
	}
	return out
}

func (ex *executor) applies(cond, typ string) bool {
	if cond == "" || cond == typ {
		return true
	}
	def := ex.schema.Types[cond]
	return def != nil && slices.ContainsFunc(ex.schema.GetPossibleTypes(def), func(d *ast.Definition) bool {
		return d.Name == typ
	})
}

// decodeInput converts a coerced argument into a Go struct.
func decodeInput(v any, into any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode input: %w", err)
	}
	if err := json.Unmarshal(b, into); err != nil {
		return fmt.Errorf("decode input: %w", err)
	}
	return nil
}
