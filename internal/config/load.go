package config

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/go-viper/mapstructure/v2"
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
	fs.String("state-dir", "", "directory for checkpoints and the dead-letter file (key state_dir)")
	fs.String("listen", "", "address for /metrics, /healthz and /readyz (key listen)")
	fs.String("tetragon-path", "", "Tetragon export file (key sources.tetragon.path)")
	fs.String("logscale-url", "", "LogScale ingest URL (key sinks.logscale.url)")
}

// Load reads the file at path (empty: defaults only), then applies the
// environment (SIEMSHIP_<KEY with _ for .>) and the flags set on fs (may be
// nil). It does not read the token; see ReadToken.
func Load(path string, fs *pflag.FlagSet) (*Config, []string, error) {
	v := viper.New()
	for k, d := range defaults {
		v.SetDefault(k, d)
	}
	if path != "" {
		if err := checkFileKeys(path); err != nil {
			return nil, nil, err
		}
		v.SetConfigFile(path)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			return nil, nil, fmt.Errorf("read config %s: %w", path, err)
		}
	}
	v.SetEnvPrefix("SIEMSHIP")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	if fs != nil {
		for name, key := range Flags {
			if f := fs.Lookup(name); f != nil && f.Changed {
				if err := v.BindPFlag(key, f); err != nil {
					return nil, nil, fmt.Errorf("flag --%s: %w", name, err)
				}
			}
		}
	}
	var c Config
	err := v.Unmarshal(&c, viper.DecodeHook(mapstructure.ComposeDecodeHookFunc(
		mapstructure.StringToTimeDurationHookFunc(),
		mapstructure.StringToSliceHookFunc(","),
		byteSizeHook(),
	)))
	if err != nil {
		return nil, nil, fmt.Errorf("invalid configuration: %w", err)
	}
	if err := c.Validate(); err != nil {
		return nil, nil, err
	}
	return &c, unknownEnv(), nil
}

// checkFileKeys rejects keys the agent does not know, so a typo is an error
// instead of a silently ignored setting.
func checkFileKeys(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config %s: %w", path, err)
	}
	var tree map[string]any
	if err := yaml.Unmarshal(data, &tree); err != nil {
		return fmt.Errorf("config %s is not valid YAML: %w", path, err)
	}
	var errs []error
	for _, key := range flatten("", tree) {
		switch {
		case key == "sinks.logscale.token":
			errs = append(errs, fmt.Errorf("config %s: %s must not be in the file: put the ingest token in a file named by sinks.logscale.token_file (a mounted Secret) or in %s", path, key, TokenEnv))
		case !known(key):
			errs = append(errs, fmt.Errorf("config %s: unknown key %q%s", path, key, suggest(key)))
		}
	}
	return errors.Join(errs...)
}

func flatten(prefix string, m map[string]any) []string {
	var keys []string
	for k, val := range m {
		key := prefix + k
		if isFreeForm(key) {
			keys = append(keys, key)
			continue
		}
		if sub, ok := val.(map[string]any); ok {
			keys = append(keys, flatten(key+".", sub)...)
			continue
		}
		keys = append(keys, key)
	}
	slices.Sort(keys)
	return keys
}

func isFreeForm(key string) bool { return slices.Contains(freeForm, key) }

func known(key string) bool {
	_, ok := defaults[key]
	return ok
}

// suggest names the known keys next to an unknown one.
func suggest(key string) string {
	parent := key[:max(0, strings.LastIndexByte(key, '.'))]
	var siblings []string
	for k := range defaults {
		if strings.HasPrefix(k, parent+".") || parent == "" && !strings.Contains(k, ".") {
			siblings = append(siblings, k[len(parent):])
		}
	}
	if len(siblings) == 0 {
		return ""
	}
	slices.Sort(siblings)
	for i := range siblings {
		siblings[i] = strings.TrimPrefix(siblings[i], ".")
	}
	where := "at the top level"
	if parent != "" {
		where = "under " + parent
	}
	return fmt.Sprintf(" (keys %s: %s)", where, strings.Join(siblings, ", "))
}

// otherEnv are SIEMSHIP_ variables that are not configuration keys.
var otherEnv = []string{TokenEnv, "SIEMSHIP_RECEIVER_TOKENS", "SIEMSHIP_TOOLS_DIR", "SIEMSHIP_CONFIG"}

// unknownEnv lists SIEMSHIP_ variables that match no key: likely typos.
func unknownEnv() []string {
	keys := make(map[string]bool, len(defaults))
	for k := range defaults {
		keys["SIEMSHIP_"+strings.ToUpper(strings.ReplaceAll(k, ".", "_"))] = true
	}
	var warn []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "SIEMSHIP_") && !keys[name] && !slices.Contains(otherEnv, name) {
			warn = append(warn, fmt.Sprintf("environment variable %s matches no configuration key and is ignored", name))
		}
	}
	slices.Sort(warn)
	return warn
}

// ReadToken returns the ingest token from the token file or the environment.
func (l LogScale) ReadToken() (string, error) {
	if l.TokenFile != "" {
		data, err := os.ReadFile(l.TokenFile)
		if err != nil {
			return "", fmt.Errorf("read ingest token file (sinks.logscale.token_file): %w", err)
		}
		tok := strings.TrimSpace(string(data))
		if tok == "" {
			return "", fmt.Errorf("ingest token file %s is empty", l.TokenFile)
		}
		return tok, nil
	}
	if tok := strings.TrimSpace(os.Getenv(TokenEnv)); tok != "" {
		return tok, nil
	}
	return "", fmt.Errorf("no LogScale ingest token: set sinks.logscale.token_file to a file holding it (a mounted Secret) or the %s environment variable", TokenEnv)
}
