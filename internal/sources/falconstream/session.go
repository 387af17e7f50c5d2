package falconstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"sync"
	"sync/atomic"
	"time"

	"github.com/siemship/siemship/internal/event"
	"github.com/siemship/siemship/internal/falcon"
	"github.com/siemship/siemship/internal/secret"
)

// resource is one partition of a discovery answer.
type resource struct {
	DataFeedURL  string `json:"dataFeedURL"`
	SessionToken struct {
		Token      secret.Secret `json:"token"`
		Expiration string        `json:"expiration"`
	} `json:"sessionToken"`
	RefreshURL      string `json:"refreshActiveSessionURL"`
	RefreshInterval int64  `json:"refreshActiveSessionInterval"`
}

// partitionID is the last path segment of the feed URL.
func (r *resource) partitionID() (string, error) {
	u, err := url.Parse(r.DataFeedURL)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("discovery returned an unusable dataFeedURL")
	}
	return path.Base(u.Path), nil
}

// discover asks for the partitions of appID. No resources (nil, nil)
// means the appId is in use.
func (s *Source) discover(ctx context.Context, appID string) ([]resource, error) {
	resp, err := s.client.Do(ctx, "discover", streamScope, func(base string) (*http.Request, error) {
		q := url.Values{"appId": {appID}, "format": {"json"}}
		return http.NewRequestWithContext(ctx, http.MethodGet, base+"/sensors/entities/datafeed/v2?"+q.Encode(), nil)
	})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("read discovery answer: %w", err)
	}
	if len(body) == 0 {
		// Falcon sometimes answers an empty 200: transient.
		return nil, errors.New("discovery answered 200 with an empty body (transient)")
	}
	var v struct {
		Resources []resource `json:"resources"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, fmt.Errorf("decode discovery answer: %w", err)
	}
	for i := range v.Resources {
		if _, err := v.Resources[i].partitionID(); err != nil {
			return nil, err
		}
	}
	return v.Resources, nil
}

// runSession streams every partition of one discovery until one of them
// ends, then stops the others. It returns whether any event was read, and
// the partition and cause that ended the session.
func (s *Source) runSession(ctx context.Context, out chan<- *event.Batch, res []resource) (progressed bool, partition string, cause *errCause) {
	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		wg    sync.WaitGroup
		first atomic.Pointer[string]
		read  atomic.Int64
	)
	end := func(id string, err error) {
		if first.CompareAndSwap(nil, &id) {
			cancel(err)
		}
	}
	for i := range res {
		r := &res[i]
		id, _ := r.partitionID()
		p := s.part(id)
		wg.Go(func() { end(id, s.refreshLoop(sctx, r, p)) })
		wg.Go(func() {
			n, err := s.stream(sctx, ctx, out, r, p)
			read.Add(n)
			end(id, err)
		})
	}
	wg.Wait()
	id := ""
	if p := first.Load(); p != nil {
		id = *p
	}
	return read.Load() > 0, id, causeOf(context.Cause(sctx))
}

// refreshLoop refreshes the partition's session at 90 % of its interval,
// on a timer independent of the event flow, until ctx ends. A refresh that
// fails is retried until the session would expire; then (or when Falcon
// says the session is gone) the session ends.
func (s *Source) refreshLoop(ctx context.Context, r *resource, p *partState) error {
	interval := time.Duration(r.RefreshInterval) * time.Second
	if interval <= 0 {
		interval = 30 * time.Minute
	}
	every := interval * 9 / 10
	lastOK := time.Now()
	t := time.NewTimer(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-t.C:
		}
		err := s.refresh(ctx, r)
		switch {
		case err == nil:
			s.m.refreshes.WithLabelValues(p.id).Inc()
			lastOK = time.Now()
			t.Reset(every)
			continue
		case ctx.Err() != nil:
			return context.Cause(ctx)
		}
		var ae *falcon.APIError
		if errors.As(err, &ae) && ae.Status/100 == 4 {
			// Falcon no longer knows the session: only a new one helps.
			return sessionEnd(causeRefresh, err)
		}
		// A network error or a 5xx may pass before the session expires.
		retry := min(time.Second, interval/20)
		if time.Until(lastOK.Add(interval)) < retry {
			return sessionEnd(causeRefresh, err)
		}
		s.log.Warn("session refresh failed, retrying", "partition", p.id, "error", err, "retry_in", retry.String())
		t.Reset(retry)
	}
}

func (s *Source) refresh(ctx context.Context, r *resource) error {
	resp, err := s.client.Do(ctx, "refresh", streamScope, func(string) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.RefreshURL, http.NoBody)
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
		}
		return req, err
	})
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return nil
}
