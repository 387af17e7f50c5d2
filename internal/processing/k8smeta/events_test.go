package k8smeta

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/siemship/siemship/internal/event"
)

// proc describes the process (or parent) of a generated Tetragon event.
// An empty proc is a host process.
type proc struct {
	binary, args string
	// Pod block fields; uid only since Tetragon 1.6.
	ns, name, uid string
	labels        map[string]string
	// containerID is the full id; the event carries its 31-char prefix in
	// docker, and "containerd://<id>" in the pod block.
	containerID string
	noPodBlock  bool // docker only: Tetragon's pod lookup timed out
}

// tetragonLine renders an event the way Tetragon's protojson export does
// (snake_case names, zero values omitted, the event key first, time last).
func tetragonLine(kind string, p, parent proc, at time.Time) []byte {
	body := fmt.Appendf(nil, `{"process":%s`, procJSON(p, 52699))
	if parent.binary != "" {
		body = fmt.Appendf(body, `,"parent":%s`, procJSON(parent, 52690))
	}
	return fmt.Appendf(nil, `{%q:%s},"node_name":"gke-prod-pool-1-9s95","time":%q}`,
		kind, body, at.UTC().Format(time.RFC3339Nano))
}

// The structs below keep Tetragon's member order (protobuf field order):
// exec_id … auid, pod, docker, parent_exec_id, tid.
type procDoc struct {
	ExecID       string   `json:"exec_id"`
	PID          int      `json:"pid"`
	UID          int      `json:"uid"`
	CWD          string   `json:"cwd"`
	Binary       string   `json:"binary"`
	Arguments    string   `json:"arguments,omitempty"`
	Flags        string   `json:"flags"`
	StartTime    string   `json:"start_time"`
	AUID         int64    `json:"auid"`
	Pod          *podDoc2 `json:"pod,omitempty"`
	Docker       string   `json:"docker,omitempty"`
	ParentExecID string   `json:"parent_exec_id"`
	TID          int      `json:"tid"`
}

type podDoc2 struct {
	Namespace    string            `json:"namespace"`
	Name         string            `json:"name"`
	Container    containerDoc      `json:"container"`
	PodLabels    map[string]string `json:"pod_labels,omitempty"`
	Workload     string            `json:"workload"`
	WorkloadKind string            `json:"workload_kind"`
	UID          string            `json:"uid,omitempty"`
}

type containerDoc struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Image struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"image"`
	StartTime string `json:"start_time"`
	PID       int    `json:"pid"`
}

func procJSON(p proc, pid int) json.RawMessage {
	if p.binary == "" {
		p.binary = "/usr/bin/curl"
	}
	d := procDoc{
		ExecID:       fmt.Sprintf("Z2tlLXByb2QtcG9vbC0xLTlzOTU6MTM1NDg2NzQzMjEzNzM6%d", pid),
		PID:          pid,
		CWD:          "/",
		Binary:       p.binary,
		Arguments:    p.args,
		Flags:        "execve rootcwd clone",
		StartTime:    "2026-03-06T22:03:57.700327580Z",
		AUID:         4294967295,
		ParentExecID: fmt.Sprintf("Z2tlLXByb2QtcG9vbC0xLTlzOTU6MTM1NDg2NzA4ODMyOTk6%d", pid-9),
		TID:          pid,
	}
	if p.containerID != "" {
		d.Docker = p.containerID[:31]
	}
	if (p.name != "" || p.uid != "") && !p.noPodBlock {
		pod := &podDoc2{
			Namespace: p.ns, Name: p.name, PodLabels: p.labels,
			Workload: p.name, WorkloadKind: "Pod", UID: p.uid,
		}
		pod.Container.ID = "containerd://" + p.containerID
		pod.Container.Name = "app"
		pod.Container.Image.ID = "registry.example/app@sha256:8e86f744bfea165fd4ce68caa05abc96500f40130b857773186401926af7e9e6"
		pod.Container.Image.Name = "registry.example/app:1"
		pod.Container.StartTime = "2026-03-06T21:52:41Z"
		pod.Container.PID = 49
		d.Pod = pod
	}
	b, err := json.Marshal(d)
	if err != nil {
		panic(err)
	}
	return b
}

// batchOf wraps lines in a batch as the Tetragon source and parser would.
func batchOf(kind string, lines ...[]byte) *event.Batch {
	evs := make([]event.Event, len(lines))
	for i, l := range lines {
		evs[i] = event.Event{Raw: l, Type: kind, Size: len(l)}
	}
	return event.NewBatch("tetragon", evs, nil)
}

// enrichOne enriches one event and returns its k8s member, checking that
// the rest of the event is unchanged.
func enrichOne(t testing.TB, e *Enricher, line []byte) map[string]any {
	t.Helper()
	b := batchOf(kindOf(t, line), line)
	e.Enrich(b)
	return k8sOf(t, line, b.Events[0].Raw)
}

// k8sOf returns the k8s member of enriched, after checking that enriched
// is valid JSON equal to orig plus that member.
func k8sOf(t testing.TB, orig, enriched []byte) map[string]any {
	t.Helper()
	var before, after map[string]any
	if err := json.Unmarshal(orig, &before); err != nil {
		t.Fatalf("original event: %v", err)
	}
	if err := json.Unmarshal(enriched, &after); err != nil {
		t.Fatalf("enriched event is not JSON: %v\n%s", err, enriched)
	}
	k8s, ok := after["k8s"].(map[string]any)
	if !ok {
		t.Fatalf("no k8s object in %s", enriched)
	}
	delete(after, "k8s")
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("enrichment changed the event:\nbefore %s\nafter  %s", orig, enriched)
	}
	return k8s
}

// kindOf returns the event key of a Tetragon line, as the parser sets Type.
func kindOf(t testing.TB, line []byte) string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(line, &m); err != nil {
		t.Fatal(err)
	}
	for k := range m {
		if k != "node_name" && k != "time" {
			return k
		}
	}
	t.Fatalf("no event key in %s", line)
	return ""
}

// get walks a decoded JSON object by keys.
func get(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func jsonString(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
