package logpush

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"

	pusher "github.com/siemship/siemship/internal/emulators/logpush"
	"github.com/siemship/siemship/internal/event"
)

const testSecret = "s3cret-key"

// testTLS writes a self-signed pair for 127.0.0.1 and returns its paths
// and a client trusting it.
func testTLS(t testing.TB, dir string) (cert, key string, client *http.Client) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "logpush test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	cert, key = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	writeFile(t, cert, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	writeFile(t, key, string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})))
	pool := x509.NewCertPool()
	parsed, _ := x509.ParseCertificate(der)
	pool.AddCert(parsed)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	return cert, key, &http.Client{Transport: tr}
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// harness runs one Source on a loopback port with a recording sink.
type harness struct {
	t        testing.TB
	dir      string
	cfg      Config
	client   *http.Client
	budget   *semaphore.Weighted
	reg      *prometheus.Registry
	src      *Source
	sink     *recSink
	out      chan *event.Batch
	cancel   context.CancelFunc
	done     chan error
	sinkWG   sync.WaitGroup
	stopSink chan struct{}
	url      string
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	dir := t.TempDir()
	cert, key, client := testTLS(t, dir)
	secret := filepath.Join(dir, "secret")
	writeFile(t, secret, "old-key\n"+testSecret+"\n")
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.TLSCertFile, cfg.TLSKeyFile = cert, key
	cfg.SecretFile = secret
	cfg.MaxBodyBytes = 8 << 20
	cfg.BatchBytes = 256 << 10
	cfg.MaxRecordBytes = 64 << 10
	cfg.ResponseTimeout = 5 * time.Second
	cfg.RetryAfter = 2 * time.Second
	cfg.ShutdownGrace = 2 * time.Second
	return &harness{t: t, dir: dir, cfg: cfg, client: client, budget: semaphore.NewWeighted(64 << 20), sink: newRecSink()}
}

// start runs the source (and the sink) and waits until it listens.
func (h *harness) start() {
	h.t.Helper()
	h.reg = prometheus.NewRegistry()
	log := slog.New(slog.NewTextHandler(io.Discard, nil)).With("source", "cloudflare")
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("source", "cloudflare")
	}
	src, err := New(h.cfg, "cloudflare", h.budget, h.reg, log)
	if err != nil {
		h.t.Fatal(err)
	}
	h.src = src
	h.out = make(chan *event.Batch)
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan error, 1)
	out, sink, done := h.out, h.sink, h.done
	go func() { done <- src.Run(ctx, out) }()
	stopSink := make(chan struct{})
	h.stopSink = stopSink
	h.sinkWG.Go(func() { sink.run(out, stopSink) })
	deadline := time.Now().Add(10 * time.Second)
	for src.Addr() == nil || !h.ready() {
		if time.Now().After(deadline) {
			h.t.Fatal("source did not start listening")
		}
		time.Sleep(5 * time.Millisecond)
	}
	scheme := "https"
	if !h.cfg.tls() {
		scheme = "http"
	}
	h.url = scheme + "://" + src.Addr().String()
	h.t.Cleanup(h.stop)
}

func (h *harness) ready() bool { ok, _ := h.src.Ready(); return ok }

// stop cancels the source, waits for Run, then stops the sink. Idempotent.
func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		h.t.Fatal("Run did not return")
	}
	close(h.stopSink)
	h.sinkWG.Wait()
	h.sink.wait()
}

type request struct {
	method string
	path   string
	auth   string // "" sends no Authorization header
	header map[string]string
	body   io.Reader
}

type response struct {
	status     int
	retryAfter string
	body       string
}

func (h *harness) do(r request) response {
	h.t.Helper()
	if r.method == "" {
		r.method = http.MethodPost
	}
	if r.path == "" {
		r.path = "/logpush?tags=dataset:http_requests"
	}
	req, err := http.NewRequest(r.method, h.url+r.path, r.body)
	if err != nil {
		h.t.Fatal(err)
	}
	if r.auth != "" {
		req.Header.Set("Authorization", r.auth)
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), body: string(b)}
}

// recSink acknowledges batches like a sink, with optional delays and
// faults, and records a copy of every event it delivered.
type recSink struct {
	mu        sync.Mutex
	seq       int
	delivered []recEvent
	counts    map[string]int // raw record → deliveries
	batches   int

	// Faults, set before the source starts.
	delay func() time.Duration // wait before delivering a batch
	hold  sync.RWMutex         // write-locked by holdAll: deliveries wait until release
	drop  func() bool          // true: never deliver this batch (a crash loses it)

	wg sync.WaitGroup
}

type recEvent struct {
	seq   int // receive order of the batch, then of the event in it
	raw   string
	time  int64
	typ   string
	size  int
	flags event.Flags
}

func newRecSink() *recSink { return &recSink{counts: map[string]int{}} }

func (s *recSink) run(in <-chan *event.Batch, stop <-chan struct{}) {
	for {
		var b *event.Batch
		select {
		case b = <-in:
		case <-stop:
			return
		}
		b.Expect(1)
		s.mu.Lock()
		s.batches++
		seq := s.seq
		s.seq += len(b.Events)
		drop := s.drop != nil && s.drop()
		var d time.Duration
		if s.delay != nil {
			d = s.delay()
		}
		s.mu.Unlock()
		if drop {
			continue
		}
		s.wg.Go(func() {
			if d > 0 {
				time.Sleep(d)
			}
			s.hold.RLock()
			s.hold.RUnlock()
			s.deliver(b, seq)
		})
	}
}

func (s *recSink) deliver(b *event.Batch, seq int) {
	s.mu.Lock()
	evs := make([]*event.Event, len(b.Events))
	for i := range b.Events {
		e := &b.Events[i]
		evs[i] = e
		s.delivered = append(s.delivered, recEvent{seq: seq + i, raw: string(e.Raw), time: e.Time, typ: e.Type, size: e.Size, flags: e.Flags})
		s.counts[string(e.Raw)]++
	}
	s.mu.Unlock()
	event.Deliver(evs)
}

// wait waits for deliveries in progress; only after run returned (a
// WaitGroup must not see Add concurrently with Wait).
func (s *recSink) wait() { s.wg.Wait() }

// holdAll makes deliveries wait until release.
func (s *recSink) holdAll() { s.hold.Lock() }

// release lets held deliveries go.
func (s *recSink) release() { s.hold.Unlock() }

// events returns the delivered events in the order they were emitted.
func (s *recSink) events() []recEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := append([]recEvent(nil), s.delivered...)
	slices.SortFunc(out, func(a, b recEvent) int { return a.seq - b.seq })
	for i := range out {
		out[i].seq = 0 // compared by content in tests
	}
	return out
}

func (s *recSink) count(raw []byte) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[string(raw)]
}

func gz(s string) *bytes.Reader { return bytes.NewReader(gzipBytes([]byte(s))) }

func ndjson(lines ...string) string { return strings.Join(lines, "\n") + "\n" }

func gzipBytes(data []byte) []byte { return pusher.Gzip(data) }
