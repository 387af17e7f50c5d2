// Package config loads siemship's configuration: a YAML file, overridden by
// SIEMSHIP_* environment variables and a few flags. Each component owns its
// options (a Config struct whose mapstructure tags are the keys, a
// DefaultConfig and a Validate); this package composes them under named
// instances (sources.<name>, sinks.<name>, with a type that defaults to the
// name) and the routes between them. Unknown keys and invalid values are
// errors that name the key and the expected form, all reported at once.
//
// Secrets are never part of the file: they come from a *_file key (a
// mounted Secret) or an environment variable, so that a ConfigMap or a
// command line never holds them.
package config

import (
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"time"

	"github.com/siemship/siemship/internal/bytesize"
	"github.com/siemship/siemship/internal/leader"
	"github.com/siemship/siemship/internal/pipeline"
	"github.com/siemship/siemship/internal/processing/k8smeta"
	"github.com/siemship/siemship/internal/sinks/httpingest"
	"github.com/siemship/siemship/internal/sinks/logscale"
	"github.com/siemship/siemship/internal/sinks/syslog"
	"github.com/siemship/siemship/internal/sources/falconapi"
	"github.com/siemship/siemship/internal/sources/falconstream"
	"github.com/siemship/siemship/internal/sources/logpush"
	"github.com/siemship/siemship/internal/sources/tetragon"
)

// Config is the whole agent configuration. The mapstructure tags are the
// top-level keys; sources, sinks and routes are composed separately.
type Config struct {
	Log            Log            `mapstructure:"log"`
	StateDir       string         `mapstructure:"state_dir"`
	Listen         string         `mapstructure:"listen"`
	StatusInterval time.Duration  `mapstructure:"status_interval"`
	ShutdownGrace  time.Duration  `mapstructure:"shutdown_grace"`
	BufferBytes    bytesize.Size  `mapstructure:"buffer_bytes"`
	MemoryLimit    bytesize.Size  `mapstructure:"memory_limit"`
	Readiness      Readiness      `mapstructure:"readiness"`
	Kubernetes     k8smeta.Config `mapstructure:"kubernetes"`
	LeaderElection leader.Config  `mapstructure:"leader_election"`

	Sources []Source         `mapstructure:"-"`
	Sinks   []Sink           `mapstructure:"-"`
	Routes  []pipeline.Route `mapstructure:"-"`
}

// Log configures the agent's own logs.
type Log struct {
	Level  string `mapstructure:"level"`
	Format string `mapstructure:"format"`
}

// Readiness decides what /readyz gates on.
type Readiness struct {
	// RequireSinks makes a sink that cannot deliver (unreachable, token
	// rejected) turn the pod NotReady. Off by default: a SIEM outage would
	// make every pod of the DaemonSet NotReady and stall its rollouts, while
	// the events wait safely on disk; /readyz still reports it.
	RequireSinks bool `mapstructure:"require_sinks"`
}

// Source is one configured source: its name, type and the type's options.
// Exactly one of the option pointers is set, the one of Type.
type Source struct {
	Name, Type string
	Tetragon   *tetragon.Config
	Logpush    *logpush.Config
	Falcon     *falconstream.Config
	FalconAPI  *falconapi.Config
}

// Sink is one configured sink; exactly one option pointer is set.
type Sink struct {
	Name, Type string
	LogScale   *logscale.Config
	HTTP       *httpingest.Config
	Syslog     *syslog.Config
}

// Component types.
const (
	TypeTetragon  = "tetragon"
	TypeLogpush   = "logpush"
	TypeFalcon    = "falcon_stream"
	TypeFalconAPI = "falcon_api"
	TypeLogScale  = "logscale"
	TypeHTTP      = "http"
	TypeSyslog    = "syslog"
)

var (
	sourceTypes = []string{TypeTetragon, TypeLogpush, TypeFalcon, TypeFalconAPI}
	sinkTypes   = []string{TypeLogScale, TypeHTTP, TypeSyslog}
)

// newSource returns a source of typ with its defaults and a pointer to its
// options for the decoder.
func newSource(name, typ string) (Source, any) {
	s := Source{Name: name, Type: typ}
	switch typ {
	case TypeTetragon:
		c := tetragon.DefaultConfig()
		s.Tetragon = &c
		return s, s.Tetragon
	case TypeLogpush:
		c := logpush.DefaultConfig()
		s.Logpush = &c
		return s, s.Logpush
	case TypeFalcon:
		c := falconstream.DefaultConfig()
		s.Falcon = &c
		return s, s.Falcon
	case TypeFalconAPI:
		c := falconapi.DefaultConfig()
		s.FalconAPI = &c
		return s, s.FalconAPI
	}
	return s, nil
}

