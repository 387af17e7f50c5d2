package logpush

import (
	"strconv"
	"time"

	"github.com/tidwall/gjson"
)

// datasetTimeFields is each Logpush dataset's event-time field, from
// Cloudflare's dataset field references. Logpush writes it in the job's
// timestamp_format: unixnano (a number), unix (a number) or rfc3339.
var datasetTimeFields = map[string]string{
	// Zone datasets.
	"http_requests":          "EdgeStartTimestamp",
	"firewall_events":        "Datetime",
	"dns_logs":               "Timestamp",
	"dns_firewall_logs":      "Timestamp",
	"nel_reports":            "Timestamp",
	"page_shield_events":     "Timestamp",
	"spectrum_events":        "Timestamp",
	"workers_trace_events":   "EventTimestampMs",
	"network_analytics_logs": "Datetime",
	// Account datasets.
	"access_requests":             "CreatedAt",
	"audit_logs":                  "When",
	"audit_logs_v2":               "Time",
	"biso_user_actions":           "Timestamp",
	"casb_findings":               "DetectedTimestamp",
	"device_posture_results":      "Timestamp",
	"dlp_forensic_copies":         "Datetime",
	"email_security_alerts":       "Timestamp",
	"gateway_dns":                 "Datetime",
	"gateway_http":                "Datetime",
	"gateway_network":             "Datetime",
	"magic_ids_detections":        "Timestamp",
	"sinkhole_http_logs":          "Timestamp",
	"zero_trust_network_sessions": "SessionStartTime",
}

// genericTimeFields are tried, in order, for datasets not listed above or
// records without their dataset's field.
var genericTimeFields = []string{
	"EdgeStartTimestamp", "Datetime", "Timestamp", "When", "CreatedAt", "EventTimestampMs",
	"SessionStartTime", "DetectedTimestamp", "Time", "StartTime", "timestamp", "time",
}

// fieldTime returns the time in field of a record, in Unix milliseconds.
// raw must be valid JSON.
func fieldTime(raw []byte, field string) (int64, bool) {
	return parseTime(gjson.GetBytes(raw, field))
}

// parseTime reads a time written in any of Logpush's timestamp formats:
// numbers are told apart by magnitude (seconds, milliseconds, microseconds
// or nanoseconds since the epoch), so one parser serves every job whatever
// its timestamp_format, and Workers' millisecond fields too.
func parseTime(r gjson.Result) (int64, bool) {
	switch r.Type {
	case gjson.Number:
		return parseEpoch(r.Raw)
	case gjson.String:
		if s := r.Str; s != "" && s[0] >= '0' && s[0] <= '9' && len(s) > 4 && s[4] != '-' {
			return parseEpoch(s)
		}
		t, err := time.Parse(time.RFC3339Nano, r.Str)
		if err != nil {
			return 0, false
		}
		return t.UnixMilli(), true
	}
	return 0, false
}

// Boundaries between epoch units: 1e11 seconds is the year 5138, so any
// realistic time in a larger unit is at least 1e11.
const (
	maxSeconds = 1e11
	maxMillis  = 1e14
	maxMicros  = 1e17
)

func parseEpoch(s string) (int64, bool) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		switch {
		case n <= 0:
			// Logpush writes 0 for a time it does not have.
			return 0, false
		case n < maxSeconds:
			return n * 1000, true
		case n < maxMillis:
			return n, true
		case n < maxMicros:
			return n / 1000, true
		default:
			return n / 1_000_000, true
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f <= 0 || f >= 9e18 {
		return 0, false
	}
	switch {
	case f < maxSeconds:
		return int64(f * 1000), true
	case f < maxMillis:
		return int64(f), true
	case f < maxMicros:
		return int64(f / 1000), true
	default:
		return int64(f / 1e6), true
	}
}
