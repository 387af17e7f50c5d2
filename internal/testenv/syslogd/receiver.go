package syslogd

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Kinds of receivers.
const (
	RsyslogTCP      = "rsyslog-imtcp"      // LF and octet framing, auto-detected
	RsyslogTLS      = "rsyslog-imtcp-gtls" // needs Options.TLS; client certificates required
	RsyslogRELP     = "rsyslog-imrelp"
	SyslogNGNetwork = "syslog-ng-network" // network(): RFC 3164, LF framing
	SyslogNGSyslog  = "syslog-ng-syslog"  // syslog(): RFC 5424, octet framing (RFC 6587)
)

// Options configure a receiver.
type Options struct {
	Kind string
	// TLS is the server side for RsyslogTLS.
	TLS *PKI
}

// Receiver is a running syslog daemon. Not safe for concurrent use.
type Receiver struct {
	Addr string // 127.0.0.1:port
	Port int

	tb   testing.TB
	kind string
	dir  string
	out  string
	args []string
	env  []string
	cmd  *exec.Cmd
	done chan struct{}

	counted int64  // bytes of the output file Count has read
	lines   int    // whole lines in them
	buf     []byte // Count's read buffer
}

// Start starts a receiver on a free loopback port; it is stopped when the
// test ends.
func Start(tb testing.TB, opt Options) *Receiver {
	tb.Helper()
	ensure(tb)
	dir := tb.TempDir()
	r := &Receiver{tb: tb, kind: opt.Kind, dir: dir, out: filepath.Join(dir, "received.jsonl"), Port: freePort(tb)}
	r.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(r.Port))
	conf := filepath.Join(dir, "receiver.conf")
	var text string
	switch opt.Kind {
	case RsyslogTCP, RsyslogTLS, RsyslogRELP:
		text = rsyslogConf(r, opt)
		work := filepath.Join(dir, "work")
		if err := os.MkdirAll(work, 0o755); err != nil {
			tb.Fatal(err)
		}
		r.args = []string{tools.rsyslogd, "-n", "-f", conf, "-i", filepath.Join(dir, "rsyslogd.pid")}
	case SyslogNGNetwork, SyslogNGSyslog:
		text = syslogNGConf(r)
		r.args = []string{tools.syslogNG, "-F", "-e", "-f", conf, "--no-caps",
			"-R", filepath.Join(dir, "persist"), "-c", filepath.Join(dir, "ctl"), "-p", filepath.Join(dir, "syslog-ng.pid"),
			"--module-path=" + tools.sngModule}
		r.env = append(os.Environ(), "LD_LIBRARY_PATH="+tools.sngLib)
	default:
		tb.Fatalf("unknown receiver kind %q", opt.Kind)
	}
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		tb.Fatal(err)
	}
	r.start()
	tb.Cleanup(r.stop)
	return r
}

func rsyslogConf(r *Receiver, opt Options) string {
	var b strings.Builder
	glob := fmt.Sprintf(`workDirectory="%s" maxMessageSize="1m"`, filepath.Join(r.dir, "work"))
	if opt.Kind == RsyslogTLS {
		glob += fmt.Sprintf(` defaultNetstreamDriver="gtls" defaultNetstreamDriverCAFile="%s" defaultNetstreamDriverCertFile="%s" defaultNetstreamDriverKeyFile="%s"`,
			opt.TLS.CAFile, opt.TLS.ServerCert, opt.TLS.ServerKey)
	}
	fmt.Fprintf(&b, "global(%s)\n", glob)
	// Direct queues: a message is written before the next is read, so what
	// a kill -9 loses is only what sat in the socket and read buffers.
	b.WriteString("main_queue(queue.type=\"Direct\")\n")
	fmt.Fprintf(&b, "template(name=\"raw\" type=\"string\" string=\"{\\\"raw\\\":\\\"%%rawmsg:::json%%\\\"}\\n\")\n")
	fmt.Fprintf(&b, "ruleset(name=\"in\" queue.type=\"Direct\") {\n  action(type=\"omfile\" file=\"%s\" template=\"raw\" asyncWriting=\"off\" flushOnTXEnd=\"on\")\n}\n", r.out)
	switch opt.Kind {
	case RsyslogTCP:
		b.WriteString("module(load=\"imtcp\")\n")
		fmt.Fprintf(&b, "input(type=\"imtcp\" address=\"127.0.0.1\" port=\"%d\" ruleset=\"in\")\n", r.Port)
	case RsyslogTLS:
		b.WriteString("module(load=\"imtcp\" streamDriver.name=\"gtls\" streamDriver.mode=\"1\" streamDriver.authMode=\"x509/certvalid\")\n")
		fmt.Fprintf(&b, "input(type=\"imtcp\" address=\"127.0.0.1\" port=\"%d\" ruleset=\"in\")\n", r.Port)
	case RsyslogRELP:
		b.WriteString("module(load=\"imrelp\")\n")
		fmt.Fprintf(&b, "input(type=\"imrelp\" address=\"127.0.0.1\" port=\"%d\" ruleset=\"in\" maxDataSize=\"1m\")\n", r.Port)
	}
	return b.String()
}

func syslogNGConf(r *Receiver) string {
	driver := "network"
	if r.kind == SyslogNGSyslog {
		driver = "syslog"
	}
	return fmt.Sprintf(`@version: %s
options { stats_freq(0); keep-hostname(yes); log-msg-size(1048576); };
source s_in { %s(ip("127.0.0.1") port(%d) transport("tcp") flags(store-raw-message) log-msg-size(1048576)); };
destination d_out { file("%s" template("$(format-json raw=${RAWMSG})\n") flush-lines(1)); };
log { source(s_in); destination(d_out); };
`, sngVersion, driver, r.Port, r.out)
}

