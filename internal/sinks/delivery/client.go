package delivery

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
)

// newClient returns the HTTP client for cfg: TLS always verified, against
// the system roots plus CAFile; redirects not followed (a redirected POST
// loses its body or changes method, so a redirect is a wrong URL, reported
// as its status code). The per-attempt timeout comes from the request's
// context, not from the client.
func newClient(cfg *Config) (*http.Client, error) {
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	if cfg.CAFile != "" {
		pem, err := readCAFile(cfg.CAFile)
		if err != nil {
			return nil, err
		}
		roots.AppendCertsFromPEM(pem)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{
		RootCAs:    roots,
		ServerName: cfg.TLSServerName,
		MinVersion: tls.VersionTLS12,
	}
	tr.MaxIdleConnsPerHost = max(cfg.Concurrency, 1) + 1
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}, nil
}

// readCAFile returns the PEM bundle at path after checking that it holds a
// certificate.
func readCAFile(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read CA file: %w", err)
	}
	if !x509.NewCertPool().AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("CA file %s: no PEM certificate found", path)
	}
	return data, nil
}
