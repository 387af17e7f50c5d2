package logpush

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/siemship/siemship/internal/emulators/httpingest"
	pusher "github.com/siemship/siemship/internal/emulators/logpush"
	emulator "github.com/siemship/siemship/internal/emulators/logscale"
	"github.com/siemship/siemship/internal/testkit"
	"github.com/siemship/siemship/test/internal/agentproc"
)

const (
	logpushSecret = "logpush-e2e-secret"
	sinkToken     = "e2e-sink-token"
	ingestPath    = "/v1/e2e"
)

// jobs are the Logpush jobs every test pushes: one per dataset, each in
// another timestamp_format, as a zone or account would configure them.
var jobs = []struct{ dataset, format string }{
	{pusher.HTTPRequests, pusher.UnixNano},
	{pusher.FirewallEvents, pusher.RFC3339},
	{pusher.GatewayDNS, pusher.Unix},
}

// genStart is when the generated records begin; every event time must lie
// within an hour of it.
var genStart = time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)

// recorder keeps, per record (its bytes), the dataset it was generated
// for and the agent sessions that delivered it to each sink.
type recorder struct {
	session atomic.Int64 // incremented at every agent start
	mu      sync.Mutex
	dataset map[string]string             // record → dataset, every record generated
	when    map[string]time.Time          // record → its event time
	by      map[string]map[string][]int64 // sink → record → sessions
	killed  map[int64]bool
	strange []string // delivered but never generated, or mistyped
	// index, when set, is called with every generated record before it
	// is pushed (the syslog sink indexes records by their flattened fields).
	index func(rec []byte)
}

func newRecorder() *recorder {
	return &recorder{dataset: map[string]string{}, when: map[string]time.Time{}, by: map[string]map[string][]int64{}, killed: map[int64]bool{}}
}

// generated files a record of dataset whose event time is when.
func (r *recorder) generated(rec []byte, dataset string, when time.Time) {
	r.mu.Lock()
	r.dataset[string(rec)] = dataset
	r.when[string(rec)] = when
	r.mu.Unlock()
	if r.index != nil {
		r.index(rec)
	}
}

// delivered records that sink received rec; typ is its event type as the
// sink saw it ("" when the sink does not carry one).
func (r *recorder) delivered(sink, rec, typ string) {
	r.deliveredBy(sink, rec, typ, r.session.Load())
}

// deliveredBy records that session s delivered rec to sink.
func (r *recorder) deliveredBy(sink, rec, typ string, s int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ds, ok := r.dataset[rec]
	if !ok || (typ != "" && typ != ds) {
		r.strange = append(r.strange, fmt.Sprintf("%s: type %q, want %q: %.200s", sink, typ, ds, rec))
		return
	}
	m := r.by[sink]
	if m == nil {
		m = map[string][]int64{}
		r.by[sink] = m
	}
	m[rec] = append(m[rec], s)
}

// deliveredIn counts the records sink received from the current session.
func (r *recorder) deliveredIn(sink string) int {
	s := r.session.Load()
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, sessions := range r.by[sink] {
		for _, x := range sessions {
			if x == s {
				n++
			}
		}
	}
	return n
}

func (r *recorder) kill() {
	r.mu.Lock()
	r.killed[r.session.Load()] = true
	r.mu.Unlock()
}

