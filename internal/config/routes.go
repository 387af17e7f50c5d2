package config

import (
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/go-viper/mapstructure/v2"

	"github.com/siemship/siemship/internal/pipeline"
)

var (
	routeKeys    = []string{"name", "from", "to", "include", "exclude"}
	selectorKeys = []string{"event_types", "namespaces", "pod_labels", "binaries"}
)

// decodeRoutes reads the routes list; nil without one.
func decodeRoutes(raw any) ([]pipeline.Route, []error) {
	if raw == nil {
		return nil, nil
	}
	list, ok := raw.([]any)
	if !ok {
		return nil, []error{fmt.Errorf("routes: must be a list of {from: SOURCE, to: [SINK, ...]}, got %v", raw)}
	}
	var errs []error
	routes := make([]pipeline.Route, 0, len(list))
	for i, item := range list {
		at := fmt.Sprintf("routes[%d]", i)
		m, ok := item.(map[string]any)
		if !ok {
			errs = append(errs, fmt.Errorf("%s: must be a map {from: SOURCE, to: [SINK, ...]}, got %v", at, item))
			continue
		}
		errs = append(errs, checkKeys(at, m, routeKeys)...)
		for _, sel := range []string{"include", "exclude"} {
			if sm, ok := m[sel].(map[string]any); ok {
				errs = append(errs, checkKeys(at+"."+sel, sm, selectorKeys)...)
			}
		}
		var r pipeline.Route
		dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{Result: &r, WeaklyTypedInput: true})
		if err == nil {
			err = dec.Decode(m)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: must be {from: SOURCE, to: [SINK, ...], include: {...}, exclude: {...}}: %v", at, err))
			continue
		}
		routes = append(routes, r)
	}
	return routes, errs
}

func checkKeys(at string, m map[string]any, known []string) []error {
	var errs []error
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !slices.Contains(known, k) {
			errs = append(errs, fmt.Errorf("%s: unknown key %q%s", at, k, suggestAmong(k, known)))
		}
	}
	return errs
}

// validateRoutes checks that routes name existing components, that a
// source–sink pair appears in one route at most, and that every source
// has somewhere to go. It returns warnings for sinks no route feeds.
func (c *Config) validateRoutes() ([]string, error) {
	if len(c.Routes) == 0 {
		return nil, nil
	}
	var errs []error
	var warnings []string
	sources, sinks := map[string]bool{}, map[string]bool{}
	for _, s := range c.Sources {
		sources[s.Name] = false
	}
	for _, s := range c.Sinks {
		sinks[s.Name] = false
	}
	pairs := map[[2]string]string{}
	names := map[string]bool{}
	for i := range c.Routes {
		r := &c.Routes[i]
		at := fmt.Sprintf("routes[%d] (%s)", i, r.DisplayName())
		if names[r.DisplayName()] {
			errs = append(errs, fmt.Errorf("%s: another route has the same name; set name: to tell them apart", at))
		}
		names[r.DisplayName()] = true
		if _, ok := sources[r.From]; !ok {
			errs = append(errs, fmt.Errorf("%s: from: no source named %q (sources: %s)", at, r.From, joinKeys(sources)))
		}
		sources[r.From] = true
		if len(r.To) == 0 {
			errs = append(errs, fmt.Errorf("%s: to: must name at least one sink (sinks: %s)", at, joinKeys(sinks)))
		}
		for _, to := range r.To {
			if _, ok := sinks[to]; !ok {
				errs = append(errs, fmt.Errorf("%s: to: no sink named %q (sinks: %s)", at, to, joinKeys(sinks)))
				continue
			}
			sinks[to] = true
			pair := [2]string{r.From, to}
			if other, dup := pairs[pair]; dup {
				errs = append(errs, fmt.Errorf("%s: %s → %s is already in %s: a source–sink pair may appear in one route only (combine their filters)", at, r.From, to, other))
			}
			pairs[pair] = at
		}
		for sel, s := range map[string]*pipeline.Selector{"include": r.Include, "exclude": r.Exclude} {
			if s != nil {
				if err := s.Check(); err != nil {
					errs = append(errs, fmt.Errorf("%s: %s.%w", at, sel, err))
				}
			}
		}
	}
	for name, used := range sources {
		if !used {
			errs = append(errs, fmt.Errorf("routes: source %q is in no route: its events would go nowhere", name))
		}
	}
	for name, used := range sinks {
		if !used {
			warnings = append(warnings, fmt.Sprintf("sink %q is in no route and receives nothing", name))
		}
	}
	sort.Strings(warnings)
	return warnings, errors.Join(errs...)
}

func joinKeys(m map[string]bool) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return fmt.Sprint(keys)
}
