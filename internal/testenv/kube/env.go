package kube

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// readyTimeout bounds how long etcd and kube-apiserver may take to become
// ready; kube-apiserver typically needs about 15 seconds on two cores.
const readyTimeout = 2 * time.Minute

// Env is a running etcd and kube-apiserver. Its methods are safe for
// concurrent use.
type Env struct {
	// Admin authenticates as a member of system:masters (token auth).
	Admin *rest.Config
	// Client is a clientset built from Admin.
	Client kubernetes.Interface

	dir       string
	apiBin    string
	apiArgs   []string
	caPEM     []byte
	host      string
	adminTok  string
	etcd      *process
	mu        sync.Mutex
	apiserver *process // nil while stopped
	restarts  int
}

// Start runs etcd and kube-apiserver on free loopback ports, in a fresh
// temporary directory, and waits until the API server is ready. Missing
// binaries are installed or built first (see hack/kube-tools.sh). Call Close
// when done; one Env per test binary (TestMain) keeps test time low.
func Start() (*Env, error) {
	etcdBin, apiBin, err := binaries()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(tempBase(), "siemship-kube-")
	if err != nil {
		return nil, fmt.Errorf("create temp dir: %w", err)
	}
	e := &Env{dir: dir, apiBin: apiBin}
	if err := e.start(etcdBin); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// tempBase prefers the memory-backed /dev/shm: etcd fsyncs every write and
// the tests do not need durability across a machine crash.
func tempBase() string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		return "/dev/shm"
	}
	return os.TempDir()
}

func (e *Env) start(etcdBin string) error {
	etcdURL, err := e.startEtcd(etcdBin)
	if err != nil {
		return err
	}
	if err := e.prepareAPIServer(etcdURL); err != nil {
		return err
	}
	if err := e.StartAPIServer(); err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(e.Admin)
	if err != nil {
		return fmt.Errorf("admin clientset: %w", err)
	}
	e.Client = client
	return nil
}

func (e *Env) startEtcd(bin string) (string, error) {
	clientPort, err := freePort()
	if err != nil {
		return "", err
	}
	peerPort, err := freePort()
	if err != nil {
		return "", err
	}
	clientURL := "http://127.0.0.1:" + strconv.Itoa(clientPort)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(peerPort)
	e.etcd, err = startProcess("etcd", filepath.Join(e.dir, "etcd.log"), bin,
		"--name=test",
		"--data-dir="+filepath.Join(e.dir, "etcd"),
		"--listen-client-urls="+clientURL,
		"--advertise-client-urls="+clientURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=test="+peerURL,
		"--log-level=warn",
	)
	if err != nil {
		return "", err
	}
	if err := waitReady(e.etcd, http.DefaultClient, clientURL+"/health", ""); err != nil {
		return "", err
	}
	return clientURL, nil
}

// prepareAPIServer writes the certificate, keys and token file once, so that
// a restarted API server keeps its address, trust anchor and tokens.
func (e *Env) prepareAPIServer(etcdURL string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	p := func(name string) string { return filepath.Join(e.dir, name) }
	e.caPEM, err = writeServingCert(p("serving.crt"), p("serving.key"))
	if err != nil {
		return err
	}
	if err := writeServiceAccountKeys(p("sa.key"), p("sa.pub")); err != nil {
		return err
	}
	e.adminTok, err = randomToken()
	if err != nil {
		return err
	}
	tokens := e.adminTok + `,admin,admin-uid,"system:masters"` + "\n"
	if err := os.WriteFile(p("tokens.csv"), []byte(tokens), 0o600); err != nil {
		return fmt.Errorf("write token file: %w", err)
	}
	e.host = "https://127.0.0.1:" + strconv.Itoa(port)
	e.apiArgs = []string{
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--tls-cert-file=" + p("serving.crt"),
		"--tls-private-key-file=" + p("serving.key"),
		"--cert-dir=" + p("certs"),
		"--etcd-servers=" + etcdURL,
		"--token-auth-file=" + p("tokens.csv"),
		"--authorization-mode=RBAC",
		"--service-account-key-file=" + p("sa.pub"),
		"--service-account-signing-key-file=" + p("sa.key"),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-cluster-ip-range=10.96.0.0/24",
		// No controller-manager creates the default ServiceAccounts.
		"--disable-admission-plugins=ServiceAccount",
		// No kubelet or endpoints to reconcile on loopback.
		"--endpoint-reconciler-type=none",
		"--enable-priority-and-fairness=false",
		"--profiling=false",
	}
	e.Admin = &rest.Config{
		Host:            e.host,
		BearerToken:     e.adminTok,
		TLSClientConfig: rest.TLSClientConfig{CAData: e.caPEM},
		QPS:             500,
		Burst:           1000,
		UserAgent:       "siemship-testenv",
	}
	return nil
}

// StartAPIServer starts kube-apiserver (again, after StopAPIServer) on the
// same address with the same keys, and waits until it is ready.
func (e *Env) StartAPIServer() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.apiserver != nil {
		return errors.New("kube-apiserver already running")
	}
	logPath := filepath.Join(e.dir, fmt.Sprintf("kube-apiserver-%d.log", e.restarts))
	e.restarts++
	proc, err := startProcess("kube-apiserver", logPath, e.apiBin, e.apiArgs...)
	if err != nil {
		return err
	}
	if err := waitReady(proc, e.httpClient(), e.host+"/readyz", e.adminTok); err != nil {
		proc.stop()
		return err
	}
	e.apiserver = proc
	return nil
}

// StopAPIServer stops kube-apiserver and leaves etcd running, as in an API
// server outage. Clients see connection refused until StartAPIServer.
func (e *Env) StopAPIServer() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.apiserver != nil {
		e.apiserver.stop()
		e.apiserver = nil
	}
}

// Close stops both processes and removes the temporary directory. It is safe
// to call more than once.
func (e *Env) Close() {
	e.StopAPIServer()
	if e.etcd != nil {
		e.etcd.stop()
		e.etcd = nil
	}
	if e.dir != "" {
		_ = os.RemoveAll(e.dir)
		e.dir = ""
	}
}

func (e *Env) httpClient() *http.Client {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(e.caPEM)
	return &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}},
	}
}

// waitReady polls url until it answers 200, the process exits or
// readyTimeout passes.
func waitReady(p *process, client *http.Client, url, token string) error {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		if ready(ctx, client, url, token) {
			return nil
		}
		select {
		case <-p.done:
			return p.failure("exited before it was ready")
		case <-ctx.Done():
			return p.failure("not ready within " + readyTimeout.String())
		case <-tick.C:
		}
	}
}

func ready(ctx context.Context, client *http.Client, url, token string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
