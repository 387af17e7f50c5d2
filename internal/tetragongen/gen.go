// Package tetragongen generates realistic Tetragon export lines for the demo,
// tests and benchmarks: many pods and namespaces, random exec and container
// ids, varied binaries, arguments and timestamps, so that compression ratios
// and parsing costs resemble a real node (identical lines compress 50:1 and
// make every benchmark lie). Each line carries its sequence number inside its
// exec_id, like Tetragon's own base64("node:ktime:pid") ids.
package tetragongen

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"
)

// Generator is not safe for concurrent use.
type Generator struct {
	rng  *rand.Rand
	node string
	pods []pod
	base time.Time
}

type pod struct {
	namespace, name, uid, workload, kind string
	containerID, containerName, image    string
	labels                               map[string]string
}

var (
	namespaces = []string{"default", "payments", "checkout", "frontend", "backend", "data", "ml", "auth",
		"search", "ingest", "billing", "mail", "cache", "queue", "monitoring", "logging", "ci", "staging", "tools", "batch"}
	images = []string{"docker.io/library/nginx:1.27", "docker.io/library/redis:7.4", "ghcr.io/acme/api:v2.14.1",
		"docker.io/library/postgres:16", "quay.io/prometheus/node-exporter:v1.8.2", "docker.io/library/python:3.12-slim",
		"ghcr.io/acme/worker:v0.93.0", "docker.io/bitnami/kafka:3.7"}
	binaries = []struct{ path, args string }{
		{"/usr/bin/curl", "-sS -m 5 https://%s.svc.cluster.local:8443/healthz"},
		{"/bin/sh", "-c \"cat /proc/%d/status | grep -i cap\""},
		{"/usr/local/bin/python3", "/app/worker.py --queue=%s --batch=%d"},
		{"/usr/bin/git", "fetch --depth=1 origin refs/heads/%s"},
		{"/usr/sbin/nginx", "-g \"daemon off;\" -c /etc/nginx/%s.conf"},
		{"/bin/busybox", "wget -q -O- http://%s:9090/metrics"},
		{"/usr/bin/apt-get", "install -y --no-install-recommends %s"},
		{"/usr/bin/ssh", "-o StrictHostKeyChecking=no deploy@%s uptime"},
		{"/usr/bin/vi", "/etc/%s/config.yaml"},
		{"/usr/local/bin/node", "/srv/%s/server.js --port %d"},
	}
	words = []string{"alpha", "orders", "ledger", "session", "inventory", "reports", "users", "thumbnails", "search", "audit"}
)

// New returns a generator with a fixed seed, so runs are reproducible.
func New(seed uint64, node string) *Generator {
	g := &Generator{
		rng:  rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		node: node,
		base: time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC),
	}
	for i := range 150 {
		g.pods = append(g.pods, g.newPod(i))
	}
	return g
}

func (g *Generator) hex(n int) string {
	b := make([]byte, n/2)
	for i := range b {
		b[i] = byte(g.rng.UintN(256))
	}
	return hex.EncodeToString(b)
}

func (g *Generator) newPod(i int) pod {
	ns := namespaces[i%len(namespaces)]
	workload := fmt.Sprintf("%s-%s", words[g.rng.IntN(len(words))], words[g.rng.IntN(len(words))])
	p := pod{
		namespace:     ns,
		workload:      workload,
		kind:          []string{"Deployment", "StatefulSet", "DaemonSet", "Job"}[g.rng.IntN(4)],
		name:          fmt.Sprintf("%s-%s-%s", workload, g.hex(10), g.hex(6)[:5]),
		uid:           fmt.Sprintf("%s-%s-%s-%s-%s", g.hex(8), g.hex(4), g.hex(4), g.hex(4), g.hex(12)),
		containerID:   g.hex(64),
		containerName: words[g.rng.IntN(len(words))],
		image:         images[g.rng.IntN(len(images))],
		labels: map[string]string{
			"app.kubernetes.io/name":    workload,
			"app.kubernetes.io/part-of": ns,
			"pod-template-hash":         g.hex(10),
		},
	}
	return p
}

// Line appends line number seq (no newline) to dst.
func (g *Generator) Line(dst []byte, seq int) []byte {
	p := &g.pods[g.rng.IntN(len(g.pods))]
	t := g.base.Add(time.Duration(seq)*time.Millisecond + time.Duration(g.rng.IntN(1_000_000)))
	pid := 1000 + g.rng.IntN(4_000_000)
	kind := g.rng.IntN(100)
	var key string
	switch {
	case kind < 45:
		key = "process_exec"
	case kind < 85:
		key = "process_exit"
	default:
		key = "process_kprobe"
	}
	dst = append(dst, `{"`...)
	dst = append(dst, key...)
	dst = append(dst, `":{"process":`...)
	dst = g.process(dst, p, execID(g.node, seq, pid), pid, t, true)
	dst = append(dst, `,"parent":`...)
	ppid := 1 + g.rng.IntN(pid)
	dst = g.process(dst, p, execID(g.node, g.rng.IntN(1<<40), ppid), ppid, t.Add(-time.Duration(g.rng.IntN(3600))*time.Second), false)
	switch key {
	case "process_exit":
		dst = append(dst, `,"signal":"SIGKILL","status":`...)
		dst = strconv.AppendInt(dst, int64(g.rng.IntN(256)), 10)
	case "process_kprobe":
		dst = g.kprobe(dst)
	}
	dst = append(dst, `},"node_name":"`...)
	dst = append(dst, g.node...)
	dst = append(dst, `","time":"`...)
	dst = AppendProtoTime(dst, t)
	return append(dst, `"}`...)
}

