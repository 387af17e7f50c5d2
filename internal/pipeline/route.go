package pipeline

import (
	"fmt"
	"path"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/siemship/siemship/internal/event"
)

// Route sends the events of one source to a set of sinks, optionally
// filtered. The mapstructure tags are the keys of an entry of routes.
type Route struct {
	// Name labels the route's metrics; default "<from>-><to,...>".
	Name    string    `mapstructure:"name"`
	From    string    `mapstructure:"from"`
	To      []string  `mapstructure:"to"`
	Include *Selector `mapstructure:"include"`
	Exclude *Selector `mapstructure:"exclude"`
}

// DisplayName is the route's name or the one derived from its ends.
func (r *Route) DisplayName() string {
	if r.Name != "" {
		return r.Name
	}
	return r.From + "->" + strings.Join(r.To, ",")
}

// Selector matches events. Within a list any entry may match; across
// lists all non-empty ones must: {event_types: [process_exec], namespaces:
// [dev-*]} selects exec events of the dev-* namespaces. Lists are read from
// the event's bytes without decoding it.
type Selector struct {
	// EventTypes are globs on the event type (process_exec, process_kprobe…).
	EventTypes []string `mapstructure:"event_types"`
	// Namespaces are globs on the Kubernetes namespace of the process's pod.
	Namespaces []string `mapstructure:"namespaces"`
	// PodLabels are key=value pairs (value may be a glob) on the pod's labels.
	PodLabels []string `mapstructure:"pod_labels"`
	// Binaries are globs on the process's binary path ("*" crosses "/").
	Binaries []string `mapstructure:"binaries"`
}

// Check reports the first malformed pattern, naming its list.
func (s *Selector) Check() error {
	for list, pats := range map[string][]string{"event_types": s.EventTypes, "namespaces": s.Namespaces, "binaries": s.Binaries} {
		for _, p := range pats {
			if _, err := path.Match(p, ""); err != nil {
				return fmt.Errorf("%s: %q is not a valid glob: %w", list, p, err)
			}
		}
	}
	for _, l := range s.PodLabels {
		k, v, ok := strings.Cut(l, "=")
		if _, err := path.Match(v, ""); !ok || k == "" || err != nil {
			return fmt.Errorf("pod_labels: %q must be key=value (the value may be a glob)", l)
		}
	}
	return nil
}

func (s *Selector) empty() bool {
	return s == nil || len(s.EventTypes)+len(s.Namespaces)+len(s.PodLabels)+len(s.Binaries) == 0
}

// matches reports whether ev is selected.
func (s *Selector) matches(ev *event.Event) bool {
	if len(s.EventTypes) > 0 && !anyGlob(s.EventTypes, ev.Type) {
		return false
	}
	if len(s.Namespaces) == 0 && len(s.PodLabels) == 0 && len(s.Binaries) == 0 {
		return true
	}
	if ev.Defect() != "" {
		return false // not JSON: nothing to read the fields from
	}
	proc := gjson.GetBytes(ev.Raw, gjson.Escape(ev.Type)+".process")
	if len(s.Binaries) > 0 && !anyGlob(s.Binaries, proc.Get("binary").String()) {
		return false
	}
	if len(s.Namespaces) > 0 && !anyGlob(s.Namespaces, namespace(ev, proc)) {
		return false
	}
	if len(s.PodLabels) > 0 && !s.labelsMatch(ev, proc) {
		return false
	}
	return true
}

// namespace is Tetragon's pod namespace, else the one siemship's
// Kubernetes enrichment added.
func namespace(ev *event.Event, proc gjson.Result) string {
	if ns := proc.Get("pod.namespace"); ns.Exists() {
		return ns.String()
	}
	return gjson.GetBytes(ev.Raw, "k8s.pod.namespace").String()
}

func (s *Selector) labelsMatch(ev *event.Event, proc gjson.Result) bool {
	labels := proc.Get("pod.pod_labels")
	if !labels.Exists() {
		labels = gjson.GetBytes(ev.Raw, "k8s.pod.labels")
	}
	for _, l := range s.PodLabels {
		k, pat, _ := strings.Cut(l, "=")
		if v := labels.Get(gjson.Escape(k)); v.Exists() && glob(pat, v.String()) {
			return true
		}
	}
	return false
}

// anyGlob reports whether s matches one of pats; an absent field ("")
// matches nothing, so {namespaces: ["*"]} selects events of pods only.
func anyGlob(pats []string, s string) bool {
	if s == "" {
		return false
	}
	for _, p := range pats {
		if glob(p, s) {
			return true
		}
	}
	return false
}

// glob matches like path.Match, except that "*" also crosses "/" (so
// "/usr/*" matches every binary under /usr).
func glob(pat, s string) bool {
	ok, _ := path.Match(strings.ReplaceAll(pat, "/", "\x00"), strings.ReplaceAll(s, "/", "\x00"))
	return ok
}

// filter is a route's compiled include/exclude.
type filter struct{ include, exclude *Selector }

func (f filter) none() bool { return f.include.empty() && f.exclude.empty() }

// keeps reports whether the route ships ev.
func (f filter) keeps(ev *event.Event) bool {
	if !f.include.empty() && !f.include.matches(ev) {
		return false
	}
	return f.exclude.empty() || !f.exclude.matches(ev)
}
