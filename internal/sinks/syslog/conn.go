package syslog

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// conn is one connection to the receiver. Written by the sink's Run
// goroutine only; one reader goroutine per conn watches the other
// direction and is stopped and waited for by close.
type conn struct {
	c      net.Conn        // what messages are written to: raw, or TLS over counted
	raw    *net.TCPConn    //
	rc     syscall.RawConn // for the send queue
	isTLS  bool
	wire   int64         // bytes handed to the kernel on raw, TLS records included
	dead   chan struct{} // closed by the reader when the receiver closed or failed
	deadEr error         // why, set before dead is closed
	relp   *relpSession  // RELP only
	// onClose runs before the socket closes (to release the reader).
	onClose func()

	closeOnce sync.Once
	wg        sync.WaitGroup
}

// counted counts the bytes TLS writes to the socket, so that the send
// queue (which counts TLS records) can be compared with what was written.
type counted struct {
	*net.TCPConn
	n *int64
}

func (c counted) Write(p []byte) (int, error) {
	n, err := c.TCPConn.Write(p)
	*c.n += int64(n)
	return n, err
}

// tlsConfig builds the client TLS configuration: system roots plus
// ca_file, an optional client certificate, the server name.
func tlsConfig(cfg *Config) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: cfg.TLSServerName}
	if tc.ServerName == "" {
		host, _, err := net.SplitHostPort(cfg.Address)
		if err != nil {
			return nil, fmt.Errorf("address %q: %w", cfg.Address, err)
		}
		tc.ServerName = host
	}
	if cfg.CAFile != "" {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read ca_file: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s holds no PEM certificate", cfg.CAFile)
		}
		tc.RootCAs = pool
	}
	if cfg.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			// The error names files and parse problems, never key bytes.
			return nil, fmt.Errorf("load client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// dial connects, with the TLS handshake when tc is set, within timeout.
func dial(ctx context.Context, address string, tc *tls.Config, timeout time.Duration) (*conn, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	d := net.Dialer{KeepAlive: 30 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", address)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", address, err)
	}
	raw := nc.(*net.TCPConn)
	rc, err := raw.SyscallConn()
	if err != nil {
		raw.Close()
		return nil, fmt.Errorf("connect %s: %w", address, err)
	}
	c := &conn{c: raw, raw: raw, rc: rc, dead: make(chan struct{})}
	if tc != nil {
		t := tls.Client(counted{raw, &c.wire}, tc)
		if err := t.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, fmt.Errorf("TLS handshake with %s: %w", address, err)
		}
		c.c, c.isTLS = t, true
	}
	return c, nil
}

// write writes p within timeout and counts the plain-TCP wire bytes.
func (c *conn) write(p []byte, timeout time.Duration) (int, error) {
	if err := c.c.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
		return 0, err
	}
	n, err := c.c.Write(p)
	if !c.isTLS {
		c.wire += int64(n)
	}
	return n, err
}

// watch starts the reader goroutine: read hands what the receiver sends
// (nothing, for plain syslog) to the protocol; its error marks the
// connection dead.
func (c *conn) watch(read func(*conn) error) {
	c.wg.Go(func() {
		c.deadEr = read(c)
		close(c.dead)
	})
}

// close closes the connection and waits for the reader. Idempotent.
func (c *conn) close() {
	c.closeOnce.Do(func() {
		if c.onClose != nil {
			c.onClose()
		}
		c.c.Close()
	})
	c.wg.Wait()
}

// isDead reports whether the reader saw the connection end.
func (c *conn) isDead() bool {
	select {
	case <-c.dead:
		return true
	default:
		return false
	}
}
