package logscale

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/siemship/siemship/internal/event"
	"github.com/siemship/siemship/internal/jsonstr"
)

var update = flag.Bool("update", false, "rewrite golden files")

// goldenEvents are the Tetragon samples, an event with 64-bit integers as
// strings and numbers beyond float64 precision, a truncated and a malformed
// line, from two sources.
func goldenEvents(t testing.TB) (sources []string, evs []*event.Event) {
	lines := sampleLines(t)
	add := func(src string, raw string, ms int64, flags event.Flags, size int) {
		typ := eventType([]byte(raw))
		if flags != 0 {
			typ = "unknown"
		}
		sources = append(sources, src)
		evs = append(evs, &event.Event{Raw: []byte(raw), Time: ms, Type: typ, Size: size, Flags: flags})
	}
	for i, l := range lines {
		add("tetragon", string(l), 1696629837700+int64(i), 0, len(l))
	}
	big := `{"process_kprobe":{"args":[{"size_arg":"18446744073709551615"},{"int_arg":-9223372036854775808}],"z":1,"a":2,"big":12345678901234567890123},"node_name":"n1","time":"2026-03-01T12:00:00.123456789Z"}`
	add("tetragon", big, 1772366400123, 0, len(big))
	add("other \"src\"", `{"process_exit":{"status":0}}`, 5, 0, 28)
	add("tetragon", `{"process_exec":{"process":{"binary":"/bin/\"sh\"\\ é`+"\xe2\x82"+"\t\x01", 1772366400999, event.Truncated, 1<<20)
	add("tetragon", `not json at all: <script>`, 1772366401000, event.Malformed, 25)
	return sources, evs
}

func encodeAll(t testing.TB, enc *encoder, sources []string, evs []*event.Event) ([]byte, *builder) {
	b := newBuilder(enc)
	for i, ev := range evs {
		if !b.Add(sources[i], ev, math.MaxInt) {
			t.Fatal("add refused an event with no size limit")
		}
	}
	var out bytes.Buffer
	if err := b.WriteBody(&out); err != nil {
		t.Fatal(err)
	}
	return out.Bytes(), b
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("body differs from %s\ngot:  %s\nwant: %s", path, got, want)
	}
}

func TestEncodeStructuredGolden(t *testing.T) {
	sources, evs := goldenEvents(t)
	enc := newEncoder(FormatStructured, map[string]string{"cluster": "kind", "env": "test"})
	body, b := encodeAll(t, enc, sources, evs)
	checkGolden(t, "structured.golden.json", body)
	if b.size != len(body) {
		t.Errorf("builder size %d, body has %d bytes", b.size, len(body))
	}

	// Decode and compare each event with what went in.
	got := decodeStructured(t, body)
	if len(got) != len(evs) {
		t.Fatalf("decoded %d events, want %d", len(got), len(evs))
	}
	// Events come grouped by (source, type): match them by timestamp.
	byTime := map[int64]recvEvent{}
	for _, e := range got {
		byTime[e.Timestamp] = e
	}
	for i, ev := range evs {
		e, ok := byTime[ev.Time]
		if !ok {
			t.Fatalf("event %d (time %d) missing", i, ev.Time)
		}
		if e.Tags["source"] != sources[i] || e.Tags["event_type"] != ev.Type || e.Tags["cluster"] != "kind" || e.Tags["env"] != "test" {
			t.Errorf("event %d: tags %v", i, e.Tags)
		}
		if ev.Flags == 0 {
			// Byte-identical: key order, 64-bit strings and big numbers kept.
			if !bytes.Equal(e.Attrs, ev.Raw) {
				t.Errorf("event %d: attributes\n%s\nwant verbatim\n%s", i, e.Attrs, ev.Raw)
			}
			if e.Rawstring != nil {
				t.Errorf("event %d: rawstring sent with attributes", i)
			}
			continue
		}
		if e.Rawstring == nil || *e.Rawstring != asText(ev.Raw) {
			t.Errorf("event %d: rawstring %v, want the raw line as text", i, e.Rawstring)
		}
		var attrs struct {
			Siemship struct {
				Error         string `json:"error"`
				OriginalBytes int    `json:"original_bytes"`
			} `json:"siemship"`
		}
		if err := json.Unmarshal(e.Attrs, &attrs); err != nil {
			t.Fatalf("event %d: attributes: %v", i, err)
		}
		want := map[event.Flags]string{event.Truncated: "truncated", event.Malformed: "malformed"}[ev.Flags]
		if attrs.Siemship.Error != want || attrs.Siemship.OriginalBytes != ev.Size {
			t.Errorf("event %d: siemship attributes %+v, want error %q and %d bytes", i, attrs.Siemship, want, ev.Size)
		}
	}
}

