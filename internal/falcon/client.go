package falcon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/siemship/siemship/internal/secret"
)

// Config configures a Client.
type Config struct {
	// Cloud is a cloud name (see Clouds) or auto: start at us-1 and follow
	// the X-Cs-Region header of the token answer.
	Cloud string
	// BaseURL, when set, overrides Cloud (a proxy, the emulator).
	BaseURL      string
	ClientID     secret.Secret
	ClientSecret secret.Secret
	// MemberCID selects a child CID of an MSSP parent ("" for none).
	MemberCID string
	// HTTPClient carries every call; nil uses one with sane timeouts. It
	// must have no overall Timeout: event streams last for hours.
	HTTPClient *http.Client
	// Limiter paces calls; share one between every user of one API client.
	// nil gets a private one at Falcon's default of 6,000 calls a minute.
	Limiter *Limiter
	Metrics *Metrics // nil counts nothing
	Log     *slog.Logger
	// CloudHosts replaces the cloud table (tests of autodiscovery).
	CloudHosts map[string]string
}

// Client calls the Falcon API with an OAuth2 access token obtained by the
// client credentials flow, renewed when 80 % of its lifetime has passed and
// dropped when the API answers 401. Safe for concurrent use.
type Client struct {
	cfg   Config
	http  *http.Client
	hosts map[string]string
	log   *slog.Logger

	mu       sync.Mutex // serializes token fetches
	base     string
	resolved bool // auto: the region was followed (or there is nothing to follow)
	tok      *oauth2.Token
	issued   time.Time

	region atomic.Pointer[string] // X-Cs-Region of the last token answer
}

// New prepares a client; it contacts nothing.
func New(cfg Config) (*Client, error) {
	hosts := cfg.CloudHosts
	if hosts == nil {
		hosts = Clouds
	}
	base, err := baseURL(cfg.Cloud, cfg.BaseURL, hosts)
	if err != nil {
		return nil, err
	}
	if cfg.ClientID == "" || cfg.ClientSecret == "" {
		return nil, errors.New("falcon: client id and client secret are required")
	}
	if cfg.Limiter == nil {
		cfg.Limiter = NewLimiter(100, 20)
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	c := &Client{cfg: cfg, hosts: hosts, base: base, log: cfg.Log}
	c.resolved = cfg.BaseURL != "" || (cfg.Cloud != CloudAuto && cfg.Cloud != "")
	hc := cfg.HTTPClient
	if hc == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.ResponseHeaderTimeout = 30 * time.Second
		hc = &http.Client{Transport: t}
	}
	cp := *hc
	inner := cp.Transport
	if inner == nil {
		inner = http.DefaultTransport
	}
	cp.Transport = &tokenObserver{inner: inner, c: c}
	c.http = &cp
	return c, nil
}

// HTTP returns the client's HTTP client (for streams the caller reads).
func (c *Client) HTTP() *http.Client { return c.http }

// Limiter returns the shared rate limiter.
func (c *Client) Limiter() *Limiter { return c.cfg.Limiter }

// BaseURL returns the API base URL in use (after autodiscovery, the region's).
func (c *Client) BaseURL() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.base
}

// tokenObserver counts token calls and reads X-Cs-Region from token
// answers, which clientcredentials does not expose.
type tokenObserver struct {
	inner http.RoundTripper
	c     *Client
}

func (o *tokenObserver) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := o.inner.RoundTrip(r)
	call := ""
	switch {
	case strings.HasSuffix(r.URL.Path, "/oauth2/token"):
		call = "token"
	case strings.HasSuffix(r.URL.Path, "/oauth2/revoke"):
		call = "revoke"
	}
	if call == "" {
		return resp, err
	}
	if err != nil {
		o.c.cfg.Metrics.call(call, 0)
		return resp, err
	}
	o.c.cfg.Metrics.call(call, resp.StatusCode)
	if call == "token" {
		region := resp.Header.Get("X-Cs-Region")
		o.c.region.Store(&region)
	}
	return resp, nil
}

func (c *Client) credentials(base string) *clientcredentials.Config {
	cc := &clientcredentials.Config{
		ClientID:     c.cfg.ClientID.Reveal(),
		ClientSecret: c.cfg.ClientSecret.Reveal(),
		TokenURL:     base + "/oauth2/token",
		// Falcon wants client_id and client_secret in the form.
		AuthStyle: oauth2.AuthStyleInParams,
	}
	if c.cfg.MemberCID != "" {
		cc.EndpointParams = url.Values{"member_cid": {c.cfg.MemberCID}}
	}
	return cc
}

// Token returns a valid access token, fetching one when there is none or
// 80 % of its lifetime has passed.
func (c *Client) Token(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tok != nil && time.Now().Before(c.renewAt()) {
		return c.tok.AccessToken, nil
	}
	tok, err := c.fetch(ctx, c.base)
	if err != nil {
		return "", err
	}
	if !c.resolved {
		tok, err = c.followRegion(ctx, tok)
		if err != nil {
			return "", err
		}
	}
	c.tok, c.issued = tok, time.Now()
	return tok.AccessToken, nil
}

func (c *Client) renewAt() time.Time {
	if c.tok.Expiry.IsZero() {
		return c.issued.Add(25 * time.Minute)
	}
	return c.issued.Add(c.tok.Expiry.Sub(c.issued) * 8 / 10)
}