// check asserts the promise for every sink: each record the pusher was
// answered 200 for is at the sink, nothing arrived that was not pushed, and
// duplicates come only from sessions that ended with SIGKILL. It logs the
// duplicates per SIGKILL and returns their total.
func (r *recorder) check(t *testing.T, acked [][]byte, sinks ...string) (dups int) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, s := range r.strange {
		if i < 5 {
			t.Errorf("unexpected delivery: %s", s)
		}
	}
	for _, sink := range sinks {
		missing, unexplained := 0, 0
		perKill := map[int64]int{}
		for _, rec := range acked {
			sessions := r.by[sink][string(rec)]
			if len(sessions) == 0 {
				if missing++; missing <= 3 {
					t.Errorf("%s: a record answered 200 is not at the sink: %.200s", sink, rec)
				}
			}
		}
		sinkDups := 0
		for _, sessions := range r.by[sink] {
			for i := 0; i+1 < len(sessions); i++ {
				sinkDups++
				// The later delivery repeats what sessions[i] delivered
				// without the push being answered 200: a SIGKILL, or a
				// delivery after the response deadline (503).
				perKill[sessions[i]]++
				if !r.killed[sessions[i]] && sessions[i+1] == sessions[i] {
					unexplained++
				}
			}
		}
		if missing > 0 {
			t.Errorf("%s: %d of %d records answered 200 are missing", sink, missing, len(acked))
		}
		var kills []string
		for s := int64(1); s <= r.session.Load(); s++ {
			if r.killed[s] {
				kills = append(kills, fmt.Sprint(perKill[s]))
			}
		}
		t.Logf("%s: %d records answered 200, %d distinct at the sink, %d duplicates (%d within one session, after a 503); duplicates per SIGKILL: [%s]",
			sink, len(acked), len(r.by[sink]), sinkDups, unexplained, strings.Join(kills, " "))
		dups += sinkDups
	}
	return dups
}

// agent is the real siemship binary with a Logpush source on a fixed
// loopback port, so that it can be killed and started again where the
// pusher's destination points.
type agent struct {
	t       *testing.T
	bin     string
	dir     string
	cfg     string
	log     string
	env     []string
	addr    string // the Logpush source's host:port
	scheme  string
	client  *http.Client // trusts the source's certificate
	rec     *recorder
	proc    *agentproc.Proc
	started int
}

// agentOptions say how to build an agent's configuration.
type agentOptions struct {
	tls             bool
	sinks           string // the sinks: section
	env             []string
	responseTimeout time.Duration
}

func newAgent(t *testing.T, rec *recorder, o agentOptions) *agent {
	t.Helper()
	dir := testkit.KeptDir(t)
	a := &agent{t: t, bin: agentproc.Binary(t, testkit.RepoRoot(t)), dir: dir, rec: rec, env: o.env,
		cfg: filepath.Join(dir, "siemship.yaml"), log: filepath.Join(dir, "agent.log"),
		addr: freePort(t), scheme: "http", client: &http.Client{}}
	secret := filepath.Join(dir, "secret")
	writeFile(t, secret, logpushSecret+"\n")
	transport := "    allow_plain_http: true\n"
	if o.tls {
		cert, key, pool := testCA(t, dir)
		transport = fmt.Sprintf("    tls_cert_file: %s\n    tls_key_file: %s\n", cert, key)
		a.scheme = "https"
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, ForceAttemptHTTP2: true}
		t.Cleanup(tr.CloseIdleConnections)
		a.client = &http.Client{Transport: tr}
	}
	if o.responseTimeout == 0 {
		o.responseTimeout = 5 * time.Second
	}
	writeFile(t, a.cfg, fmt.Sprintf(`state_dir: %s
listen: ""
shutdown_grace: 10s
status_interval: 5s
buffer_bytes: 256MiB
memory_limit: 0
log:
  format: text
  level: info
sources:
  cloudflare:
    type: logpush
    listen: %s
%s    secret_file: %s
    response_timeout: %s
    retry_after: 1s
    shutdown_grace: 5s
%s`, filepath.Join(dir, "state"), a.addr, transport, secret, o.responseTimeout, o.sinks))
	return a
}

// start runs a new agent session and waits until it serves Logpush.
func (a *agent) start() {
	a.t.Helper()
	a.rec.session.Add(1)
	a.started++
	a.proc = agentproc.Start(a.t, a.bin, a.cfg, a.log, a.env...)
	a.proc.WaitForLog(a.t, "serving Logpush", time.Minute)
}

// sigkill kills the session: whatever it held undelivered dies with it.
func (a *agent) sigkill() {
	a.t.Helper()
	a.rec.kill()
	a.proc.Kill(a.t)
}

func (a *agent) terminate() {
	a.t.Helper()
	a.proc.Terminate(a.t, time.Minute)
}

// deadLetters fails the test if a sink dead-lettered anything: every
// record pushed is valid, so nothing may be rejected for good.
func (a *agent) deadLetters() {
	a.t.Helper()
	files, _ := filepath.Glob(filepath.Join(a.dir, "state", "*dead-letter*"))
	for _, f := range files {
		if data, err := os.ReadFile(f); err == nil && len(data) > 0 {
			a.t.Errorf("%s: records were dead-lettered: %.300s", filepath.Base(f), data)
		}
	}
}

