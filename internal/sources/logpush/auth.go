package logpush

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
)

// recheckEvery bounds how often a watched file is stat'ed: often enough that
// a rotated secret works within a second, rarely enough to cost nothing.
const recheckEvery = time.Second

// stamp identifies a version of a file. A mounted Kubernetes Secret is
// updated by swapping a symlink, so the inode changes even when the size
// and modification time happen to match.
type stamp struct {
	mod  time.Time
	size int64
	ino  uint64
}

func stampOf(path string) (stamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return stamp{}, err
	}
	st := stamp{mod: fi.ModTime(), size: fi.Size()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino = sys.Ino
	}
	return st, nil
}

// watched re-reads a set of files with load when any of them changes. The
// last good value stays in use when a re-read fails, so a half-written
// update never locks Logpush out. Safe for concurrent use.
type watched[T any] struct {
	what  string
	paths []string
	load  func() (T, error)
	log   *slog.Logger
	every time.Duration
	fails func() // counts a failed re-read

	mu      sync.Mutex
	checked time.Time
	stamps  []stamp
	val     T
	failed  string // last reload error, "" when the value is current
}

func newWatched[T any](what string, log *slog.Logger, fails func(), load func() (T, error), paths ...string) (*watched[T], error) {
	w := &watched[T]{what: what, paths: paths, load: load, log: log, every: recheckEvery, fails: fails}
	stamps, err := w.stat()
	if err != nil {
		return nil, err
	}
	v, err := load()
	if err != nil {
		return nil, err
	}
	w.stamps, w.val, w.checked = stamps, v, time.Now()
	return w, nil
}

func (w *watched[T]) stat() ([]stamp, error) {
	out := make([]stamp, len(w.paths))
	for i, p := range w.paths {
		st, err := stampOf(p)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", w.what, err)
		}
		out[i] = st
	}
	return out, nil
}

// get returns the current value, re-reading the files when they changed.
func (w *watched[T]) get() T {
	w.mu.Lock()
	defer w.mu.Unlock()
	if now := time.Now(); now.Sub(w.checked) >= w.every {
		w.checked = now
		w.refresh()
	}
	return w.val
}

func (w *watched[T]) refresh() {
	stamps, err := w.stat()
	if err == nil && equalStamps(stamps, w.stamps) {
		return
	}
	var v T
	if err == nil {
		v, err = w.load()
	}
	if err != nil {
		w.fails()
		if msg := err.Error(); msg != w.failed {
			w.failed = msg
			w.log.Error("re-read failed; the previous "+w.what+" stays in use", "error", err)
		}
		return
	}
	w.stamps, w.val, w.failed = stamps, v, ""
	w.log.Info(w.what + " re-read after it changed")
}

// problem returns the last reload error, "" when none.
func (w *watched[T]) problem() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.failed
}

func equalStamps(a, b []stamp) bool {
	for i := range a {
		if !a[i].mod.Equal(b[i].mod) || a[i].size != b[i].size || a[i].ino != b[i].ino {
			return false
		}
	}
	return len(a) == len(b)
}

// secrets are the accepted header values, kept only as SHA-256 digests:
// comparing digests of equal length in constant time reveals neither the
// values nor their lengths.
type secrets [][sha256.Size]byte

func loadSecrets(path string) (secrets, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read secret_file: %w", err)
	}
	var out secrets
	for line := range bytes.Lines(data) {
		if v := bytes.TrimSpace(line); len(v) > 0 {
			out = append(out, sha256.Sum256(v))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("secret_file %s holds no value", path)
	}
	return out, nil
}

var (
	errNoCredentials  = errors.New("no credentials")
	errBadCredentials = errors.New("wrong credentials")
)

// check compares a presented header value with every accepted value, all
// of them each time, so the time taken says nothing about which was close.
func (s secrets) check(header string) error {
	if header == "" {
		return errNoCredentials
	}
	whole := sha256.Sum256([]byte(strings.TrimSpace(header)))
	token := whole
	if scheme, rest, ok := strings.Cut(strings.TrimSpace(header), " "); ok && strings.EqualFold(scheme, "Bearer") {
		token = sha256.Sum256([]byte(strings.TrimSpace(rest)))
	}
	match := 0
	for i := range s {
		match |= subtle.ConstantTimeCompare(whole[:], s[i][:])
		match |= subtle.ConstantTimeCompare(token[:], s[i][:])
	}
	if match == 0 {
		return errBadCredentials
	}
	return nil
}

func loadPair(cert, key string) func() (*tls.Certificate, error) {
	return func() (*tls.Certificate, error) {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("load TLS pair (tls_cert_file, tls_key_file): %w", err)
		}
		return &pair, nil
	}
}
