package logpush

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
	"golang.org/x/sync/errgroup"
)

// Config of a pusher: one Logpush job.
type Config struct {
	// Destination is the job's destination_conf: an http(s) URL whose
	// header_<Name>=<url-encoded value> parameters become request headers,
	// e.g. https://127.0.0.1:8443/logpush?header_Authorization=Bearer%20k&tags=dataset:http_requests.
	Destination string
	// Client sends the requests; it must trust the receiver's certificate.
	// Nil means http.DefaultClient.
	Client *http.Client
	// Attempts per upload before Logpush gives up on it and the data is
	// gone (field reports: a few tries over minutes). Default 5.
	Attempts int
	// RetryDelay is the wait before the first retry; it doubles after each
	// failure, with jitter. Default 30s (so 5 attempts span ~7.5 minutes).
	RetryDelay time.Duration
	// TimeScale multiplies every wait, to run minutes of retries in a test
	// in milliseconds. Default 1.
	TimeScale float64
	// RequestTimeout bounds one request, answer included. Default 5m.
	RequestTimeout time.Duration
	// OmitContentEncoding sends gzip bodies without Content-Encoding: the
	// header is not promised, so a receiver must sniff the gzip magic.
	OmitContentEncoding bool
	// StripHeaderParams calls the URL without its header_* parameters.
	// Whether Cloudflare strips them is undocumented; the default keeps
	// them, the harder case for a receiver.
	StripHeaderParams bool
}

// Pusher uploads batches like a Logpush job. Safe for concurrent use.
type Pusher struct {
	cfg     Config
	url     string
	headers http.Header
	client  *http.Client

	mu     sync.Mutex
	acked  [][]byte
	stats  Stats
	jitter *rand.Rand
}

// Stats counts what a pusher did.
type Stats struct {
	Uploads         int         // batches attempted
	Attempts        int         // requests sent, validation excluded
	ByStatus        map[int]int // answers by status
	TransportErrors int         // requests without an answer
	GaveUp          int         // batches dropped after the last attempt
	RecordsAcked    int         // records answered 200
	RecordsGaveUp   int         // records dropped
}

// ErrGaveUp: every attempt of an upload failed; Logpush drops the batch.
var ErrGaveUp = errors.New("logpush: upload failed on every attempt")

// New parses the destination and fills in defaults.
func New(cfg Config) (*Pusher, error) {
	u, err := url.Parse(cfg.Destination)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("destination_conf %q: want an http(s) URL", cfg.Destination)
	}
	headers := http.Header{}
	q := u.Query()
	for k, vs := range q {
		if name, ok := strings.CutPrefix(k, "header_"); ok && name != "" {
			for _, v := range vs {
				headers.Add(name, v)
			}
			if cfg.StripHeaderParams {
				q.Del(k)
			}
		}
	}
	if cfg.StripHeaderParams {
		u.RawQuery = q.Encode()
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = 5
	}
	if cfg.RetryDelay <= 0 {
		cfg.RetryDelay = 30 * time.Second
	}
	if cfg.TimeScale <= 0 {
		cfg.TimeScale = 1
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 5 * time.Minute
	}
	client := cfg.Client
	if client == nil {
		client = http.DefaultClient
	}
	return &Pusher{cfg: cfg, url: u.String(), headers: headers, client: client,
		stats: Stats{ByStatus: map[int]int{}}, jitter: rand.New(rand.NewPCG(1, 2))}, nil
}

// Validate sends the request Logpush sends when a job is created: a gzipped
// {"content":"tests"}. Anything but 2xx fails job creation.
func (p *Pusher) Validate(ctx context.Context) error {
	status, err := p.post(ctx, gzipped([]byte(`{"content":"tests"}`)))
	if err != nil {
		return fmt.Errorf("validation request: %w", err)
	}
	if status/100 != 2 {
		return fmt.Errorf("validation request answered %d: Logpush would refuse to create the job", status)
	}
	return nil
}

// Upload pushes records (each without newline) as one gzip NDJSON request,
// retrying on anything but 2xx; ErrGaveUp when every attempt failed.
func (p *Pusher) Upload(ctx context.Context, records [][]byte) error {
	var nd bytes.Buffer
	for _, r := range records {
		nd.Write(r)
		nd.WriteByte('\n')
	}
	body := gzipped(nd.Bytes())
	p.mu.Lock()
	p.stats.Uploads++
	p.mu.Unlock()
	delay := p.cfg.RetryDelay
	for attempt := 1; ; attempt++ {
		status, err := p.post(ctx, body)
		p.mu.Lock()
		p.stats.Attempts++
		if err != nil {
			p.stats.TransportErrors++
		} else {
			p.stats.ByStatus[status]++
		}
		if err == nil && status/100 == 2 {
			p.acked = append(p.acked, records...)
			p.stats.RecordsAcked += len(records)
			p.mu.Unlock()
			return nil
		}
		if attempt == p.cfg.Attempts {
			p.stats.GaveUp++
			p.stats.RecordsGaveUp += len(records)
			p.mu.Unlock()
			return ErrGaveUp
		}
		wait := p.scaled(delay)
		p.mu.Unlock()
		// Any failure is retried, 4xx included: Logpush does not tell
		// answers apart (it only knows 2xx or not).
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		delay *= 2
	}
}

// scaled applies the time scale and ±25 % jitter. p.mu must be held.
func (p *Pusher) scaled(d time.Duration) time.Duration {
	f := p.cfg.TimeScale * (0.75 + 0.5*p.jitter.Float64())
	return time.Duration(float64(d) * f)
}

func (p *Pusher) post(ctx context.Context, body []byte) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	for k, vs := range p.headers {
		req.Header[k] = vs
	}
	if !p.cfg.OmitContentEncoding {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode, nil
}

// Run validates the job, then pushes uploads batches of perUpload records
// from gen, parallel at a time. Uploads that gave up are counted in Stats,
// not returned: Logpush keeps going after dropping a batch.
func (p *Pusher) Run(ctx context.Context, gen *Generator, uploads, perUpload, parallel int) error {
	if err := p.Validate(ctx); err != nil {
		return err
	}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(max(parallel, 1))
	for range uploads {
		// Generated here, in one goroutine: Go blocks while parallel
		// uploads run, so the generator needs no lock.
		batch := make([][]byte, perUpload)
		for i := range batch {
			batch[i] = gen.Next()
		}
		g.Go(func() error {
			if err := p.Upload(ctx, batch); err != nil && !errors.Is(err, ErrGaveUp) {
				return err
			}
			return nil
		})
	}
	return g.Wait()
}

// Acked returns every record answered 200, in the order of the answers.
func (p *Pusher) Acked() [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([][]byte(nil), p.acked...)
}

// Stats returns a copy of the counters.
func (p *Pusher) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	s.ByStatus = make(map[int]int, len(p.stats.ByStatus))
	for k, v := range p.stats.ByStatus {
		s.ByStatus[k] = v
	}
	return s
}

// Gzip compresses data as a Logpush upload body.
func Gzip(data []byte) []byte { return gzipped(data) }

func gzipped(data []byte) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	_, _ = zw.Write(data)
	_ = zw.Close()
	return b.Bytes()
}