// job returns a Logpush job pushing dataset to the agent with secret, with
// Cloudflare's retry schedule (30 s doubling) scaled down 100×.
func (a *agent) job(dataset, secret string, omitEncoding bool) *pusher.Pusher {
	a.t.Helper()
	p, err := pusher.New(pusher.Config{
		Destination: fmt.Sprintf("%s://%s/logpush?header_Authorization=%s&tags=dataset:%s",
			a.scheme, a.addr, url.QueryEscape("Bearer "+secret), dataset),
		Client:              a.client,
		Attempts:            12,
		RetryDelay:          30 * time.Second,
		TimeScale:           0.01, // 300 ms, 600 ms, 1.2 s, 2.4 s, …: 12 attempts outlast any outage here
		RequestTimeout:      30 * time.Second,
		OmitContentEncoding: omitEncoding,
	})
	if err != nil {
		a.t.Fatal(err)
	}
	return p
}

// push is a set of Logpush jobs uploading in the background.
type push struct {
	jobs []*pusher.Pusher
	done chan error
	left atomic.Int64 // uploads not yet answered 200 or given up
}

// startPush validates every job and generates every job's records, then
// uploads uploads batches of perUpload records per job, parallel at a time
// per job, recording every generated record. Nothing is pushed before
// everything is generated, so a test sees the pushes from their start.
func (a *agent) startPush(uploads, perUpload, parallel int) *push {
	a.t.Helper()
	ps := &push{done: make(chan error, 1)}
	ps.left.Store(int64(len(jobs) * uploads))
	g, ctx := errgroup.WithContext(context.Background())
	all := make([][][][]byte, len(jobs)) // job → upload → records
	for i, j := range jobs {
		p := a.job(j.dataset, logpushSecret, i == 1) // one job without Content-Encoding: the receiver sniffs gzip
		if err := p.Validate(ctx); err != nil {
			a.t.Fatalf("%s: %v", j.dataset, err)
		}
		ps.jobs = append(ps.jobs, p)
		gen, err := pusher.NewGenerator(j.dataset, j.format, genStart, uint64(100+i))
		if err != nil {
			a.t.Fatal(err)
		}
		all[i] = make([][][]byte, uploads)
		for u := range all[i] {
			all[i][u] = make([][]byte, perUpload)
			for k := range all[i][u] {
				rec := gen.Next()
				all[i][u][k] = rec
				a.rec.generated(rec, j.dataset, gen.Time())
			}
		}
	}
	for i, j := range jobs {
		p, batches := ps.jobs[i], all[i]
		g.Go(func() error {
			jg, ctx := errgroup.WithContext(ctx)
			jg.SetLimit(parallel)
			for _, b := range batches {
				jg.Go(func() error {
					defer ps.left.Add(-1)
					if err := p.Upload(ctx, b); err != nil {
						return fmt.Errorf("%s upload: %w", j.dataset, err)
					}
					return nil
				})
			}
			return jg.Wait()
		})
	}
	go func() { ps.done <- g.Wait() }()
	return ps
}

// wait waits for every upload to be answered 200; a job giving up is a
// failure: with the sinks back, the agent must accept every push.
func (ps *push) wait(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case err := <-ps.done:
		if err != nil {
			t.Fatalf("push: %v (%s)", err, ps.stats())
		}
	case <-time.After(timeout):
		t.Fatalf("pushes not all answered 200 within %v: %d uploads left (%s)", timeout, ps.left.Load(), ps.stats())
	}
}

func (ps *push) acked() [][]byte {
	var all [][]byte
	for _, p := range ps.jobs {
		all = append(all, p.Acked()...)
	}
	return all
}

// stats sums the jobs' counters.
func (ps *push) stats() string {
	var attempts, transport, gaveUp int
	by := map[int]int{}
	for _, p := range ps.jobs {
		s := p.Stats()
		attempts += s.Attempts
		transport += s.TransportErrors
		gaveUp += s.GaveUp
		for k, v := range s.ByStatus {
			by[k] += v
		}
	}
	return fmt.Sprintf("attempts %d, answers %v, transport errors %d, gave up %d", attempts, by, transport, gaveUp)
}

