package logscale

import (
	"context"
	"encoding/json"
	"maps"
	"sync"
)

// StoredEvent is one accepted event, normalised the way LogScale stores it.
// Its strings may share memory with the request body they came from.
type StoredEvent struct {
	Repo      string // repository of the token
	Route     string // ingest route name, e.g. "humio-structured"
	RequestID uint64 // see RequestRecord.ID
	// Timestamp is @timestamp in Unix milliseconds.
	Timestamp int64
	// Timezone is the event's timezone field, if it sent one.
	Timezone string
	// RawString is @rawstring: the rawstring sent, or for a structured event
	// without one the attributes JSON as sent.
	RawString string
	// Tags are the event's tags without the leading '#'. The map is shared by
	// the events of one group: do not modify it.
	Tags map[string]string
	// Attributes is the JSON object the event's fields come from, byte for
	// byte as sent: structured attributes, a HEC event object, a /json item.
	Attributes string
	// Extra are fields that do not come from Attributes (HEC fields, @host,
	// @source, unstructured fields). Shared like Tags.
	Extra map[string]string
}

// Fields returns the event's fields as LogScale names them: Attributes
// flattened (nested objects as dotted names, arrays as name[i]) plus Extra.
func (e StoredEvent) Fields() map[string]string {
	f := map[string]string{}
	if e.Attributes != "" {
		flatten(e.Attributes, f)
	}
	maps.Copy(f, e.Extra)
	return f
}

// MarshalJSON renders the event as the inspection API shows it.
func (e StoredEvent) MarshalJSON() ([]byte, error) {
	v := struct {
		Repo       string            `json:"repo"`
		Route      string            `json:"route"`
		RequestID  uint64            `json:"requestId"`
		Timestamp  int64             `json:"@timestamp"`
		Timezone   string            `json:"@timezone,omitempty"`
		RawString  string            `json:"@rawstring"`
		Tags       map[string]string `json:"tags"`
		Fields     map[string]string `json:"fields"`
		Attributes json.RawMessage   `json:"attributes,omitempty"`
	}{e.Repo, e.Route, e.RequestID, e.Timestamp, e.Timezone, e.RawString, e.Tags, e.Fields(), nil}
	if e.Attributes != "" {
		v.Attributes = json.RawMessage(e.Attributes)
	}
	return json.Marshal(v)
}

// Stats are the receiver's counters.
type Stats struct {
	Events           int64                       `json:"events"`
	EventsByRepo     map[string]int64            `json:"eventsByRepo"`
	EventsByTag      map[string]map[string]int64 `json:"eventsByTag"` // repo → "key=value" → events
	Requests         int64                       `json:"requests"`
	RequestsByStatus map[int]int64               `json:"requestsByStatus"`
	Faults           map[FaultKind]int64         `json:"faults"`
	CompressedBytes  int64                       `json:"compressedBytes"`
	DecodedBytes     int64                       `json:"decodedBytes"`
}

// pending is what one request would store, built before anything is committed.
type pending struct {
	keep   bool // build StoredEvents (not Discard, or OnEvent set)
	events []StoredEvent
	count  int64
	tags   map[string]int64 // "key=value" → events
}

// group notes that n events with tags are about to be added.
func (p *pending) group(tags map[string]string, n int) {
	if len(tags) == 0 || n == 0 {
		return
	}
	if p.tags == nil {
		p.tags = map[string]int64{}
	}
	for k, v := range tags {
		p.tags[k+"="+v] += int64(n)
	}
}

func (p *pending) add(e StoredEvent) {
	p.count++
	if p.keep {
		p.events = append(p.events, e)
	}
}

type store struct {
	discard bool
	mu      sync.Mutex
	events  []StoredEvent
	stats   Stats
}

func newStore(discard bool) *store {
	s := &store{discard: discard}
	s.reset()
	return s
}

func (s *store) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = nil
	s.stats = Stats{
		EventsByRepo:     map[string]int64{},
		EventsByTag:      map[string]map[string]int64{},
		RequestsByStatus: map[int]int64{},
		Faults:           map[FaultKind]int64{},
	}
}

// commit stores p for repo unless ctx is done: a client that stopped waiting
// must not find its events stored, or its retry would duplicate them.
func (s *store) commit(ctx context.Context, repo string, p *pending) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	if !s.discard {
		s.events = append(s.events, p.events...)
	}
	s.stats.Events += p.count
	s.stats.EventsByRepo[repo] += p.count
	if len(p.tags) > 0 {
		byTag := s.stats.EventsByTag[repo]
		if byTag == nil {
			byTag = map[string]int64{}
			s.stats.EventsByTag[repo] = byTag
		}
		for k, n := range p.tags {
			byTag[k] += n
		}
	}
	return nil
}

// request counts a finished request.
func (s *store) request(status int, fault FaultKind, compressed, decoded int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Requests++
	s.stats.RequestsByStatus[status]++
	if fault != "" {
		s.stats.Faults[fault]++
	}
	s.stats.CompressedBytes += compressed
	s.stats.DecodedBytes += decoded
}

// Events returns the stored events of repo ("" for all), oldest first.
// In Discard mode it is always empty.
func (s *Server) Events(repo string) []StoredEvent {
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	var out []StoredEvent
	for _, e := range s.store.events {
		if repo == "" || e.Repo == repo {
			out = append(out, e)
		}
	}
	return out
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	st := s.store.stats
	st.EventsByRepo = maps.Clone(st.EventsByRepo)
	st.EventsByTag = make(map[string]map[string]int64, len(s.store.stats.EventsByTag))
	for repo, m := range s.store.stats.EventsByTag {
		st.EventsByTag[repo] = maps.Clone(m)
	}
	st.RequestsByStatus = maps.Clone(st.RequestsByStatus)
	st.Faults = maps.Clone(st.Faults)
	return st
}
