package logscale

import (
	"bytes"
	"runtime"
	"strings"
	"testing"
)

func TestContentEncoding(t *testing.T) {
	body := []byte(validBodies["humio-structured"])
	cases := []struct {
		name     string
		encoding string
		body     []byte
		status   int
	}{
		{"identity", "", body, 200},
		{"gzip", "gzip", gz(t, body), 200},
		{"gzip upper case", "GZIP", gz(t, body), 200},
		{"gzip two members", "gzip", append(gz(t, []byte("[")), gz(t, []byte("]"))...), 200},
		{"corrupt gzip header", "gzip", []byte("not gzip at all"), 400},
		{"truncated gzip", "gzip", gz(t, body)[:20], 400},
		{"corrupt gzip data", "gzip", corrupt(gz(t, body)), 400},
		{"plain body sent as gzip", "gzip", body, 400},
		{"unsupported encoding", "br", body, 415},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, ts := startServer(t, testConfig())
			r := do(t, ts, request{path: structuredPath, auth: "Bearer " + tokMain, body: c.body,
				header: map[string]string{"Content-Encoding": c.encoding}})
			if r.status != c.status {
				t.Fatalf("status %d (%s), want %d", r.status, strings.TrimSpace(r.body), c.status)
			}
			if c.status != 200 && s.Stats().Events != 0 {
				t.Fatal("stored events of a rejected request")
			}
		})
	}
}

// corrupt flips bytes in the deflate data, keeping header and trailer.
func corrupt(b []byte) []byte {
	c := bytes.Clone(b)
	for i := 12; i < len(c)-8; i++ {
		c[i] ^= 0x5a
	}
	return c
}

func TestBodyLimit(t *testing.T) {
	cfg := testConfig()
	cfg.MaxBodyBytes = 1000
	s, ts := startServer(t, cfg)
	pad := func(n int) []byte { // a valid structured body of exactly n bytes
		b := []byte(`[{"events":[{"timestamp":1,"rawstring":""}]}]`)
		return append(b[:len(b)-5], append(bytes.Repeat([]byte("x"), n-len(b)), b[len(b)-5:]...)...)
	}
	for _, c := range []struct {
		name   string
		body   []byte
		enc    string
		status int
	}{
		{"at limit", pad(1000), "", 200},
		{"over limit", pad(1001), "", 413},
		{"at limit gzip", gz(t, pad(1000)), "gzip", 200},
		{"over limit gzip", gz(t, pad(1001)), "gzip", 413},
	} {
		r := do(t, ts, request{path: structuredPath, auth: "Bearer " + tokMain, body: c.body,
			header: map[string]string{"Content-Encoding": c.enc}})
		if r.status != c.status {
			t.Errorf("%s: status %d (%s), want %d", c.name, r.status, r.body, c.status)
		}
	}
	if st := s.Stats(); st.Events != 2 || st.RequestsByStatus[413] != 2 {
		t.Fatalf("stats %+v", st)
	}
}

// gzipBomb returns about 1 MiB of gzip that decompresses to n MiB of zeros:
// n copies of one gzip member (readers join members into one stream).
func gzipBomb(t *testing.T, n int) []byte {
	member := gz(t, make([]byte, 1<<20))
	return bytes.Repeat(member, n)
}

// A gzip bomb must be stopped just past the limit, not decompressed fully.
func TestGzipBombStopsAtLimit(t *testing.T) {
	const limit = 4 << 20
	cfg := testConfig()
	cfg.MaxBodyBytes = limit
	s, ts := startServer(t, cfg)
	bomb := gzipBomb(t, 4096) // 4 GiB decompressed

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	r := do(t, ts, request{path: structuredPath, auth: "Bearer " + tokMain, body: bomb,
		header: map[string]string{"Content-Encoding": "gzip"}})
	runtime.ReadMemStats(&after)

	if r.status != 413 {
		t.Fatalf("status %d, want 413", r.status)
	}
	reqs := s.Requests()
	last := reqs[len(reqs)-1]
	if last.Status != 413 || last.CompressedBytes >= int64(len(bomb))/2 {
		t.Errorf("read %d of %d compressed bytes: decompression did not stop early", last.CompressedBytes, len(bomb))
	}
	// 4 GiB would take gigabytes; the limit bounds the allocation.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 {
		t.Errorf("allocated %d MiB for a %d MiB limit", alloc>>20, limit>>20)
	}
}