func (ps *push) count(status int) (n int) {
	for _, p := range ps.jobs {
		if status == 0 {
			n += p.Stats().TransportErrors
		} else {
			n += p.Stats().ByStatus[status]
		}
	}
	return n
}

// logscaleSink is the strict LogScale receiver on a fixed loopback
// address, which can be taken down (connections refused) and brought back.
type logscaleSink struct {
	t      *testing.T
	srv    *emulator.Server
	addr   string
	cancel context.CancelFunc
	served chan error
}

func newLogScale(t *testing.T, rec *recorder) *logscaleSink {
	t.Helper()
	s := &logscaleSink{t: t, srv: emulator.New(emulator.Config{
		Tokens:  map[string]emulator.Token{sinkToken: {Name: "e2e", Repo: "cloudflare"}},
		Discard: true,
		OnEvent: func(e emulator.StoredEvent) {
			rec.delivered("logscale", strings.Clone(e.Attributes), e.Tags["event_type"])
			if e.Timestamp < genStart.UnixMilli() || e.Timestamp > genStart.Add(time.Hour).UnixMilli() {
				rec.mu.Lock()
				rec.strange = append(rec.strange, fmt.Sprintf("logscale: @timestamp %d is not the record's time: %.200s", e.Timestamp, e.Attributes))
				rec.mu.Unlock()
			}
		},
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	s.serve(ln)
	t.Cleanup(s.down)
	return s
}

func (s *logscaleSink) serve(ln net.Listener) {
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel, s.served = cancel, make(chan error, 1)
	go func() { s.served <- s.srv.Serve(ctx, ln) }()
}

// down stops serving: requests in flight finish, new connections are refused.
func (s *logscaleSink) down() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	if err := <-s.served; err != nil {
		s.t.Errorf("logscale receiver: %v", err)
	}
	s.cancel = nil
}

func (s *logscaleSink) up() {
	s.t.Helper()
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		s.t.Fatalf("listen again on %s: %v", s.addr, err)
	}
	s.serve(ln)
}

func (s *logscaleSink) config() string {
	return fmt.Sprintf("  logscale:\n    url: http://%s\n    batch_events: 200\n    linger: 100ms\n    retry_initial: 50ms\n    retry_max: 500ms\n", s.addr)
}

// ingestSink is the strict Taegis-style HTTP ingest receiver.
type ingestSink struct {
	t    *testing.T
	srv  *httpingest.Server
	addr string
	http *http.Server
}

func newIngest(t *testing.T, rec *recorder) *ingestSink {
	t.Helper()
	s := &ingestSink{t: t, srv: httpingest.New(httpingest.Config{Keys: []string{sinkToken}, Path: ingestPath, Discard: true,
		OnEvent: func(line []byte) { rec.delivered("http", string(line), "") }})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	s.serve(ln)
	t.Cleanup(func() { s.http.Close() })
	return s
}

func (s *ingestSink) serve(ln net.Listener) {
	s.http = &http.Server{Handler: s.srv, ReadHeaderTimeout: 5 * time.Second}
	srv := s.http
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			s.t.Errorf("http ingest receiver: %v", err)
		}
	}()
}

func (s *ingestSink) config() string {
	return fmt.Sprintf("  taegis:\n    type: http\n    url: http://%s%s\n    batch_events: 200\n    linger: 100ms\n    retry_initial: 50ms\n    retry_max: 500ms\n", s.addr, ingestPath)
}

// freePort returns a loopback address nobody listens on right now.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting until %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// testCA writes a serving pair for 127.0.0.1 signed by a CA made here, and
// returns the pair's paths and a pool holding only that CA: the pusher
// trusts the CA, as Cloudflare trusts a public one, not the leaf itself.
func testCA(t *testing.T, dir string) (cert, key string, pool *x509.CertPool) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "siemship e2e test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "logpush.siemship.test"},
		DNSNames:     []string{"logpush.siemship.test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(leafKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, key = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	writeFile(t, cert, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER})))
	writeFile(t, key, string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})))
	pool = x509.NewCertPool()
	pool.AddCert(ca)
	return cert, key, pool
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
