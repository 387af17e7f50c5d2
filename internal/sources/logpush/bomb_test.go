package logpush

import (
	"io"
	"net/http"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/klauspost/compress/gzip"
)

// countingReader counts the bytes the source pulled from the request body.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// zeroBomb streams the gzip of size zero bytes, compressing as it is read:
// the 10 GB bomb never exists in memory or on disk.
func zeroBomb(size int64) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		zw, _ := gzip.NewWriterLevel(pw, gzip.BestCompression)
		zeros := make([]byte, 1<<20)
		var err error
		for left := size; left > 0 && err == nil; left -= int64(len(zeros)) {
			_, err = zw.Write(zeros[:min(int64(len(zeros)), left)])
		}
		if err == nil {
			err = zw.Close()
		}
		pw.CloseWithError(err) // an error once the reader gave up ends the goroutine
	}()
	return pr
}

// A 10 GB gzip bomb is refused at the cap with 413 after reading a sliver of
// it, allocating about as much as the cap, and emitting nothing.
func TestGzipBombRefusedAtCap(t *testing.T) {
	h := newHarness(t)
	h.cfg.MaxBodyBytes = 4 << 20
	h.start()
	bomb := zeroBomb(10 << 30)
	defer bomb.Close()
	body := &countingReader{r: bomb}

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	req, _ := http.NewRequest(http.MethodPost, h.url+"/logpush", body)
	req.Header.Set("Authorization", "Bearer "+testSecret)
	req.Header.Set("Content-Encoding", "gzip")
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	runtime.ReadMemStats(&after)

	t.Logf("client sent %d bytes of the bomb; the test process allocated %d MiB", body.n.Load(), (after.TotalAlloc-before.TotalAlloc)>>20)
	if resp.StatusCode != 413 {
		t.Fatalf("status %d, want 413", resp.StatusCode)
	}
	// Deflate expands at most ~1032:1, so 4 MiB out needs ~4 KiB in; the
	// client may have sent a little more before it saw the answer.
	if sent := body.n.Load(); sent > 8<<20 {
		t.Errorf("the client sent %d MiB of a 10 GB bomb: decompression did not stop at the cap", sent>>20)
	}
	// Compressing the bomb in this process allocates too; the bound is on
	// what would be gigabytes if the source decompressed fully.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 {
		t.Errorf("allocated %d MiB for a %d MiB cap", alloc>>20, h.cfg.MaxBodyBytes>>20)
	}
	if got := counterValue(h.src.m.decoded); got > float64(h.cfg.MaxBodyBytes)+64<<10 {
		t.Errorf("decompressed %v bytes, cap %d", got, h.cfg.MaxBodyBytes)
	}
	if n := len(h.sink.events()); n != 0 {
		t.Errorf("%d records emitted", n)
	}
	if !h.budget.TryAcquire(64 << 20) {
		t.Error("budget not returned in full")
	}
}
