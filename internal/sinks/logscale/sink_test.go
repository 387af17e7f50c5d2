package logscale

import (
	"github.com/siemship/siemship/internal/secret"

	"github.com/siemship/siemship/internal/sinks/delivery"

	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestRequestHeaders checks what every request carries.
func TestRequestHeaders(t *testing.T) {
	fake := newFake(t, nil)
	cfg := testConfig(fake.srv.URL + "/")
	cfg.Version = "1.2.3"
	s := newTestSink(t, cfg, nil)
	acks := newAckRecorder()
	r := start(t, s)
	r.in <- acks.batch(1, "tetragon", idEvent(1, ""))
	if err := r.finish(t); err != nil {
		t.Fatal(err)
	}
	h := fake.requests()[0].Header
	for k, want := range map[string]string{
		"Content-Type":     "application/json",
		"Content-Encoding": "gzip",
		"Authorization":    "Bearer " + testToken,
		"User-Agent":       "siemship/1.2.3",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if got := metric(t, s, "requests_total", "status", "200"); got != 1 {
		t.Errorf("requests_total{status=200} = %v", got)
	}
	if sent, raw := metric(t, s, "bytes_sent_total"), metric(t, s, "bytes_uncompressed_total"); sent <= 0 || raw != float64(len(fake.requests()[0].Body)) {
		t.Errorf("bytes sent %v, uncompressed %v (body %d)", sent, raw, len(fake.requests()[0].Body))
	}
}

// TestNoCompression sends plain JSON when compression is off.
func TestNoCompression(t *testing.T) {
	fake := newFake(t, nil)
	cfg := testConfig(fake.srv.URL)
	cfg.Compression = delivery.CompressionNone
	s := newTestSink(t, cfg, nil)
	acks := newAckRecorder()
	r := start(t, s)
	r.in <- acks.batch(1, "tetragon", idEvent(1, ""))
	if err := r.finish(t); err != nil {
		t.Fatal(err)
	}
	req := fake.requests()[0]
	if req.Header.Get("Content-Encoding") != "" || len(req.Events) != 1 || req.Events[0].id() != 1 {
		t.Errorf("encoding %q, events %v", req.Header.Get("Content-Encoding"), req.Events)
	}
}

// TestTokenNeverLeaks runs failure paths and checks that logs, errors and
// every printed form of the config never show the token.
func TestTokenNeverLeaks(t *testing.T) {
	var mu sync.Mutex
	var echoed []string
	fake := newFake(t, nil)
	fake.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		// A hostile proxy that echoes the request headers in its error.
		mu.Lock()
		echoed = append(echoed, req.Header.Get("Authorization"))
		mu.Unlock()
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, "bad credentials: %s", req.Header.Get("Authorization"))
	})
	logs := &logBuffer{}
	cfg := testConfig(fake.srv.URL)
	cfg.AuthRetry = 5 * time.Millisecond
	s := newTestSink(t, cfg, logs)
	acks := newAckRecorder()
	r := start(t, s)
	r.in <- acks.batch(1, "tetragon", idEvent(1, ""))
	waitFor(t, "a few rejected attempts", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(echoed) >= 3
	})
	r.cancel()
	_ = r.wait(t)

	var texts []string
	texts = append(texts, logs.String())
	if err := Verify(context.Background(), cfg); err == nil {
		t.Error("Verify passed against a server that rejects the token")
	} else {
		texts = append(texts, err.Error(), fmt.Sprintf("%+v %#v", err, err))
	}
	bad := cfg
	bad.URL = "ftp://nowhere"
	if _, err := New(bad, "x", prometheus.NewRegistry(), nil); err == nil {
		t.Error("New accepted an ftp URL")
	} else {
		texts = append(texts, err.Error())
	}
	js, _ := json.Marshal(cfg)
	texts = append(texts, string(js), fmt.Sprintf("%v %+v %#v %s %q %x", cfg, cfg, cfg, cfg.Token, cfg.Token, cfg.Token))
	var slogOut logBuffer
	slog.New(slog.NewTextHandler(&slogOut, nil)).Info("config", "cfg", cfg, "token", cfg.Token)
	texts = append(texts, slogOut.String())

	mu.Lock()
	if len(echoed) == 0 || echoed[0] != "Bearer "+testToken {
		t.Errorf("the server did not get the token: %q", echoed)
	}
	mu.Unlock()
	for _, text := range texts {
		if strings.Contains(text, testToken) {
			t.Errorf("token leaked in:\n%s", text)
		}
	}
	if !strings.Contains(logs.String(), "401") || !strings.Contains(texts[len(texts)-1], secret.Redacted) {
		t.Errorf("expected the failure in the log and [redacted] in slog output:\n%s", logs.String())
	}
	// Loud once per state change, then at most every AuthRetry: the three
	// or more attempts above came within a few AuthRetry periods.
	if n := strings.Count(logs.String(), `"level":"ERROR"`); n < 1 {
		t.Errorf("%d error lines for a rejected token, want at least one", n)
	}
}
