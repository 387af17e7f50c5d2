package falconapi

// spec is one Falcon API resource: its endpoints and their limits, the
// timestamp field of its incremental filter and the scope that guards it
// (contracts/falcon.md, "API resources").
type spec struct {
	name       string
	queryPath  string
	entityPath string
	entityPost bool   // details POSTed as {idsKey: [...]}; else GET ?ids=
	idsKey     string // body key or query parameter of the details call
	idField    string // the record's id in its details
	timeField  string
	sortSep    string
	maxQuery   int
	maxEntity  int
	after      bool // the query endpoint pages with after tokens
	scope      string
	deprecated bool // removal announced for March 2026
}

var specs = []spec{
	{name: "hosts", queryPath: "/devices/queries/devices/v1", entityPath: "/devices/entities/devices/v2", entityPost: true, idsKey: "ids",
		idField: "device_id", timeField: "modified_timestamp", sortSep: ".", maxQuery: 5000, maxEntity: 5000, scope: "Hosts: read"},
	{name: "alerts", queryPath: "/alerts/queries/alerts/v2", entityPath: "/alerts/entities/alerts/v2", entityPost: true, idsKey: "composite_ids",
		idField: "composite_id", timeField: "updated_timestamp", sortSep: "|", maxQuery: 10000, maxEntity: 1000, scope: "Alerts: read"},
	{name: "vulnerabilities", queryPath: "/spotlight/queries/vulnerabilities/v1", entityPath: "/spotlight/entities/vulnerabilities/v2", idsKey: "ids",
		idField: "id", timeField: "updated_timestamp", sortSep: "|", maxQuery: 400, maxEntity: 400, after: true, scope: "Vulnerabilities: read"},
	{name: "filevantage", queryPath: "/filevantage/queries/changes/v2", entityPath: "/filevantage/entities/changes/v2", idsKey: "ids",
		idField: "id", timeField: "action_timestamp", sortSep: "|", maxQuery: 500, maxEntity: 500, scope: "Falcon FileVantage: read"},
	{name: "incidents", queryPath: "/incidents/queries/incidents/v1", entityPath: "/incidents/entities/incidents/GET/v1", entityPost: true, idsKey: "ids",
		idField: "incident_id", timeField: "modified_timestamp", sortSep: ".", maxQuery: 500, maxEntity: 500, scope: "Incidents: read", deprecated: true},
	{name: "behaviors", queryPath: "/incidents/queries/behaviors/v1", entityPath: "/incidents/entities/behaviors/GET/v1", entityPost: true, idsKey: "ids",
		idField: "behavior_id", timeField: "timestamp", sortSep: ".", maxQuery: 500, maxEntity: 500, scope: "Incidents: read", deprecated: true},
}

func specOf(name string) (spec, bool) {
	for _, s := range specs {
		if s.name == name {
			return s, true
		}
	}
	return spec{}, false
}

// ResourceNames lists the resources a source can poll.
func ResourceNames() []string {
	out := make([]string, len(specs))
	for i, s := range specs {
		out[i] = s.name
	}
	return out
}

// EventType is the event type of a resource's records.
func EventType(resource string) string { return "falcon_" + resource }
