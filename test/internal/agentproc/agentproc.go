// Package agentproc builds the siemship binary and runs it as a real child
// process, for tests that kill and restart the agent.
package agentproc

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary builds cmd/siemship once per test binary (with the race detector
// when the tests run with it) and returns its path.
func Binary(tb testing.TB, repoRoot string) string {
	tb.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "siemship-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "siemship")
		args := []string{"build", "-o", binPath}
		if raceEnabled {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, "./cmd/siemship")...)
		cmd.Dir = repoRoot
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return binPath
}

// Proc is one running agent.
type Proc struct {
	cmd     *exec.Cmd
	done    chan struct{}
	err     error
	logPath string
	logFrom int64 // size of the log file when this process started
}

// Start runs `siemship run --config cfg` with env added to the environment;
// its output goes to logPath (appended).
func Start(tb testing.TB, bin, cfg, logPath string, env ...string) *Proc {
	tb.Helper()
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		tb.Fatal(err)
	}
	fi, err := log.Stat()
	if err != nil {
		tb.Fatal(err)
	}
	args := []string{"run", "--config", cfg}
	if prof := os.Getenv("SIEMSHIP_TEST_CPUPROFILE"); prof != "" {
		args = append(args, "--cpuprofile", prof)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	p := &Proc{cmd: cmd, done: make(chan struct{}), logPath: logPath, logFrom: fi.Size()}
	go func() {
		p.err = cmd.Wait()
		log.Close()
		close(p.done)
	}()
	// A failing test must not leave an agent running.
	tb.Cleanup(func() {
		if exited, _ := p.Exited(); !exited {
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// WaitForLog waits until this process has logged a line containing text.
func (p *Proc) WaitForLog(tb testing.TB, text string, timeout time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		data, err := os.ReadFile(p.logPath)
		if err == nil && int64(len(data)) > p.logFrom && strings.Contains(string(data[p.logFrom:]), text) {
			return
		}
		if exited, err := p.Exited(); exited {
			tb.Fatalf("agent exited before logging %q: %v", text, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	tb.Fatalf("agent did not log %q within %v", text, timeout)
}

// Terminate sends SIGTERM and waits; it fails the test unless the agent
// exits 0 within timeout.
func (p *Proc) Terminate(tb testing.TB, timeout time.Duration) {
	tb.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		tb.Fatal(err)
	}
	select {
	case <-p.done:
		if p.err != nil {
			tb.Fatalf("agent did not exit cleanly after SIGTERM: %v", p.err)
		}
	case <-time.After(timeout):
		p.cmd.Process.Kill()
		<-p.done
		tb.Fatalf("agent still running %v after SIGTERM", timeout)
	}
}

// Kill sends SIGKILL and waits for the process to be gone.
func (p *Proc) Kill(tb testing.TB) {
	tb.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		tb.Fatal(err)
	}
	<-p.done
}

// Exited reports whether the process is gone, and its error.
func (p *Proc) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// PeakRSS returns the running process's own peak resident set (VmHWM of
// /proc/<pid>/status), in KiB. Unlike the Maxrss of Usage it is not raised
// by the parent: Go starts children with vfork, and Linux carries the
// parent's high-water RSS into the child's ru_maxrss at exec, so Maxrss is
// never below the test process's own peak.
func (p *Proc) PeakRSS(tb testing.TB) int64 {
	tb.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		tb.Fatalf("peak RSS: %v", err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			var kib int64
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kib); err != nil {
				tb.Fatalf("peak RSS: %q: %v", l, err)
			}
			return kib
		}
	}
	tb.Fatalf("peak RSS: no VmHWM in /proc/%d/status", p.cmd.Process.Pid)
	return 0
}

// Usage returns the exited process's resource usage (CPU times, peak RSS).
func (p *Proc) Usage() *syscall.Rusage {
	<-p.done
	ru, _ := p.cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if ru == nil {
		return &syscall.Rusage{}
	}
	return ru
}
