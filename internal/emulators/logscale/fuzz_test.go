package logscale

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"
)

func decodeForFuzz(decode func(*decodeIn) error, body []byte) (*pending, error) {
	in := &decodeIn{body: string(body), token: Token{Repo: "main"}, now: 1, route: "fuzz", p: &pending{keep: true}}
	err := decode(in)
	if err == nil {
		for _, e := range in.p.events {
			_ = e.Fields() // must not panic either
		}
	}
	return in.p, err
}

func FuzzStructuredBody(f *testing.F) {
	for _, l := range tetragonLines(f) {
		f.Add([]byte(structuredBody(map[string]string{"source": "tetragon"}, 1713061094376, l)))
		f.Add([]byte(`[{"events":[{"timestamp":"2023-10-06T22:03:57.700327580Z","rawstring":` + jsonString(l) + `}]}]`))
	}
	for _, s := range []string{`[]`, `[{"events":[]}]`, `[{"tags":{"a":"b"},"events":[{"timestamp":1}]}]`,
		`[{"events":[{"timestamp":"2024-04-14T04:18:14","timezone":"UTC"}]}]`, `[{"events":[{"timestamp":1.5}]}]`,
		`[{"events":[{}]}]`, `{"events":[]}`, `[`, "[\"\\ud800\"]", `[{"events":[{"timestamp":1,"attributes":{"a":[{"b":null}]}}]}]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := decodeForFuzz(decodeStructured, body)
		if err != nil {
			if p.count != 0 && len(p.events) != int(p.count) {
				t.Fatalf("inconsistent pending after error")
			}
			return
		}
		// Whatever was accepted is JSON of the documented shape.
		var ref []struct{ Events []json.RawMessage }
		if uerr := json.Unmarshal(body, &ref); uerr != nil {
			t.Fatalf("accepted a body encoding/json rejects: %v", uerr)
		}
		n := 0
		for _, g := range ref {
			n += len(g.Events)
		}
		if n != int(p.count) || n != len(p.events) {
			t.Fatalf("accepted %d events, encoding/json sees %d", p.count, n)
		}
	})
}

func FuzzHECBody(f *testing.F) {
	for _, l := range tetragonLines(f) {
		f.Add([]byte(hecBody(l)))
		f.Add([]byte(`{"event":` + jsonString(l) + `,"index":"main","sourcetype":"tetragon"}` + hecBody(l)))
	}
	for _, s := range []string{``, `{"event":"x"}{"event":{"a":1}}`, "{\"event\":\"x\"}\r\n", `{"event":"}"}`,
		`{"event":"x","time":"1.5"}`, `{"event":"x","fields":{"#t":"v"}}`, `[{"event":"x"}]`, `{"event":"x"`, `{"event":"\"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := decodeForFuzz(decodeHEC, body)
		if err != nil {
			return
		}
		// encoding/json must read the same number of objects off the stream.
		dec := json.NewDecoder(bytes.NewReader(body))
		n := 0
		for {
			var v map[string]json.RawMessage
			derr := dec.Decode(&v)
			if errors.Is(derr, io.EOF) {
				break
			}
			if derr != nil {
				t.Fatalf("accepted a stream encoding/json rejects: %v", derr)
			}
			if _, ok := v["event"]; !ok {
				t.Fatal("accepted an object without event")
			}
			n++
		}
		if n != int(p.count) {
			t.Fatalf("accepted %d events, encoding/json sees %d", p.count, n)
		}
	})
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
