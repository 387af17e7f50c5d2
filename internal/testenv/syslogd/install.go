// Package syslogd runs real syslog receivers for tests: Debian's rsyslog
// (imtcp, imtcp over gtls, imrelp) and syslog-ng (network() and syslog()
// sources), each in the foreground on a loopback port with its own
// configuration and work directory, writing every message it received as
// one JSON line {"raw": ...} to a file the test reads.
//
// The packages are installed when missing (the tests run as root on Debian).
// rsyslog and syslog-ng-core conflict in Debian (both provide
// system-log-daemon), so rsyslog is installed with apt-get and syslog-ng-core
// is downloaded with apt-get download and unpacked into the user cache
// directory, its libraries installed with apt-get. Installation is
// idempotent and serialised with flock, so several test binaries may run it
// at once.
package syslogd

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

var (
	installOnce sync.Once
	installErr  error
	tools       struct {
		rsyslogd  string
		syslogNG  string // the unpacked binary
		sngLib    string // its private library directory
		sngModule string // its module directory
	}
)

const sngVersion = "3.38"

// rsyslogModules are the modules the receivers load; their absence means a
// package is missing.
var rsyslogModules = []string{"imtcp.so", "imrelp.so", "lmnsd_gtls.so"}

// syslogNGDeps are syslog-ng-core's library dependencies (apt-cache
// depends syslog-ng-core), installable beside rsyslog.
var syslogNGDeps = []string{"libivykis0", "libnet1", "libjson-c5", "libpcre3", "libwrap0", "libglib2.0-0", "libcap2", "libssl3"}

// ensure installs what is missing, once per process.
func ensure(tb testing.TB) {
	tb.Helper()
	installOnce.Do(func() { installErr = install() })
	if installErr != nil {
		tb.Fatalf("syslog receivers: %v", installErr)
	}
}

func install() error {
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "siemship", "syslog-ng-"+sngVersion)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cache directory: %w", err)
	}
	// apt and dpkg take their own locks and fail rather than wait; the
	// flock makes concurrent test binaries take turns instead.
	lock, err := os.OpenFile(filepath.Join(dir, "install.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("install lock: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("install lock: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)

	if !rsyslogComplete() || !libsPresent() {
		if err := run("apt-get", "update"); err != nil {
			return err
		}
		args := append([]string{"install", "-y", "--no-install-recommends", "rsyslog", "rsyslog-gnutls", "rsyslog-relp"}, syslogNGDeps...)
		if err := run("apt-get", args...); err != nil {
			return err
		}
		stopService("rsyslog", "/run/rsyslogd.pid")
	}
	if !rsyslogComplete() {
		return fmt.Errorf("rsyslog installed but rsyslogd or one of %v is missing", rsyslogModules)
	}
	p, err := exec.LookPath("rsyslogd")
	if err != nil {
		return fmt.Errorf("rsyslogd: %w", err)
	}
	tools.rsyslogd = p

	root := filepath.Join(dir, "root")
	tools.syslogNG = filepath.Join(root, "usr", "sbin", "syslog-ng")
	tools.sngLib = filepath.Join(root, "usr", "lib", "syslog-ng")
	tools.sngModule = filepath.Join(tools.sngLib, sngVersion)
	if _, err := os.Stat(tools.syslogNG); err == nil {
		return nil
	}
	if err := runIn(dir, "apt-get", "download", "syslog-ng-core"); err != nil {
		if err := run("apt-get", "update"); err != nil {
			return err
		}
		if err := runIn(dir, "apt-get", "download", "syslog-ng-core"); err != nil {
			return err
		}
	}
	debs, _ := filepath.Glob(filepath.Join(dir, "syslog-ng-core_*.deb"))
	if len(debs) == 0 {
		return fmt.Errorf("apt-get download syslog-ng-core left no .deb in %s", dir)
	}
	tmp := root + ".tmp"
	os.RemoveAll(tmp)
	if err := run("dpkg-deb", "-x", debs[0], tmp); err != nil {
		return err
	}
	// Rename last: a binary in place means a complete unpack.
	return os.Rename(tmp, root)
}

func rsyslogComplete() bool {
	if _, err := exec.LookPath("rsyslogd"); err != nil {
		return false
	}
	for _, m := range rsyslogModules {
		if _, err := os.Stat(filepath.Join("/usr/lib/x86_64-linux-gnu/rsyslog", m)); err != nil {
			if _, err := os.Stat(filepath.Join("/usr/lib/rsyslog", m)); err != nil {
				return false
			}
		}
	}
	return true
}

func libsPresent() bool {
	out, err := exec.Command("dpkg-query", append([]string{"-W", "-f=${Status}\n"}, syslogNGDeps...)...).Output()
	return err == nil && strings.Count(string(out), "install ok installed") == len(syslogNGDeps)
}

// stopService stops the daemon a package's postinst may have started: the
// tests run their own instances and must not share ports or files with it.
func stopService(name, pidFile string) {
	if _, err := exec.LookPath("service"); err == nil {
		_ = exec.Command("service", name, "stop").Run()
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		return
	}
	if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil && pid > 1 {
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
}

func run(name string, args ...string) error { return runIn("", name, args...) }

func runIn(dir, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, tail(out))
	}
	return nil
}

func tail(b []byte) string {
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}