// followRegion switches to the region the token answer named (cloud:
// auto), revoking the us-1 token and getting one from the region.
func (c *Client) followRegion(ctx context.Context, tok *oauth2.Token) (*oauth2.Token, error) {
	region := ""
	if p := c.region.Load(); p != nil {
		region = *p
	}
	cloud := regionCloud(region)
	c.resolved = true
	if cloud == "" {
		c.log.Warn("Falcon token answer named no known region: staying on the first cloud; set cloud to pin one", "x_cs_region", region, "base_url", c.base)
		return tok, nil
	}
	target := strings.TrimRight(c.hosts[cloud], "/")
	if target == c.base {
		c.log.Info("Falcon cloud discovered", "cloud", cloud, "base_url", c.base)
		return tok, nil
	}
	if err := c.revoke(ctx, c.base, tok.AccessToken); err != nil {
		// The token expires on its own within its lifetime; not worth failing for.
		c.log.Warn("could not revoke the token of the first cloud", "error", err)
	}
	c.log.Info("Falcon cloud discovered, switching", "cloud", cloud, "from", c.base, "base_url", target)
	c.base = target
	return c.fetch(ctx, target)
}

// fetch gets a new token from base, waiting out 429s.
func (c *Client) fetch(ctx context.Context, base string) (*oauth2.Token, error) {
	cc := c.credentials(base)
	hctx := context.WithValue(ctx, oauth2.HTTPClient, c.http)
	for {
		if err := c.wait(ctx); err != nil {
			return nil, err
		}
		tok, err := cc.Token(hctx)
		if err == nil {
			if c.cfg.Metrics != nil {
				c.cfg.Metrics.TokenRenewals.Inc()
			}
			return tok, nil
		}
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.Response == nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("falcon token from %s: %w", base, redactErr(err, c.cfg.ClientSecret))
		}
		if re.Response.StatusCode == http.StatusTooManyRequests {
			// The auth-failure limit: waiting is the only cure; its 429 may lack the header.
			c.block(RetryAfter(re.Response.Header, time.Now(), AuthRetryAfter))
			continue
		}
		return nil, newAPIError("token", re.Response.StatusCode, re.Response.Header, re.Body, "", true)
	}
}

func (c *Client) revoke(ctx context.Context, base, token string) error {
	form := url.Values{"token": {token}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/oauth2/revoke", strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("build revoke request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(c.cfg.ClientID.Reveal(), c.cfg.ClientSecret.Reveal())
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return newAPIError("revoke", resp.StatusCode, resp.Header, body, "", true)
	}
	return nil
}

// Invalidate drops the cached token if it is still tok (a 401 answered
// it), so the next call fetches a new one.
func (c *Client) Invalidate(tok string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tok != nil && c.tok.AccessToken == tok {
		c.tok = nil
	}
}

func (c *Client) wait(ctx context.Context) error {
	held, err := c.cfg.Limiter.Wait(ctx)
	if held > 0 && c.cfg.Metrics != nil {
		c.cfg.Metrics.RateLimitWaits.Inc()
		c.cfg.Metrics.RateLimitSecs.Add(held.Seconds())
	}
	return err
}

func (c *Client) block(t time.Time) { c.cfg.Limiter.Block(t) }

// Do sends the request that build makes for the current base URL with the
// bearer token, waiting for the limiter. A 401 drops the token and is
// retried once with a new one; a 429 holds every call back until
// X-Ratelimit-Retryafter and is retried. Any other non-2xx is an *APIError
// (scope names what a 403 lacks). The caller closes the body.
// build may be called several times: it must make a fresh request each time.
func (c *Client) Do(ctx context.Context, call, scope string, build func(base string) (*http.Request, error)) (*http.Response, error) {
	unauthorized := 0
	for {
		tok, err := c.Token(ctx)
		if err != nil {
			return nil, err
		}
		req, err := build(c.BaseURL())
		if err != nil {
			return nil, fmt.Errorf("falcon %s: build request: %w", call, err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := c.send(ctx, call, scope, req)
		var ae *APIError
		if errors.As(err, &ae) && errors.Is(err, ErrUnauthorized) && unauthorized == 0 {
			// The token was revoked or expired early: a new one may do.
			unauthorized++
			c.Invalidate(tok)
			continue
		}
		return resp, err
	}
}

// DoSession sends a request authorized by a stream session token
// ("Authorization: Token …"): the event stream itself. A 401 is returned
// (the session is stale: discover again); 429 is waited out and retried.
// req must have no body.
func (c *Client) DoSession(ctx context.Context, call string, req *http.Request, session secret.Secret) (*http.Response, error) {
	req.Header.Set("Authorization", "Token "+session.Reveal())
	return c.send(ctx, call, "", req)
}

func (c *Client) send(ctx context.Context, call, scope string, req *http.Request) (*http.Response, error) {
	for {
		if err := c.wait(ctx); err != nil {
			return nil, err
		}
		r := req
		if req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, fmt.Errorf("falcon %s: rewind body: %w", call, err)
			}
			r = req.Clone(ctx)
			r.Body = body
		}
		resp, err := c.http.Do(r)
		if err != nil {
			c.cfg.Metrics.call(call, 0)
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("falcon %s: %w", call, err)
		}
		c.cfg.Metrics.call(call, resp.StatusCode)
		if resp.StatusCode/100 == 2 {
			return resp, nil
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests {
			// Falcon names when the limit resets; every caller waits for it.
			c.block(RetryAfter(resp.Header, time.Now(), AuthRetryAfter))
			continue
		}
		return nil, newAPIError(call, resp.StatusCode, resp.Header, body, scope, false)
	}
}

// redactErr keeps the secret out of an error's text.
func redactErr(err error, s secret.Secret) error {
	if msg := err.Error(); s != "" && strings.Contains(msg, s.Reveal()) {
		return errors.New(s.Redact(msg))
	}
	return err
}

// Metrics returns the client's metrics (nil when it counts nothing).
func (c *Client) Metrics() *Metrics { return c.cfg.Metrics }
