package logpush

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/siemship/siemship/internal/event"
)

const (
	rec1 = `{"ClientIP":"175.16.199.0","ClientRequestHost":"xyz.example.com","ClientRequestMethod":"POST","EdgeResponseStatus":200,"EdgeStartTimestamp":"2022-05-25T13:25:26Z","RayID":"710e98d9367f357d","ZoneName":"example.com"}`
	rec2 = `{"ClientIP":"175.16.199.1","EdgeStartTimestamp":1653485126000000000,"RayID":"710e98d9367f357e"}`
)

// Every answer the issue lists, and what each one emitted.
func TestStatusCodes(t *testing.T) {
	h := newHarness(t)
	h.start()
	bearer := "Bearer " + testSecret
	cases := []struct {
		name       string
		req        request
		status     int
		retryAfter bool
		records    int
	}{
		{"GET refused", request{method: http.MethodGet, auth: bearer}, 405, false, 0},
		{"PUT refused", request{method: http.MethodPut, auth: bearer, body: gz(rec1)}, 405, false, 0},
		{"no header", request{body: gz(rec1)}, 401, false, 0},
		{"wrong secret", request{auth: "Bearer nope", body: gz(rec1)}, 403, false, 0},
		{"secret as a prefix", request{auth: "Bearer " + testSecret + "x", body: gz(rec1)}, 403, false, 0},
		{"second accepted value", request{auth: "Bearer old-key", body: gz(rec1)}, 200, false, 1},
		{"whole header value in the file", request{auth: testSecret, body: gz(rec1)}, 200, false, 1},
		{"validation (tests)", request{auth: bearer, body: gz(`{"content":"tests"}`)}, 200, false, 0},
		{"validation (test)", request{auth: bearer, body: gz(`{"content":"test"}` + "\n")}, 200, false, 0},
		{"gzip with header", request{auth: bearer, header: map[string]string{"Content-Encoding": "gzip"}, body: gz(ndjson(rec1, rec2))}, 200, false, 2},
		{"gzip sniffed without header", request{auth: bearer, body: gz(ndjson(rec1, rec2))}, 200, false, 2},
		{"odd Content-Type ignored", request{auth: bearer, header: map[string]string{"Content-Type": "text/plain"}, body: gz(rec1)}, 200, false, 1},
		{"plain NDJSON", request{auth: bearer, body: strings.NewReader(ndjson(rec1, rec2))}, 200, false, 2},
		{"malformed line shipped", request{auth: bearer, body: gz(ndjson(rec1, `{"broken":`, rec2))}, 200, false, 3},
		{"empty body", request{auth: bearer, body: strings.NewReader("")}, 200, false, 0},
		{"corrupt gzip", request{auth: bearer, body: bytes.NewReader(corruptGzip(ndjson(rec1, rec2)))}, 400, false, 0},
		{"truncated gzip", request{auth: bearer, body: bytes.NewReader(gzipBytes([]byte(ndjson(rec1, rec2)))[:30])}, 400, false, 0},
		{"header says gzip, body is not", request{auth: bearer, header: map[string]string{"Content-Encoding": "gzip"}, body: strings.NewReader(rec1)}, 400, false, 0},
		{"unknown encoding", request{auth: bearer, header: map[string]string{"Content-Encoding": "br"}, body: strings.NewReader(rec1)}, 415, false, 0},
		{"too large", request{auth: bearer, body: gz(strings.Repeat(rec1+"\n", int(h.cfg.MaxBodyBytes)/len(rec1)+1))}, 413, false, 0},
		{"too large plain", request{auth: bearer, body: strings.NewReader(strings.Repeat(rec1+"\n", int(h.cfg.MaxBodyBytes)/len(rec1)+1))}, 413, false, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := len(h.sink.events())
			r := h.do(c.req)
			if r.status != c.status {
				t.Fatalf("status %d (%s), want %d", r.status, r.body, c.status)
			}
			if (r.retryAfter != "") != c.retryAfter {
				t.Errorf("Retry-After %q", r.retryAfter)
			}
			if got := len(h.sink.events()) - before; got != c.records {
				t.Errorf("%d records emitted, want %d", got, c.records)
			}
		})
	}
	if got := counterValue(h.src.m.validations); got != 2 {
		t.Errorf("validation requests counted %v, want 2", got)
	}
	if got := counterValue(h.src.m.requests.WithLabelValues("413")); got != 2 {
		t.Errorf("413 answers counted %v, want 2", got)
	}
}

