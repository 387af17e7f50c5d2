package tetragongen

import (
	"encoding/json"
	"regexp"
	"testing"
	"time"
)

func TestLinesAreValidTetragonShapedAndNumbered(t *testing.T) {
	g := New(1, "worker-1")
	total := 0
	types := map[string]int{}
	for seq := range 2000 {
		line := g.Line(nil, seq)
		var m map[string]json.RawMessage
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("line %d is not JSON: %v\n%s", seq, err, line)
		}
		for k := range m {
			if k != "node_name" && k != "time" {
				types[k]++
			}
		}
		if n, ok := Seq(line); !ok || n != seq {
			t.Fatalf("Seq = %d, %v; want %d", n, ok, seq)
		}
		total += len(line)
	}
	if avg := total / 2000; avg < 1500 || avg > 3000 {
		t.Errorf("average line is %d bytes, want about 2 KB like real exec events", avg)
	}
	if len(types) != 3 {
		t.Errorf("event types %v, want exec, exit and kprobe", types)
	}
}

func BenchmarkLine(b *testing.B) {
	g := New(1, "worker-1")
	var buf []byte
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		buf = g.Line(buf[:0], i)
	}
}

// Times have protojson's widths, as Tetragon writes them: 0, 3, 6 or 9
// fractional digits, and the value kept exactly.
func TestAppendProtoTime(t *testing.T) {
	base := time.Date(2024, 4, 14, 2, 19, 0, 0, time.UTC)
	for ns, want := range map[int]string{
		0:           "2024-04-14T02:19:00Z",
		615_000_000: "2024-04-14T02:19:00.615Z",
		615_100_000: "2024-04-14T02:19:00.615100Z",
		10_000:      "2024-04-14T02:19:00.000010Z",
		1:           "2024-04-14T02:19:00.000000001Z",
		700_326_670: "2024-04-14T02:19:00.700326670Z",
	} {
		got := string(AppendProtoTime(nil, base.Add(time.Duration(ns))))
		back, err := time.Parse(time.RFC3339Nano, got)
		if got != want || err != nil || !back.Equal(base.Add(time.Duration(ns))) {
			t.Errorf("%d ns: %s (%v), want %s", ns, got, err, want)
		}
	}
	// Another zone is written in UTC.
	if got := string(AppendProtoTime(nil, base.In(time.FixedZone("", 7200)))); got != "2024-04-14T02:19:00Z" {
		t.Errorf("non-UTC time: %s", got)
	}
	g := New(1, "worker-1")
	width := regexp.MustCompile(`"(?:time|start_time)":"[^"]*?(?:\.(\d+))?Z"`)
	for seq := range 500 {
		for _, m := range width.FindAllSubmatch(g.Line(nil, seq), -1) {
			if n := len(m[1]); n != 0 && n != 3 && n != 6 && n != 9 {
				t.Fatalf("line %d: %s has %d fractional digits", seq, m[0], n)
			}
		}
	}
}
