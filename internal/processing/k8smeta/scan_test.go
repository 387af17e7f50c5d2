package k8smeta

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"
)

// gjsonScan is scanEvent written with gjson: the oracle for FuzzScanEvent
// and the baseline of BenchmarkScanEvent.
func gjsonScan(raw []byte, typ string) (self, parent podKey, ok bool) {
	s := bytesView(raw)
	if typ == "" {
		gjson.Parse(s).ForEach(func(k, _ gjson.Result) bool {
			typ = k.Str
			return false
		})
	}
	body := gjson.Get(s, gjson.Escape(typ))
	proc := body.Get("process")
	if !proc.IsObject() {
		return self, parent, false
	}
	self = gjsonKey(proc)
	if p := body.Get("parent"); p.IsObject() {
		parent = gjsonKey(p)
	}
	return self, parent, true
}

func gjsonKey(proc gjson.Result) podKey {
	var k podKey
	str := func(r gjson.Result) string {
		if r.Type != gjson.String || strings.Contains(r.Raw, `\`) {
			return ""
		}
		return r.Str
	}
	if pod := proc.Get("pod"); pod.IsObject() {
		k.uid = str(pod.Get("uid"))
		k.namespace = str(pod.Get("namespace"))
		k.name = str(pod.Get("name"))
	}
	k.docker = str(proc.Get("docker"))
	if len(k.docker) > dockerIDLen {
		k.docker = k.docker[:dockerIDLen]
	}
	return k
}

func TestScanEvent(t *testing.T) {
	full := "551e161c47d8ff0eb665438a7bcd5b4e3ef5a297282b40a92b7c77d6bd168eb3"
	line := tetragonLine("process_kprobe",
		proc{ns: "default", name: "xwing", uid: "u-1", containerID: full},
		proc{binary: "/bin/sh", ns: "other", name: "tie", containerID: full}, time.Now())
	self, parent, ok := scanEvent(line, "process_kprobe")
	want := podKey{uid: "u-1", namespace: "default", name: "xwing", docker: full[:31]}
	if !ok || self != want || parent != (podKey{namespace: "other", name: "tie", docker: full[:31]}) {
		t.Errorf("scanEvent = %+v, %+v, %v", self, parent, ok)
	}
	for _, c := range []struct {
		raw  string
		typ  string
		ok   bool
		self podKey
	}{
		{`{"process_exec":{"process":{"pod":{"name":"a\"b","namespace":"n"}}}}`, "process_exec", true, podKey{namespace: "n"}},
		{`{"process_exec":{"process":{}}, "time":"x"}`, "", true, podKey{}},
		{`{"node_name":"n","process_exec":{"process":{"docker":"abc"}}}`, "process_exec", true, podKey{docker: "abc"}},
		{`{"process_exec":{"process":7}}`, "process_exec", false, podKey{}},
		{`{"process_exec":{"parent":7,"process":{"docker":"abc"}}}`, "process_exec", true, podKey{docker: "abc"}},
		{`{"process_exec":{"process":{"docker":"abc"`, "process_exec", false, podKey{}},
		{`{"rate_limit_info":{"number_of_dropped_process_events":"1"}}`, "rate_limit_info", false, podKey{}},
		{`[]`, "", false, podKey{}},
	} {
		self, _, ok := scanEvent([]byte(c.raw), c.typ)
		if ok != c.ok || (ok && self != c.self) {
			t.Errorf("scanEvent(%s) = %+v, %v; want %+v, %v", c.raw, self, ok, c.self, c.ok)
		}
	}
}

// FuzzScanEvent checks scanEvent against gjson on valid JSON.
func FuzzScanEvent(f *testing.F) {
	f.Add([]byte(`{"process_exec":{"process":{"pod":{"namespace":"a","name":"b","uid":"u"},"docker":"d"},"parent":{"docker":"x"}},"time":"t"}`), "process_exec")
	f.Add([]byte(`{"a":[1,{"b":"}"}],"process_exit":{"parent":{"pod":{"name":"p"}},"process":{"pod":"x","docker":1}}}`), "process_exit")
	f.Add([]byte(`{"x":{"process":{"pod":{"name":"q\\"}}}}`), "")
	f.Add([]byte(`{"x":{"parent":[1],"process":{"pod":{"name":"q"}}}}`), "x")
	f.Add(tetragonLine("process_exec", proc{ns: "n", name: "p", uid: "u", containerID: randomHex(32)}, proc{binary: "/bin/sh"}, time.Now()), "process_exec")
	f.Fuzz(func(t *testing.T, raw []byte, typ string) {
		self, parent, ok := scanEvent(raw, typ)
		var v map[string]any
		if json.Unmarshal(raw, &v) != nil || hasDuplicateKeys(raw) {
			return // only the absence of panics is checked on invalid input
		}
		gs, gp, gok := gjsonScan(raw, typ)
		if ok != gok || self != gs || (ok && parent != gp) {
			t.Fatalf("scanEvent(%q, %q) = %+v %+v %v; gjson: %+v %+v %v", raw, typ, self, parent, ok, gs, gp, gok)
		}
	})
}

// hasDuplicateKeys reports whether any object in raw repeats a key, where
// "first one wins" in scanEvent and gjson may differ in what they skip.
func hasDuplicateKeys(raw []byte) bool {
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	type frame struct {
		obj  bool
		keys map[string]bool
		key  bool // next string token is a key
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{', '[':
				if top != nil && top.obj {
					top.key = true
				}
				stack = append(stack, &frame{obj: v == '{', keys: map[string]bool{}, key: v == '{'})
				continue
			default:
				stack = stack[:len(stack)-1]
				continue
			}
		case string:
			if top != nil && top.obj && top.key {
				if top.keys[v] {
					return true
				}
				top.keys[v] = true
				top.key = false
				continue
			}
		}
		if top != nil && top.obj {
			top.key = true
		}
	}
}

func BenchmarkScanEvent(b *testing.B) {
	line := tetragonLine("process_exec",
		proc{binary: "/usr/local/bin/python3.12", args: "-m app.server --port 8080 --workers 4", ns: "shop", name: "api-7d9f8-x2k9p",
			uid: "0b6f1c8e-3f0a-4c52-9d1e-8a7b6c5d4e3f", containerID: randomHex(32),
			labels: map[string]string{"app.kubernetes.io/name": "api", "app.kubernetes.io/instance": "api-prod", "pod-template-hash": "7d9f8"}},
		proc{binary: "/bin/sh", args: "-c /entrypoint.sh", ns: "shop", name: "api-7d9f8-x2k9p",
			uid: "0b6f1c8e-3f0a-4c52-9d1e-8a7b6c5d4e3f", containerID: randomHex(32)}, time.Now())
	b.Run("scanner", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(line)))
		for b.Loop() {
			scanEvent(line, "process_exec")
		}
	})
	b.Run("gjson", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(line)))
		for b.Loop() {
			gjsonScan(line, "process_exec")
		}
	})
}