// The records reach the sink byte for byte, in order, typed and dated; a
// malformed one is shipped flagged with the receive time.
func TestRecordsForwardedUntouched(t *testing.T) {
	h := newHarness(t)
	h.start()
	weird := `{ "EdgeStartTimestamp" : "2022-05-25T13:25:26.5+09:00", "k":"\u00e9\n" }`
	before := time.Now().UnixMilli()
	r := h.do(request{auth: "Bearer " + testSecret, path: "/x/firewall_events", body: gz(rec1 + "\r\n\n  \n" + `not json` + "\n" + weird)})
	if r.status != 200 {
		t.Fatalf("status %d %s", r.status, r.body)
	}
	got := h.sink.events()
	if len(got) != 3 {
		t.Fatalf("got %d events: %+v", len(got), got)
	}
	want := []recEvent{
		{raw: rec1, time: 1653485126000, typ: "firewall_events", size: len(rec1)},
		{raw: "not json", typ: "firewall_events", size: 8, flags: event.Malformed | event.TimeGuessed},
		{raw: weird, time: 1653485126500 - 9*3600*1000, typ: "firewall_events", size: len(weird)},
	}
	for i := range want {
		g, w := got[i], want[i]
		if w.flags&event.TimeGuessed != 0 {
			if g.time < before || g.time > time.Now().UnixMilli() {
				t.Errorf("event %d: time %d is not the receive time", i, g.time)
			}
			g.time = 0
		}
		if g != w {
			t.Errorf("event %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
}

// A record over max_record_bytes is cut and flagged, wherever it falls
// relative to the decode buffers; the records around it are intact.
func TestLongRecordsCut(t *testing.T) {
	h := newHarness(t)
	h.cfg.BatchBytes = 64 << 10
	h.cfg.MaxRecordBytes = 4 << 10
	h.start()
	mid := `{"EdgeStartTimestamp":1,"pad":"` + strings.Repeat("a", 5000) + `"}`
	huge := `{"pad":"` + strings.Repeat("b", 300<<10) + `"}`
	body := ndjson(rec1, mid, rec2, huge, rec1, huge) + rec2 // the last record without newline
	r := h.do(request{auth: "Bearer " + testSecret, body: gz(body)})
	if r.status != 200 {
		t.Fatalf("status %d %s", r.status, r.body)
	}
	got := h.sink.events()
	wantRaw := []string{rec1, mid[:4<<10], rec2, huge[:4<<10], rec1, huge[:4<<10], rec2}
	wantSize := []int{len(rec1), len(mid), len(rec2), len(huge), len(rec1), len(huge), len(rec2)}
	if len(got) != len(wantRaw) {
		t.Fatalf("got %d events, want %d", len(got), len(wantRaw))
	}
	for i := range wantRaw {
		cut := wantSize[i] > len(wantRaw[i])
		if got[i].raw != wantRaw[i] || got[i].size != wantSize[i] || (got[i].flags&event.Truncated != 0) != cut {
			t.Errorf("event %d: %d bytes, size %d, flags %b; want %d bytes, size %d, cut %v",
				i, len(got[i].raw), got[i].size, got[i].flags, len(wantRaw[i]), wantSize[i], cut)
		}
	}
}

// 503 + Retry-After when the sinks do not deliver within response_timeout;
// the records delivered later are duplicates of Logpush's retry, not lost.
func TestResponseTimeout(t *testing.T) {
	h := newHarness(t)
	h.cfg.ResponseTimeout = 300 * time.Millisecond
	h.start()
	h.sink.holdAll()
	r := h.do(request{auth: "Bearer " + testSecret, body: gz(ndjson(rec1, rec2))})
	if r.status != 503 || r.retryAfter != "2" {
		t.Fatalf("status %d Retry-After %q, want 503 and 2", r.status, r.retryAfter)
	}
	h.sink.release()
	h.stop()
	if n := len(h.sink.events()); n != 2 {
		t.Errorf("%d records delivered after the timeout, want 2", n)
	}
}

// 429 + Retry-After when the memory budget is taken (sinks slower than the
// pushes); nothing is emitted, and the budget comes back in full.
func TestBudgetExhausted(t *testing.T) {
	h := newHarness(t)
	h.start()
	if !h.budget.TryAcquire(64<<20 - int64(h.cfg.BatchBytes) + 1) {
		t.Fatal("budget in use")
	}
	r := h.do(request{auth: "Bearer " + testSecret, body: gz(ndjson(rec1))})
	if r.status != 429 || r.retryAfter != "2" {
		t.Fatalf("status %d Retry-After %q, want 429 and 2", r.status, r.retryAfter)
	}
	// Room for the decode buffer, not for the body it would need as well.
	h.budget.Release(int64(h.cfg.BatchBytes))
	big := make([]byte, 0, 2<<20)
	for i := 0; len(big) < 1<<20; i++ {
		big = append(big, `{"n":`...)
		big = append(big, []byte(strings.Repeat("1", i%50+1))...)
		big = append(big, "}\n"...)
	}
	r = h.do(request{auth: "Bearer " + testSecret, body: bytes.NewReader(big)})
	if r.status != 429 {
		t.Fatalf("status %d, want 429 for a body the budget cannot hold", r.status)
	}
	h.budget.Release(64<<20 - 2*int64(h.cfg.BatchBytes) + 1)
	if len(h.sink.events()) != 0 {
		t.Error("records emitted")
	}
	if r := h.do(request{auth: "Bearer " + testSecret, body: bytes.NewReader(big)}); r.status != 200 {
		t.Fatalf("status %d after the budget came back", r.status)
	}
	if !h.budget.TryAcquire(64 << 20) {
		t.Error("budget not returned in full")
	}
	h.budget.Release(64 << 20)
}

// A new value in the secret file works without restart; a removed one stops.
func TestSecretRotation(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.src.secrets.mu.Lock()
	h.src.secrets.every = 0
	h.src.secrets.mu.Unlock()
	if r := h.do(request{auth: "Bearer new-key", body: gz(rec1)}); r.status != 403 {
		t.Fatalf("status %d before rotation", r.status)
	}
	// Kubernetes updates a mounted Secret by swapping a symlink.
	next := h.dir + "/secret.next"
	writeFile(t, next, "new-key\n")
	if err := os.Rename(next, h.cfg.SecretFile); err != nil {
		t.Fatal(err)
	}
	if r := h.do(request{auth: "Bearer new-key", body: gz(rec1)}); r.status != 200 {
		t.Errorf("status %d for the new value", r.status)
	}
	if r := h.do(request{auth: "Bearer " + testSecret, body: gz(rec1)}); r.status != 403 {
		t.Errorf("status %d for the removed value", r.status)
	}
	// An emptied file keeps the last good values.
	writeFile(t, h.cfg.SecretFile, "")
	if r := h.do(request{auth: "Bearer new-key", body: gz(rec1)}); r.status != 200 {
		t.Errorf("status %d after the file was emptied", r.status)
	}
	if counterValue(h.src.m.reloadErrors) == 0 {
		t.Error("failed re-read not counted")
	}
}

// Plain HTTP only when allowed; readiness follows the lifecycle.
func TestPlainHTTPAndReadiness(t *testing.T) {
	h := newHarness(t)
	h.cfg.TLSCertFile, h.cfg.TLSKeyFile = "", ""
	if _, err := New(h.cfg, "x", h.budget, nil, nil); err == nil || !strings.Contains(err.Error(), "sources.x.tls_cert_file") {
		t.Fatalf("New without TLS: %v", err)
	}
	h.cfg.AllowPlainHTTP = true
	h.client = http.DefaultClient
	h.start()
	if r := h.do(request{auth: "Bearer " + testSecret, body: gz(rec1)}); r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	h.stop()
	if ok, why := h.src.Ready(); ok || why != "stopping" {
		t.Errorf("Ready after stop: %v %q", ok, why)
	}
}

func corruptGzip(s string) []byte {
	b := gzipBytes([]byte(s))
	b[len(b)-6] ^= 0xff // the CRC
	return b
}

var _ = io.Discard