func TestEncodeStructuredGroupsBySourceAndType(t *testing.T) {
	sources, evs := goldenEvents(t)
	body, _ := encodeAll(t, newEncoder(FormatStructured, nil), sources, evs)
	var groups []struct {
		Tags   map[string]string `json:"tags"`
		Events []json.RawMessage `json:"events"`
	}
	if err := json.Unmarshal(body, &groups); err != nil {
		t.Fatal(err)
	}
	seen := map[[2]string]bool{}
	n := 0
	for _, g := range groups {
		k := [2]string{g.Tags["source"], g.Tags["event_type"]}
		if seen[k] {
			t.Errorf("group %v appears twice", k)
		}
		seen[k] = true
		if len(g.Tags) != 2 {
			t.Errorf("tags %v: want only source and event_type", g.Tags)
		}
		n += len(g.Events)
	}
	// process_exec ×2, process_kprobe ×2, process_exit, other/process_exit, unknown.
	if len(groups) != 5 || n != len(evs) {
		t.Errorf("%d groups with %d events, want 5 groups with %d", len(groups), n, len(evs))
	}
}

func TestEncodeHECGolden(t *testing.T) {
	sources, evs := goldenEvents(t)
	enc := newEncoder(FormatHEC, map[string]string{"cluster": "kind"})
	body, b := encodeAll(t, enc, sources, evs)
	checkGolden(t, "hec.golden.ndjson", body)
	if b.size != len(body) {
		t.Errorf("builder size %d, body has %d bytes", b.size, len(body))
	}
	lines := bytes.Split(bytes.TrimSuffix(body, []byte("\n")), []byte("\n"))
	if len(lines) != len(evs) {
		t.Fatalf("%d lines, want %d", len(lines), len(evs))
	}
	for i, l := range lines {
		var h struct {
			Time       json.Number       `json:"time"`
			Event      json.RawMessage   `json:"event"`
			Source     string            `json:"source"`
			Sourcetype string            `json:"sourcetype"`
			Fields     map[string]string `json:"fields"`
		}
		d := json.NewDecoder(bytes.NewReader(l))
		d.UseNumber()
		if err := d.Decode(&h); err != nil {
			t.Fatalf("line %d: %v\n%s", i, err, l)
		}
		ev := evs[i] // HEC keeps arrival order
		if sec, _ := h.Time.Float64(); math.Abs(sec*1000-float64(ev.Time)) > 0.5 {
			t.Errorf("line %d: time %s, want %d ms", i, h.Time, ev.Time)
		}
		if h.Source != sources[i] || h.Sourcetype != sources[i] || h.Fields["#source"] != sources[i] ||
			h.Fields["#event_type"] != ev.Type || h.Fields["#cluster"] != "kind" {
			t.Errorf("line %d: source %q sourcetype %q fields %v", i, h.Source, h.Sourcetype, h.Fields)
		}
		if ev.Flags == 0 {
			if !bytes.Equal(h.Event, ev.Raw) {
				t.Errorf("line %d: event not verbatim:\n%s", i, h.Event)
			}
			continue
		}
		var s string
		if err := json.Unmarshal(h.Event, &s); err != nil || s != asText(ev.Raw) {
			t.Errorf("line %d: event %s, want the raw line as a string", i, h.Event)
		}
		if h.Fields["siemship_error"] == "" {
			t.Errorf("line %d: flagged event without siemship_error: %v", i, h.Fields)
		}
	}
}

