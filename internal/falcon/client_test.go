package falcon

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// tokenServer answers /oauth2/token like Falcon (201, short expires_in)
// and /check with 200 for the current token, 401 otherwise.
type tokenServer struct {
	mu      sync.Mutex
	issued  int
	current string
	form    []string // member_cid of each token request
	region  string
	status  int // forced token status (0: 201)
	revoked []string
	apiCode int // forced /check status (0: by token)
	apiBody string
}

func (s *tokenServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch r.URL.Path {
	case "/oauth2/token":
		r.ParseForm()
		s.form = append(s.form, r.PostForm.Get("member_cid"))
		if s.region != "" {
			w.Header().Set("X-Cs-Region", s.region)
		}
		if s.status != 0 {
			if s.status == 429 {
				w.Header().Set("X-Ratelimit-Retryafter", strconv.FormatInt(time.Now().Unix()+1, 10))
			}
			w.WriteHeader(s.status)
			fmt.Fprint(w, `{"errors":[{"code":403,"message":"access denied, invalid client"}]}`)
			return
		}
		if r.PostForm.Get("client_id") != "id" || r.PostForm.Get("client_secret") != "s3cret" {
			w.WriteHeader(403)
			fmt.Fprint(w, `{"errors":[{"code":403,"message":"access denied, invalid client"}]}`)
			return
		}
		s.issued++
		s.current = fmt.Sprintf("tok%d", s.issued)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"access_token":%q,"expires_in":2,"token_type":"bearer"}`, s.current)
	case "/oauth2/revoke":
		r.ParseForm()
		s.revoked = append(s.revoked, r.PostForm.Get("token"))
	case "/check":
		if s.apiCode != 0 {
			w.WriteHeader(s.apiCode)
			fmt.Fprint(w, s.apiBody)
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+s.current {
			w.WriteHeader(401)
			return
		}
	}
}

func newTestClient(t *testing.T, srv *httptest.Server, mut func(*Config)) (*Client, *Metrics) {
	t.Helper()
	m := NewMetrics(prometheus.NewRegistry(), "test")
	cfg := Config{BaseURL: srv.URL, ClientID: "id", ClientSecret: "s3cret", Metrics: m}
	if mut != nil {
		mut(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, m
}

func check(c *Client) error {
	resp, err := c.Do(context.Background(), "check", "Event streams: read", func(base string) (*http.Request, error) {
		return http.NewRequest(http.MethodGet, base+"/check", nil)
	})
	if err == nil {
		resp.Body.Close()
	}
	return err
}

// 201 is success; the token is reused, renewed once 80 % of its lifetime
// has passed, and dropped after a 401.
func TestTokenAcceptedRenewedAndDroppedOn401(t *testing.T) {
	ts := &tokenServer{}
	srv := httptest.NewServer(ts)
	defer srv.Close()
	c, m := newTestClient(t, srv, func(c *Config) { c.MemberCID = "child1" })
	for range 3 {
		if err := check(c); err != nil {
			t.Fatal(err)
		}
	}
	if ts.issued != 1 || ts.form[0] != "child1" {
		t.Fatalf("issued %d tokens (member_cid %q), want 1 with child1", ts.issued, ts.form)
	}
	time.Sleep(1700 * time.Millisecond) // past 80 % of expires_in=2
	if err := check(c); err != nil {
		t.Fatal(err)
	}
	if ts.issued != 2 {
		t.Fatalf("token not renewed before expiry: %d issued", ts.issued)
	}
	// The server forgets the token: the 401 drops it and one retry succeeds.
	ts.mu.Lock()
	ts.current = "other"
	ts.issued++
	ts.mu.Unlock()
	if err := check(c); err != nil {
		t.Fatalf("after 401: %v", err)
	}
	if got := testutil.ToFloat64(m.TokenRenewals); got != 3 {
		t.Fatalf("token renewals %v, want 3", got)
	}
	if got := testutil.ToFloat64(m.Calls.WithLabelValues("check", "401")); got != 1 {
		t.Fatalf("401 calls %v", got)
	}
}

func TestErrorsNameTheCause(t *testing.T) {
	ts := &tokenServer{}
	srv := httptest.NewServer(ts)
	defer srv.Close()

	bad, _ := newTestClient(t, srv, func(c *Config) { c.ClientSecret = "wrong-secret-value" })
	err := check(bad)
	if !errors.Is(err, ErrInvalidCredentials) || !strings.Contains(err.Error(), "client id or secret") || !Permanent(err) {
		t.Fatalf("bad secret: %v", err)
	}
	if strings.Contains(err.Error(), "wrong-secret-value") {
		t.Fatalf("secret in error: %v", err)
	}

	c, _ := newTestClient(t, srv, nil)
	ts.apiCode, ts.apiBody = 403, `{"meta":{"trace_id":"t1"},"errors":[{"code":403,"message":"access denied, authorization failed"}]}`
	err = check(c)
	if !errors.Is(err, ErrMissingScope) || !strings.Contains(err.Error(), `"Event streams: read"`) || !strings.Contains(err.Error(), "trace_id=t1") {
		t.Fatalf("missing scope: %v", err)
	}
	ts.apiBody = `{"errors":[{"code":403,"message":"access denied, IP address is not in the allowlist"}]}`
	if err := check(c); !errors.Is(err, ErrIPNotAllowed) || !strings.Contains(err.Error(), "allowlist") {
		t.Fatalf("allowlist: %v", err)
	}
}

// A 429 holds calls until X-Ratelimit-Retryafter, then they succeed.
func TestRateLimitWaited(t *testing.T) {
	ts := &tokenServer{}
	srv := httptest.NewServer(ts)
	defer srv.Close()
	c, m := newTestClient(t, srv, nil)
	if err := check(c); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/check" && calls.Add(1) == 1 {
			w.Header().Set("X-Ratelimit-Retryafter", strconv.FormatInt(time.Now().Add(time.Second).UnixMilli(), 10)) // ms form
			w.WriteHeader(429)
			return
		}
		ts.ServeHTTP(w, r)
	})
	start := time.Now()
	if err := check(c); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 500*time.Millisecond {
		t.Fatalf("429 not waited out (%v)", d)
	}
	if testutil.ToFloat64(m.RateLimitWaits) != 1 {
		t.Fatalf("rate-limit waits %v", testutil.ToFloat64(m.RateLimitWaits))
	}
}

// cloud: auto gets a token from us-1, follows X-Cs-Region, revokes the
// first token and continues on the region's host.
func TestCloudAutodiscovery(t *testing.T) {
	us1 := &tokenServer{region: "eu-1"}
	eu1 := &tokenServer{region: "eu-1"}
	s1, s2 := httptest.NewServer(us1), httptest.NewServer(eu1)
	defer s1.Close()
	defer s2.Close()
	c, _ := newTestClient(t, s1, func(c *Config) {
		c.BaseURL, c.Cloud = "", CloudAuto
		c.CloudHosts = map[string]string{CloudUS1: s1.URL, CloudEU1: s2.URL}
	})
	if err := check(c); err != nil {
		t.Fatal(err)
	}
	if c.BaseURL() != s2.URL || len(us1.revoked) != 1 || us1.revoked[0] != "tok1" || eu1.issued != 1 {
		t.Fatalf("base %s (eu-1 %s), us-1 revoked %v, eu-1 issued %d", c.BaseURL(), s2.URL, us1.revoked, eu1.issued)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	h := func(v string) http.Header { return http.Header{"X-Ratelimit-Retryafter": {v}} }
	for _, tc := range []struct {
		v    string
		want time.Duration
	}{
		{"1800000005", 5 * time.Second},            // epoch seconds
		{"1800000002500", 2500 * time.Millisecond}, // epoch ms
		{"3", 3 * time.Second},                     // relative seconds
		{"", time.Minute},                          // auth limit: no header
		{"garbage", time.Minute},
		{"1700000000", 0},                // in the past
		{"1900000000", 15 * time.Minute}, // capped
	} {
		if got := RetryAfter(h(tc.v), now, time.Minute).Sub(now); got != tc.want {
			t.Errorf("%q: %v, want %v", tc.v, got, tc.want)
		}
	}
}
