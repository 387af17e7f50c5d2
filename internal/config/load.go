package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"
)

// Flags are the command-line flags that override keys, by flag name.
var Flags = map[string]string{
	"log-level":     "log.level",
	"log-format":    "log.format",
	"state-dir":     "state_dir",
	"listen":        "listen",
	"tetragon-path": "sources.tetragon.path",
	"logscale-url":  "sinks.logscale.url",
}

// AddFlags declares the override flags on fs.
func AddFlags(fs *pflag.FlagSet) {
	fs.String("log-level", "", "log level: debug, info, warn or error (key log.level)")
	fs.String("log-format", "", "log format: auto (text on a terminal, else json), json or text (key log.format)")
	fs.String("state-dir", "", "directory for checkpoints and dead-letter files (key state_dir)")
	fs.String("listen", "", "address for /metrics, /healthz and /readyz (key listen)")
	fs.String("tetragon-path", "", "Tetragon export file of the source named tetragon (key sources.tetragon.path)")
	fs.String("logscale-url", "", "LogScale URL of the sink named logscale (key sinks.logscale.url)")
}

// slot is where one key's value goes.
type slot struct {
	opts  any // pointer to the options struct
	field field
}

// Load reads the file at path (empty: defaults only), then applies the
// environment (SIEMSHIP_<KEY with _ for .>) and the flags set on fs (may be
// nil). It returns warnings for things that are likely mistakes but not
// errors. It reads no secret: components do, from their *_file keys or the
// environment.
func Load(path string, fs *pflag.FlagSet) (*Config, []string, error) {
	tree, err := readTree(path)
	if err != nil {
		return nil, nil, err
	}
	c := defaults()
	schema := map[string]slot{}
	for _, f := range fieldsOf(reflect.TypeFor[Config]()) {
		schema[f.key] = slot{&c, f}
	}
	var errs []error
	for _, sec := range []string{"sources", "sinks"} {
		names, err := instanceNames(tree, sec)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, name := range names {
			typ := instanceType(tree, sec, name)
			if err := checkName(sec, name); err != nil {
				errs = append(errs, err)
				continue
			}
			if err := knownType(sec, typ); err != nil {
				errs = append(errs, fmt.Errorf("%s.%s.type: %w", sec, name, err))
				continue
			}
			var opts any
			if sec == "sources" {
				var s Source
				s, opts = newSource(name, typ)
				c.Sources = append(c.Sources, s)
			} else {
				var s Sink
				s, opts = newSink(name, typ)
				c.Sinks = append(c.Sinks, s)
			}
			prefix := sec + "." + name + "."
			schema[prefix+"type"] = slot{}
			for _, f := range fieldsOf(reflect.TypeOf(opts).Elem()) {
				schema[prefix+f.key] = slot{opts, f}
			}
		}
	}
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	errs = append(errs, unknownKeys(path, tree, schema)...)

	v := viper.New()
	for key, s := range schema {
		if s.opts != nil {
			v.SetDefault(key, s.field.valueOf(s.opts))
		}
	}
	if path != "" {
		v.SetConfigFile(path)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			return nil, nil, fmt.Errorf("read config %s: %w", path, err)
		}
	}
	v.SetEnvPrefix("SIEMSHIP")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	if err := bindFlags(v, fs, schema); err != nil {
		errs = append(errs, err)
	}
	for _, key := range sortedKeys(schema) {
		s := schema[key]
		if s.opts == nil {
			continue
		}
		raw := v.Get(key)
		if err := s.field.set(s.opts, raw); err != nil {
			errs = append(errs, valueError(key, s.field, raw, err))
		}
	}
	routes, rerrs := decodeRoutes(v.Get("routes"))
	c.Routes = routes
	errs = append(errs, rerrs...)
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	warnings, err := c.Validate()
	if err != nil {
		return nil, nil, err
	}
	return &c, append(warnings, unknownEnv(&c, schema)...), nil
}

func valueError(key string, f field, raw any, err error) error {
	got := fmt.Sprintf("%v", raw)
	if s, ok := raw.(string); ok {
		got = fmt.Sprintf("%q", s)
	}
	if errors.Is(err, errForm) {
		return fmt.Errorf("%s: must be %s, got %s", key, form(f), got)
	}
	return fmt.Errorf("%s: must be %s, got %s (%v)", key, form(f), got, err)
}

