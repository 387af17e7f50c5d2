package logpush

import (
	"net/http"
	"path"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	segjson "github.com/segmentio/encoding/json"

	"github.com/siemship/siemship/internal/event"
	"github.com/siemship/siemship/internal/jsonstr"
)

// maxDatasets bounds the distinct event types (tags, metric labels) a
// source creates, whatever URLs its authenticated clients use.
const maxDatasets = 64

// dataset is one dataset's event type and how its records are dated.
// Safe for concurrent use.
type dataset struct {
	name    string
	fields  []string               // time fields, in the order tried
	hint    atomic.Pointer[string] // the field that dated the last record, tried first
	records prometheus.Counter
}

// datasets interns datasets by name. Safe for concurrent use.
type datasets struct {
	timeField string
	records   *prometheus.CounterVec

	mu sync.Mutex
	m  map[string]*dataset
}

func newDatasets(timeField string, records *prometheus.CounterVec) *datasets {
	return &datasets{timeField: timeField, records: records, m: make(map[string]*dataset)}
}

func (d *datasets) get(name string) *dataset {
	if !isIdentifier(name) {
		name = "unknown"
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if ds, ok := d.m[name]; ok {
		return ds
	}
	if len(d.m) >= maxDatasets {
		name = "other"
		if ds, ok := d.m[name]; ok {
			return ds
		}
	}
	ds := &dataset{name: name, fields: timeFields(name, d.timeField), records: d.records.WithLabelValues(name)}
	d.m[name] = ds
	return ds
}

func timeFields(name, configured string) []string {
	if configured != "" {
		return []string{configured}
	}
	known := datasetTimeFields[name]
	out := make([]string, 0, len(genericTimeFields)+1)
	if known != "" {
		out = append(out, known)
	}
	for _, f := range genericTimeFields {
		if f != known {
			out = append(out, f)
		}
	}
	return out
}

// datasetOf names a request's dataset: the configured one, else the
// tags=dataset:<x> query parameter Logpush jobs are often given, else the
// URL path's last element (/logpush/http_requests).
func datasetOf(configured string, r *http.Request) string {
	if configured != "" {
		return configured
	}
	for _, tags := range r.URL.Query()["tags"] {
		for t := range strings.SplitSeq(tags, ",") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(t), "dataset:"); ok && v != "" {
				return v
			}
		}
	}
	if base := path.Base(r.URL.Path); base != "/" && base != "." {
		return base
	}
	return "unknown"
}

// parse sets the event's type and time and flags a line that is not a JSON
// object. The record's bytes are not changed: they go out as received.
func (ds *dataset) parse(e *event.Event, now int64) {
	e.Type = ds.name
	if e.Flags&event.Truncated == 0 && (!jsonstr.StartsObject(e.Raw) || !segjson.Valid(e.Raw)) {
		e.Flags |= event.Malformed
	}
	if e.Flags&(event.Truncated|event.Malformed) == 0 {
		if ms, ok := ds.time(e.Raw); ok {
			e.Time = ms
			return
		}
	}
	e.Time = now
	e.Flags |= event.TimeGuessed
}

func (ds *dataset) time(raw []byte) (int64, bool) {
	if h := ds.hint.Load(); h != nil {
		if ms, ok := fieldTime(raw, *h); ok {
			return ms, true
		}
	}
	for i, f := range ds.fields {
		if ms, ok := fieldTime(raw, f); ok {
			if h := ds.hint.Load(); h == nil || *h != f {
				ds.hint.Store(&ds.fields[i])
			}
			return ms, true
		}
	}
	return 0, false
}