// AppendProtoTime appends t as protojson writes a google.protobuf.Timestamp,
// as Tetragon's export does: UTC, "Z", and 0, 3, 6 or 9 fractional digits
// (the fewest that keep the value), never another width.
func AppendProtoTime(dst []byte, t time.Time) []byte {
	t = t.UTC()
	dst = t.AppendFormat(dst, "2006-01-02T15:04:05")
	switch ns := t.Nanosecond(); {
	case ns == 0:
	case ns%1_000_000 == 0:
		dst = fmt.Appendf(dst, ".%03d", ns/1_000_000)
	case ns%1_000 == 0:
		dst = fmt.Appendf(dst, ".%06d", ns/1_000)
	default:
		dst = fmt.Appendf(dst, ".%09d", ns)
	}
	return append(dst, 'Z')
}

func execID(node string, seq, pid int) string {
	return base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("%s:%d:%d", node, seq, pid)))
}

func (g *Generator) process(dst []byte, p *pod, id string, pid int, t time.Time, child bool) []byte {
	bin := binaries[g.rng.IntN(len(binaries))]
	args := bin.args
	if strings.Contains(args, "%s") && strings.Contains(args, "%d") {
		args = fmt.Sprintf(args, words[g.rng.IntN(len(words))], g.rng.IntN(65536))
	} else if strings.Contains(args, "%s") {
		args = fmt.Sprintf(args, words[g.rng.IntN(len(words))]+"-"+g.hex(6))
	} else {
		args = fmt.Sprintf(args, g.rng.IntN(99999))
	}
	dst = fmt.Appendf(dst, `{"exec_id":%q,"pid":%d,"uid":%d,"cwd":"/app","binary":%q,"arguments":%q,"flags":"execve clone","start_time":%q,"auid":4294967295,`,
		id, pid, g.rng.IntN(2)*1000, bin.path, args, AppendProtoTime(nil, t))
	dst = fmt.Appendf(dst, `"pod":{"namespace":%q,"name":%q,"uid":%q,"container":{"id":"containerd://%s","name":%q,"image":{"id":"%s@sha256:%s","name":%q},"start_time":"2026-11-22T07:12:41Z","pid":%d},"pod_labels":{`,
		p.namespace, p.name, p.uid, p.containerID, p.containerName, p.image, g.hex(64), p.image, 1+g.rng.IntN(200))
	first := true
	for _, k := range []string{"app.kubernetes.io/name", "app.kubernetes.io/part-of", "pod-template-hash"} {
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = fmt.Appendf(dst, "%q:%q", k, p.labels[k])
	}
	dst = fmt.Appendf(dst, `},"workload":%q,"workload_kind":%q},"docker":%q,"parent_exec_id":%q,"tid":%d`,
		p.workload, p.kind, p.containerID[:31], execID(g.node, g.rng.IntN(1<<40), g.rng.IntN(1<<20)), pid)
	if child {
		dst = append(dst, `,"refcnt":1`...)
	}
	return append(dst, '}')
}

func (g *Generator) kprobe(dst []byte) []byte {
	if g.rng.IntN(2) == 0 {
		return fmt.Appendf(dst, `,"function_name":"security_file_permission","args":[{"file_arg":{"path":"/etc/%s/secret-%s","permission":"-rw-------"}},{"int_arg":%d}],"return":{"int_arg":0},"action":"KPROBE_ACTION_POST","policy_name":"file-monitoring","return_action":"KPROBE_ACTION_POST"`,
			words[g.rng.IntN(len(words))], g.hex(8), 2+g.rng.IntN(2))
	}
	return fmt.Appendf(dst, `,"function_name":"tcp_connect","args":[{"sock_arg":{"family":"AF_INET","type":"SOCK_STREAM","protocol":"IPPROTO_TCP","saddr":"10.244.%d.%d","daddr":"%d.%d.%d.%d","sport":%d,"dport":443,"cookie":"%d"}}],"action":"KPROBE_ACTION_POST","policy_name":"connect","return_action":"KPROBE_ACTION_POST"`,
		g.rng.IntN(255), g.rng.IntN(255), 1+g.rng.IntN(223), g.rng.IntN(255), g.rng.IntN(255), g.rng.IntN(255), 32768+g.rng.IntN(28000), g.rng.Uint64())
}

// Seq extracts the sequence number a generated line carries, from any event.
func Seq(line []byte) (int, bool) {
	id := gjson.GetBytes(line, "*.process.exec_id")
	raw, err := base64.StdEncoding.DecodeString(id.String())
	if err != nil {
		return 0, false
	}
	parts := strings.Split(string(raw), ":")
	if len(parts) != 3 {
		return 0, false
	}
	n, err := strconv.Atoi(parts[1])
	return n, err == nil
}