func bindFlags(v *viper.Viper, fs *pflag.FlagSet, schema map[string]slot) error {
	if fs == nil {
		return nil
	}
	var errs []error
	for name, key := range Flags {
		f := fs.Lookup(name)
		if f == nil || !f.Changed {
			continue
		}
		if _, ok := schema[key]; !ok {
			errs = append(errs, fmt.Errorf("flag --%s sets %s, but no such component is configured", name, key))
			continue
		}
		if err := v.BindPFlag(key, f); err != nil {
			errs = append(errs, fmt.Errorf("flag --%s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// readTree parses the file into a tree of maps; nil without a file.
func readTree(path string) (map[string]any, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config %s: %w", path, err)
	}
	var tree map[string]any
	if err := yaml.Unmarshal(data, &tree); err != nil {
		return nil, fmt.Errorf("config %s is not valid YAML: %s", path, yamlError(err))
	}
	return tree, nil
}

// parserLine matches the messages of the YAML parser (not its scanner):
// yaml.v3 reports their line counted from 0, so it is one off.
var parserLine = regexp.MustCompile(`^yaml: line (\d+): (did not find expected|found duplicate|found incompatible|found undefined tag)`)

// yamlError is err with the line counted from 1 as editors do.
func yamlError(err error) string {
	msg := err.Error()
	if m := parserLine.FindStringSubmatchIndex(msg); m != nil {
		n, _ := strconv.Atoi(msg[m[2]:m[3]])
		msg = msg[:m[2]] + strconv.Itoa(n+1) + msg[m[3]:]
	}
	return strings.TrimPrefix(msg, "yaml: ")
}

// instanceNames lists the components of a section in the file, or the
// default ones when the file has no such section.
func instanceNames(tree map[string]any, sec string) ([]string, error) {
	raw, ok := tree[sec]
	if !ok {
		if sec == "sources" {
			return defaultSources, nil
		}
		return defaultSinks, nil
	}
	m, ok := raw.(map[string]any)
	if !ok || len(m) == 0 {
		return nil, fmt.Errorf("%s: must map names to components, e.g. %s: {%s: {...}}", sec, sec, defaultName(sec))
	}
	names := make([]string, 0, len(m))
	for name, body := range m {
		if _, ok := body.(map[string]any); !ok && body != nil {
			return nil, fmt.Errorf("%s.%s: must be a map of options (type and the type's keys), got %v", sec, name, body)
		}
		names = append(names, name)
	}
	sort.Strings(names)
	return names, nil
}

func defaultName(sec string) string {
	if sec == "sources" {
		return defaultSources[0]
	}
	return defaultSinks[0]
}

// instanceType is the type key of a component, defaulting to its name.
func instanceType(tree map[string]any, sec, name string) string {
	m, _ := tree[sec].(map[string]any)
	body, _ := m[name].(map[string]any)
	if t, ok := body["type"].(string); ok && t != "" {
		return t
	}
	return name
}

// secretKeys are keys that would hold a secret: never accepted in the file.
var secretKeys = []string{"token", "secret", "client_secret", "password", "key"}

// unknownKeys rejects keys the agent does not know, so a typo is an error
// instead of a silently ignored setting.
func unknownKeys(path string, tree map[string]any, schema map[string]slot) []error {
	var errs []error
	for _, key := range flatten("", tree, schema) {
		if _, ok := schema[key]; ok || key == "routes" {
			continue
		}
		last := key[strings.LastIndexByte(key, '.')+1:]
		if strings.Count(key, ".") == 2 && slices.Contains(secretKeys, last) {
			errs = append(errs, fmt.Errorf("config %s: %s must not be in the file: put the secret in a file named by %s_file (a mounted Secret) or in the environment variable named in the README", path, key, key))
			continue
		}
		errs = append(errs, fmt.Errorf("config %s: unknown key %q%s", path, key, suggest(key, schema)))
	}
	return errs
}

// flatten lists the leaf keys of tree; free-form maps are leaves.
func flatten(prefix string, m map[string]any, schema map[string]slot) []string {
	var keys []string
	for k, val := range m {
		key := prefix + k
		if s, ok := schema[key]; ok && s.field.freeForm {
			keys = append(keys, key)
			continue
		}
		if sub, ok := val.(map[string]any); ok {
			// An empty map ({} or a name with nothing under it) sets nothing.
			keys = append(keys, flatten(key+".", sub, schema)...)
			continue
		}
		if val == nil && strings.Count(key, ".") == 1 && (strings.HasPrefix(key, "sources.") || strings.HasPrefix(key, "sinks.")) {
			continue // a component with every default: "tetragon:"
		}
		keys = append(keys, key)
	}
	sort.Strings(keys)
	return keys
}

func sortedKeys(schema map[string]slot) []string {
	keys := make([]string, 0, len(schema))
	for k := range schema {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func upper(s string) string { return strings.ToUpper(strings.ReplaceAll(s, ".", "_")) }

// otherEnv are SIEMSHIP_ variables that are not configuration keys.
var otherEnv = []string{"SIEMSHIP_RECEIVER_TOKENS", "SIEMSHIP_RECEIVER_API_TOKENS", "SIEMSHIP_TOOLS_DIR", "SIEMSHIP_CONFIG"}

// unknownEnv lists SIEMSHIP_ variables that match no key and no secret:
// likely typos.
func unknownEnv(c *Config, schema map[string]slot) []string {
	known := map[string]bool{}
	for k := range schema {
		known["SIEMSHIP_"+upper(k)] = true
	}
	for _, env := range c.SecretEnv() {
		known[env] = true
	}
	var warn []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "SIEMSHIP_") && !known[name] && !slices.Contains(otherEnv, name) {
			warn = append(warn, fmt.Sprintf("environment variable %s matches no configuration key and is ignored", name))
		}
	}
	sort.Strings(warn)
	return warn
}
