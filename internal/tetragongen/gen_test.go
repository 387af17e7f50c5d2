package tetragongen

import (
	"encoding/json"
	"testing"
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