func newSink(name, typ string) (Sink, any) {
	s := Sink{Name: name, Type: typ}
	switch typ {
	case TypeLogScale:
		c := logscale.DefaultConfig()
		s.LogScale = &c
		return s, s.LogScale
	case TypeHTTP:
		c := httpingest.DefaultConfig()
		s.HTTP = &c
		return s, s.HTTP
	case TypeSyslog:
		c := syslog.DefaultConfig()
		s.Syslog = &c
		return s, s.Syslog
	}
	return s, nil
}

// defaults returns the top-level defaults.
func defaults() Config {
	k := k8smeta.DefaultConfig()
	k.Enabled = false // opt-in: it needs RBAC and an API server
	return Config{
		Log:            Log{Level: "info", Format: "auto"},
		StateDir:       "/var/lib/siemship",
		Listen:         ":9090",
		StatusInterval: 30 * time.Second,
		ShutdownGrace:  20 * time.Second,
		BufferBytes:    16 << 20,
		MemoryLimit:    40 << 20,
		Kubernetes:     k,
		LeaderElection: leader.DefaultConfig(),
	}
}

// Without sources or sinks in the file, these are configured, so that a
// file (or environment) written for the first releases keeps working.
var (
	defaultSources = []string{TypeTetragon}
	defaultSinks   = []string{TypeLogScale}
)

var namePattern = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

func checkName(section, name string) error {
	if !namePattern.MatchString(name) {
		return fmt.Errorf("%s.%s: a name must match [a-z][a-z0-9_]* (lower case, digits, _), so that SIEMSHIP_%s_<NAME>_* variables can set it",
			section, name, upper(section))
	}
	return nil
}

func knownType(section, typ string) error {
	types := sourceTypes
	if section == "sinks" {
		types = sinkTypes
	}
	if !slices.Contains(types, typ) {
		return fmt.Errorf("type %q is not a %s type (types: %v)", typ, section[:len(section)-1], types)
	}
	return nil
}

// LeaderOnly reports whether a source of typ must have one active
// instance (one Falcon appId holds one session): with leader_election
// enabled it runs only while the process holds the Lease.
func LeaderOnly(typ string) bool { return typ == TypeFalcon || typ == TypeFalconAPI }

// Source returns the source named name, or nil.
func (c *Config) Source(name string) *Source {
	for i := range c.Sources {
		if c.Sources[i].Name == name {
			return &c.Sources[i]
		}
	}
	return nil
}

// Sink returns the sink named name, or nil.
func (c *Config) Sink(name string) *Sink {
	for i := range c.Sinks {
		if c.Sinks[i].Name == name {
			return &c.Sinks[i]
		}
	}
	return nil
}

// Keys lists every key the loader accepts, with <name> standing for a
// component's name ("sinks.<name>.url"), each once; for the tests that hold
// the README and the chart to the code.
func Keys() []string {
	set := map[string]bool{"routes": true}
	for _, f := range fieldsOf(reflect.TypeFor[Config]()) {
		set[f.key] = true
	}
	for _, typ := range sourceTypes {
		_, opts := newSource("x", typ)
		set["sources.<name>.type"] = true
		for _, f := range fieldsOf(reflect.TypeOf(opts).Elem()) {
			set["sources.<name>."+f.key] = true
		}
	}
	for _, typ := range sinkTypes {
		_, opts := newSink("x", typ)
		set["sinks.<name>.type"] = true
		for _, f := range fieldsOf(reflect.TypeOf(opts).Elem()) {
			set["sinks.<name>."+f.key] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// TypeKeys lists the keys of one component type, relative to the component.
func TypeKeys(section, typ string) []string {
	var opts any
	if section == "sources" {
		_, opts = newSource("x", typ)
	} else {
		_, opts = newSink("x", typ)
	}
	if opts == nil {
		return nil
	}
	var keys []string
	for _, f := range fieldsOf(reflect.TypeOf(opts).Elem()) {
		keys = append(keys, f.key)
	}
	return keys
}