func TestAppendSeconds(t *testing.T) {
	for ms, want := range map[int64]string{
		0: "0.000", 5: "0.005", 1696629837700: "1696629837.700", 1696629837001: "1696629837.001", -1500: "-1.500",
	} {
		got := appendSeconds(nil, ms)
		if string(got) != want || secondsLen(ms) != len(want) {
			t.Errorf("appendSeconds(%d) = %s (len %d), want %s", ms, got, secondsLen(ms), want)
		}
	}
	for _, v := range []int64{0, 9, 10, -1, -10, math.MaxInt64, math.MinInt64} {
		if got := intLen(v); got != len(appendInt(v)) {
			t.Errorf("intLen(%d) = %d, want %d", v, got, len(appendInt(v)))
		}
	}
}

// asText is raw as encoding/json renders it in a string: each invalid
// UTF-8 byte becomes U+FFFD.
func asText(raw []byte) string {
	b, _ := json.Marshal(string(raw))
	var s string
	_ = json.Unmarshal(b, &s)
	return s
}

func appendInt(v int64) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestBuilderRespectsMaxBytes(t *testing.T) {
	lines := genTetragon(t, 200, 1)
	const limit = 20000
	b := newBuilder(newEncoder(FormatStructured, nil))
	evs := make([]event.Event, len(lines))
	for i, l := range lines {
		evs[i] = event.Event{Raw: l, Time: int64(i), Type: eventType(l)}
	}
	total := 0
	for i := range evs {
		if !b.Add("tetragon", &evs[i], limit) {
			total += checkBody(t, b, limit)
			b.Reset()
			if !b.Add("tetragon", &evs[i], limit) {
				t.Fatal("an empty builder refused an event")
			}
		}
	}
	total += checkBody(t, b, limit)
	if total != len(evs) {
		t.Errorf("%d events in bodies, want %d", total, len(evs))
	}
}

func checkBody(t *testing.T, b *builder, limit int) int {
	t.Helper()
	var out bytes.Buffer
	if err := b.WriteBody(&out); err != nil {
		t.Fatal(err)
	}
	if out.Len() != b.size || out.Len() > limit {
		t.Fatalf("body %d bytes, builder says %d, limit %d", out.Len(), b.size, limit)
	}
	return len(decodeStructured(t, out.Bytes()))
}

// TestEncodeNoAllocs: building and writing a request allocates nothing per
// event once the builder's buffers have grown.
func TestEncodeNoAllocs(t *testing.T) {
	for _, format := range []string{FormatStructured, FormatHEC} {
		sources, evs := goldenEvents(t)
		enc := newEncoder(format, map[string]string{"cluster": "kind"})
		b := newBuilder(enc)
		run := func() {
			b.Reset()
			for i, ev := range evs {
				b.Add(sources[i], ev, math.MaxInt)
			}
			_ = b.WriteBody(io.Discard)
		}
		run()
		if n := testing.AllocsPerRun(50, run); n != 0 {
			t.Errorf("%s: %.1f allocations per request, want 0", format, n)
		}
	}
}

func TestJSONString(t *testing.T) {
	for in, want := range map[string]string{
		"":                `""`,
		"plain":           `"plain"`,
		"q\"b\\":          `"q\"b\\"`,
		"\n\r\t\x00\x1f":  `"\n\r\t\u0000\u001f"`,
		"é€😀":             `"é€😀"`,
		"cut \xe2\x82":    "\"cut \ufffd\ufffd\"",
		"bad \xff end":    "\"bad \ufffd end\"",
		"<html>&\u2028ok": "\"<html>&\u2028ok\"",
	} {
		got := jsonstr.Append(nil, []byte(in))
		if string(got) != want {
			t.Errorf("jsonstr.Append(%q) = %s, want %s", in, got, want)
		}
		if n := jsonstr.Len([]byte(in)); n != len(got) {
			t.Errorf("jsonstr.Len(%q) = %d, want %d", in, n, len(got))
		}
	}
}
