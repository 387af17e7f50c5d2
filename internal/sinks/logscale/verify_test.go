package logscale

import (
	"compress/gzip"
	"context"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// verifyServer answers the status endpoint with statusCode and the ingest
// endpoint with ingestCode, recording the ingest body.
func verifyServer(t *testing.T, statusCode, ingestCode int) (*httptest.Server, func() (string, http.Header)) {
	var mu sync.Mutex
	var body string
	var hdr http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == pathStatus {
			w.WriteHeader(statusCode)
			return
		}
		rd := io.Reader(r.Body)
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				t.Errorf("bad gzip: %v", err)
				return
			}
			rd = zr
		}
		b, _ := io.ReadAll(rd)
		mu.Lock()
		body, hdr = r.URL.Path+" "+string(b), r.Header.Clone()
		mu.Unlock()
		w.WriteHeader(ingestCode)
	}))
	t.Cleanup(srv.Close)
	return srv, func() (string, http.Header) {
		mu.Lock()
		defer mu.Unlock()
		return body, hdr
	}
}

func TestVerify(t *testing.T) {
	cases := []struct {
		name              string
		status, ingest    int
		format            string
		wantKind          VerifyKind
		wantMsg, wantBody string
	}{
		{"ok structured", 200, 200, FormatStructured, 0, "", pathStructured + " []"},
		{"ok hec", 200, 200, FormatHEC, 0, "", pathHEC + " "},
		{"unknown token", 200, 401, FormatStructured, TokenUnknown, "LogScale does not know it (401)", pathStructured + " []"},
		{"blocked token", 200, 403, FormatStructured, TokenBlocked, "blocked (403)", pathStructured + " []"},
		{"odd answer", 200, 404, FormatStructured, Unverified, "could not verify the token without sending data (status 404)", pathStructured + " []"},
		{"not logscale", 404, 200, FormatStructured, NotLogScale, "is this a LogScale URL?", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv, got := verifyServer(t, c.status, c.ingest)
			cfg := testConfig(srv.URL)
			cfg.Format = c.format
			err := Verify(context.Background(), cfg)
			if c.wantKind == 0 {
				if err != nil {
					t.Fatalf("Verify = %v", err)
				}
			} else {
				var ve *VerifyError
				if !errors.As(err, &ve) || ve.Kind != c.wantKind || !strings.Contains(err.Error(), c.wantMsg) {
					t.Fatalf("Verify = %v, want kind %d with %q", err, c.wantKind, c.wantMsg)
				}
			}
			body, hdr := got()
			if body != c.wantBody {
				t.Errorf("ingest body %q, want %q", body, c.wantBody)
			}
			if c.wantBody != "" && hdr.Get("Authorization") != "Bearer "+testToken {
				t.Error("no token sent")
			}
		})
	}
}

func TestSinkVerifyMakesReady(t *testing.T) {
	srv, _ := verifyServer(t, 200, 200)
	s := newTestSink(t, testConfig(srv.URL), nil)
	if ok, reason := s.Ready(); ok || reason == "" {
		t.Fatalf("ready before anything succeeded (%q)", reason)
	}
	if err := s.Verify(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.Ready(); !ok {
		t.Error("not ready after Verify")
	}
}

// TestTLS: a private CA is trusted through CAFile; the server name is
// checked, and TLSServerName overrides it.
func TestTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	t.Cleanup(srv.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(srv.URL)
	var ve *VerifyError
	if err := Verify(context.Background(), cfg); !errors.As(err, &ve) || ve.Kind != Unreachable {
		t.Errorf("without the CA: %v, want an unreachable (certificate) error", err)
	}
	cfg.CAFile = caFile
	if err := Verify(context.Background(), cfg); err != nil {
		t.Errorf("with the CA: %v", err)
	}
	cfg.TLSServerName = "example.com" // in httptest's certificate
	if err := Verify(context.Background(), cfg); err != nil {
		t.Errorf("with server name example.com: %v", err)
	}
	cfg.TLSServerName = "wrong.example.org"
	if err := Verify(context.Background(), cfg); err == nil {
		t.Error("accepted a certificate for another name")
	}
	cfg.CAFile = filepath.Join(t.TempDir(), "missing.pem")
	if _, err := New(cfg, "x", prometheus.NewRegistry(), nil); err == nil {
		t.Error("New accepted a missing CA file")
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for name, mod := range map[string]func(*Config){
		"url":          func(c *Config) { c.URL = "cloud.humio.com" },
		"format":       func(c *Config) { c.Format = "json" },
		"compression":  func(c *Config) { c.Compression = "zstd" },
		"level":        func(c *Config) { c.CompressionLevel = 12 },
		"token":        func(c *Config) { c.Token = "" },
		"reserved tag": func(c *Config) { c.Tags = map[string]string{"event_type": "x"} },
		"retry":        func(c *Config) { c.RetryMax = time.Microsecond },
	} {
		cfg := testConfig("https://cloud.humio.com")
		mod(&cfg)
		if _, err := New(cfg, name, prometheus.NewRegistry(), nil); err == nil {
			t.Errorf("%s: New accepted a bad config", name)
		}
	}
	// Defaults come from DefaultConfig alone: a config without them is refused.
	if _, err := New(Config{URL: "https://cloud.humio.com/", Token: "t"}, "d", prometheus.NewRegistry(), nil); err == nil {
		t.Error("New accepted a config without batching limits")
	}
	cfg := DefaultConfig()
	cfg.URL, cfg.Token = "https://cloud.humio.com/", "t"
	s, err := New(cfg, "d", prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.ingestURL != "https://cloud.humio.com"+pathStructured {
		t.Errorf("ingest URL %s", s.ingestURL)
	}
}