func (r *Receiver) start() {
	r.tb.Helper()
	logf, err := os.OpenFile(filepath.Join(r.dir, "daemon.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		r.tb.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(r.args[0], r.args[1:]...)
	cmd.Env = r.env
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = r.dir
	if err := cmd.Start(); err != nil {
		r.tb.Fatalf("start %s: %v", r.kind, err)
	}
	r.cmd, r.done = cmd, make(chan struct{})
	go func() { cmd.Wait(); close(r.done) }() // owned: stop and Kill wait for done
	deadline := time.Now().Add(20 * time.Second)
	for !listening(r.Port) {
		select {
		case <-r.done:
			r.tb.Fatalf("%s exited at start:\n%s", r.kind, r.Log())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			r.tb.Fatalf("%s not listening on %s after 20s:\n%s", r.kind, r.Addr, r.Log())
		}
	}
}

func (r *Receiver) stop() {
	if r.cmd == nil {
		return
	}
	select {
	case <-r.done:
	default:
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
			_ = r.cmd.Process.Kill()
			<-r.done
		}
	}
	r.cmd = nil
}

// Pid returns the daemon's process id.
func (r *Receiver) Pid() int { return r.cmd.Process.Pid }

// Signal sends sig to the daemon (SIGSTOP to freeze it, for example).
func (r *Receiver) Signal(sig syscall.Signal) {
	if err := r.cmd.Process.Signal(sig); err != nil {
		r.tb.Fatalf("signal %s: %v", r.kind, err)
	}
}

// Kill kills the daemon with SIGKILL and waits until it is gone.
func (r *Receiver) Kill() {
	_ = r.cmd.Process.Signal(syscall.SIGKILL)
	<-r.done
	r.cmd = nil
}

// Restart starts the daemon again on the same port, appending to the same
// output file.
func (r *Receiver) Restart() {
	r.tb.Helper()
	if r.cmd != nil {
		r.tb.Fatal("Restart of a running receiver")
	}
	r.start()
}

// Log returns the daemon's own output.
func (r *Receiver) Log() string {
	b, _ := os.ReadFile(filepath.Join(r.dir, "daemon.log"))
	return tail(b)
}

// Messages returns the raw messages written so far, in order. A last line
// cut by a kill is not counted.
func (r *Receiver) Messages() []string {
	r.tb.Helper()
	data, err := os.ReadFile(r.out)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		r.tb.Fatal(err)
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var rec struct {
			Raw string `json:"raw"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			if !bytes.HasSuffix(data, []byte("\n")) && len(sc.Bytes()) > 0 {
				continue // the line a kill cut off
			}
			r.tb.Fatalf("%s wrote a line that is not a record: %v: %.200q", r.kind, err, sc.Bytes())
		}
		out = append(out, rec.Raw)
	}
	return out
}

// Count returns the number of messages written so far without parsing
// them: it reads only what was appended since the last call and counts
// whole lines, so polling a large output is cheap. It does not see a
// message split by a kill (the next line completes it).
func (r *Receiver) Count() int {
	r.tb.Helper()
	f, err := os.Open(r.out)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		r.tb.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(r.counted, io.SeekStart); err != nil {
		r.tb.Fatalf("seek %s: %v", r.out, err)
	}
	if r.buf == nil {
		r.buf = make([]byte, 1<<20)
	}
	for {
		n, err := f.Read(r.buf)
		r.counted += int64(n)
		r.lines += bytes.Count(r.buf[:n], []byte{'\n'})
		if err == io.EOF {
			return r.lines
		}
		if err != nil {
			r.tb.Fatalf("read %s: %v", r.out, err)
		}
	}
}

// WaitMessages polls until at least n messages were written, or fails the
// test after timeout.
func (r *Receiver) WaitMessages(n int, timeout time.Duration) []string {
	r.tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		m := r.Messages()
		if len(m) >= n {
			return m
		}
		if time.Now().After(deadline) {
			r.tb.Fatalf("%s wrote %d of %d messages within %s; its log:\n%s", r.kind, len(m), n, timeout, r.Log())
		}
		time.Sleep(20 * time.Millisecond) // polling a file another process writes
	}
}

func freePort(tb testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// listening says whether something listens on 127.0.0.1:port, from
// /proc/net/tcp, without connecting (a probe connection would be a
// session the receiver logs).
func listening(port int) bool {
	for _, s := range Sockets() {
		if s.LocalPort == port && s.State == 0x0A {
			return true
		}
	}
	return false
}

// Socket is one line of /proc/net/tcp (IPv4 only: the receivers listen on
// 127.0.0.1).
type Socket struct {
	LocalPort, RemotePort int
	State                 int
	TxQueue, RxQueue      int // bytes not acknowledged by the peer; bytes not read by the process
}

// Sockets lists the IPv4 TCP sockets.
func Sockets() []Socket {
	data, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return nil
	}
	var out []Socket
	for i, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) < 5 {
			continue
		}
		var s Socket
		s.LocalPort = hexPort(f[1])
		s.RemotePort = hexPort(f[2])
		st, _ := strconv.ParseInt(f[3], 16, 32)
		s.State = int(st)
		tx, rx, _ := strings.Cut(f[4], ":")
		t, _ := strconv.ParseInt(tx, 16, 64)
		x, _ := strconv.ParseInt(rx, 16, 64)
		s.TxQueue, s.RxQueue = int(t), int(x)
		out = append(out, s)
	}
	return out
}

func hexPort(addr string) int {
	_, p, _ := strings.Cut(addr, ":")
	n, _ := strconv.ParseInt(p, 16, 32)
	return int(n)
}
