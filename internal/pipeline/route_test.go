package pipeline

import (
	"testing"

	"github.com/siemship/siemship/internal/event"
)

const (
	execKube = `{"process_exec":{"process":{"binary":"/usr/bin/curl","pod":{"namespace":"kube-system","name":"coredns-1","pod_labels":{"app":"coredns","k8s-app":"kube-dns"}}}},"time":"2026-12-01T00:00:00Z"}`
	execShop = `{"process_exec":{"process":{"binary":"/bin/sh","pod":{"namespace":"shop","name":"web-1","pod_labels":{"app.kubernetes.io/name":"web"}}}},"time":"2026-12-01T00:00:00Z"}`
	kprobe   = `{"process_kprobe":{"process":{"binary":"/usr/sbin/sshd","pod":{"namespace":"shop"}},"function_name":"fd_install"},"time":"2026-12-01T00:00:00Z"}`
	hostExec = `{"process_exec":{"process":{"binary":"/usr/lib/systemd/systemd"}},"time":"2026-12-01T00:00:00Z"}`
	enriched = `{"process_exit":{"process":{"binary":"/bin/true"}},"k8s":{"pod":{"namespace":"dev-a","labels":{"team":"red"}}}}`
)

func ev(raw, typ string) *event.Event {
	return &event.Event{Raw: []byte(raw), Type: typ, Size: len(raw)}
}

func TestFilters(t *testing.T) {
	events := map[string]*event.Event{
		"execKube": ev(execKube, "process_exec"), "execShop": ev(execShop, "process_exec"),
		"kprobe": ev(kprobe, "process_kprobe"), "hostExec": ev(hostExec, "process_exec"),
		"enriched":  ev(enriched, "process_exit"),
		"truncated": {Raw: []byte(`{"process_exec":{"pro`), Type: "process_exec", Flags: event.Truncated},
	}
	cases := []struct {
		name             string
		include, exclude *Selector
		keep             []string
	}{
		{"no filter", nil, nil, []string{"execKube", "execShop", "kprobe", "hostExec", "enriched", "truncated"}},
		{"include type", &Selector{EventTypes: []string{"process_kprobe"}}, nil, []string{"kprobe"}},
		{"include type glob", &Selector{EventTypes: []string{"process_ex*"}}, nil, []string{"execKube", "execShop", "hostExec", "enriched", "truncated"}},
		{"exclude namespace glob", nil, &Selector{Namespaces: []string{"kube-*"}}, []string{"execShop", "kprobe", "hostExec", "enriched", "truncated"}},
		{"exclude exec of a namespace", nil, &Selector{EventTypes: []string{"process_exec"}, Namespaces: []string{"shop"}}, []string{"execKube", "kprobe", "hostExec", "enriched", "truncated"}},
		{"include label", &Selector{PodLabels: []string{"app=coredns"}}, nil, []string{"execKube"}},
		{"include dotted label glob", &Selector{PodLabels: []string{"app.kubernetes.io/name=w*"}}, nil, []string{"execShop"}},
		{"enriched namespace and labels", &Selector{Namespaces: []string{"dev-*"}, PodLabels: []string{"team=red"}}, nil, []string{"enriched"}},
		{"include binary glob across /", &Selector{Binaries: []string{"/usr/*"}}, nil, []string{"execKube", "kprobe", "hostExec"}},
		{"include and exclude", &Selector{EventTypes: []string{"process_exec"}}, &Selector{Binaries: []string{"/bin/*"}}, []string{"execKube", "hostExec", "truncated"}},
		{"field filters skip what is not JSON", &Selector{Namespaces: []string{"*"}}, nil, []string{"execKube", "execShop", "kprobe", "enriched"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := filter{c.include, c.exclude}
			var got []string
			for _, name := range []string{"execKube", "execShop", "kprobe", "hostExec", "enriched", "truncated"} {
				if f.keeps(events[name]) {
					got = append(got, name)
				}
			}
			if len(got) != len(c.keep) {
				t.Fatalf("kept %v, want %v", got, c.keep)
			}
			for i := range got {
				if got[i] != c.keep[i] {
					t.Fatalf("kept %v, want %v", got, c.keep)
				}
			}
		})
	}
}

func TestSelectorCheck(t *testing.T) {
	for _, s := range []Selector{{Namespaces: []string{"[x"}}, {PodLabels: []string{"app"}}, {PodLabels: []string{"=x"}}} {
		if s.Check() == nil {
			t.Errorf("%+v accepted", s)
		}
	}
	if err := (&Selector{EventTypes: []string{"process_*"}, PodLabels: []string{"a=b*"}}).Check(); err != nil {
		t.Error(err)
	}
}

func BenchmarkFilter(b *testing.B) {
	f := filter{exclude: &Selector{EventTypes: []string{"process_exec"}, Namespaces: []string{"kube-*"}}}
	e := ev(execKube, "process_exec")
	b.ReportAllocs()
	for b.Loop() {
		f.keeps(e)
	}
}
