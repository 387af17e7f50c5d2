package syslog

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/leodido/go-syslog/v4"
	"github.com/leodido/go-syslog/v4/nontransparent"
	"github.com/leodido/go-syslog/v4/octetcounting"
	"github.com/leodido/go-syslog/v4/rfc5424"

	"github.com/siemship/siemship/internal/event"
	"github.com/siemship/siemship/internal/tetragongen"
	"github.com/siemship/siemship/internal/validate"
)

func newTestBuilder(t testing.TB, mod func(*Config)) *builder {
	t.Helper()
	cfg := testConfig("127.0.0.1:514")
	if mod != nil {
		mod(&cfg)
	}
	v := validate.New("")
	cfg.Validate(v)
	if err := v.Err(); err != nil {
		t.Fatal(err)
	}
	framing := ""
	if cfg.Transport != TransportRELP {
		framing = cfg.framing()
	}
	b, err := newBuilder(&cfg, framing)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Every format and body parses with go-syslog, carries the header fields
// sanitised, the time in the configured zone, and a body that gives the
// event back (json: the bytes; kv: the flattened leaves, in order).
func TestMessageFormats(t *testing.T) {
	evs := genEvents(t, 200, 1)
	for _, format := range []string{FormatRFC3164, FormatRFC5424} {
		for _, body := range []string{BodyJSON, BodyKV} {
			t.Run(format+"-"+body, func(t *testing.T) {
				b := newTestBuilder(t, func(c *Config) {
					c.Format, c.Body, c.Timezone = format, body, "Asia/Tokyo"
					c.Hostname, c.AppName = "node a\x01", "siem-ship agent"
				})
				jst, _ := time.LoadLocation("Asia/Tokyo")
				for i := range evs {
					ev := &evs[i]
					msg, cut := b.message(nil, "tetragon", ev)
					if cut {
						t.Fatal("cut")
					}
					p := parseMessage(t, format, string(msg), jst)
					if p.host != "nodea" {
						t.Fatalf("host %q", p.host)
					}
					wantApp := "siemshipagent" // RFC 3164 TAG: alphanumerics
					if format == FormatRFC5424 {
						wantApp = "siem-shipagent"
						if p.msgID != ev.Type || p.sd["siemship@32473"]["source"] != "tetragon" || p.sd["siemship@32473"]["type"] != ev.Type {
							t.Fatalf("msgid %q sd %v", p.msgID, p.sd)
						}
						if !strings.Contains(string(msg), "+09:00 ") {
							t.Fatalf("RFC 5424 timestamp not in JST: %.60s", msg)
						}
					}
					if p.app != wantApp || p.facility != 16 || p.sev != 6 {
						t.Fatalf("app %q facility %d severity %d", p.app, p.facility, p.sev)
					}
					want := time.UnixMilli(ev.Time).In(jst)
					if got := p.ts.In(jst); got.Format(time.Stamp) != want.Format(time.Stamp) {
						t.Fatalf("time %s, want %s (JST)", got.Format(time.Stamp), want.Format(time.Stamp))
					}
					checkBody(t, body, p.body, ev.Raw)
				}
			})
		}
	}
}

// checkBody asserts that a received body gives the event back.
func checkBody(t testing.TB, body, got string, raw []byte) {
	t.Helper()
	if body == BodyJSON {
		if got != string(raw) {
			t.Fatalf("json body differs:\n got %.200q\nwant %.200q", got, raw)
		}
		return
	}
	if kv, ref := parseKV(t, got), flattenRef(t, raw); !slices.Equal(kv, ref) {
		t.Fatalf("kv body does not reverse to the event's leaves:\n got %v\nwant %v", kv, ref)
	}
}

// The kv body covers every JSON shape: nested objects, arrays (indexed),
// empty containers, numbers, booleans, null, escapes and keys that would
// break the pair syntax.
func TestKVShapes(t *testing.T) {
	b := newTestBuilder(t, func(c *Config) { c.Body = BodyKV })
	for _, tc := range []struct{ in, want string }{
		{`{"a":1,"b":"x y","c":true,"d":null}`, `a="1" b="x y" c="true" d="null"`},
		{`{"p":{"q":{"r":"s"}},"l":[1,{"m":"n"},[]],"e":{}}`, `p.q.r="s" l.0="1" l.1.m="n" l.2="[]" e="{}"`},
		{`{"s":"quote \" back \\ nl \n tab \t \u00e9 é"}`, `s="quote \" back \\ nl \n tab \t \u00e9 é"`},
		{`{"k y=\"":"v","app.kubernetes.io/name":"web"}`, `k_y__="v" app.kubernetes.io/name="web"`},
		{`{"n":-1.5e3,"z":0}`, `n="-1.5e3" z="0"`},
	} {
		got, _ := b.message(nil, "s", &event.Event{Raw: []byte(tc.in), Time: 1})
		body := got[bytes.Index(got, []byte(": "))+2:]
		if string(body) != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.in, body, tc.want)
		}
	}
}

// Events the source flagged (Raw is not JSON) still ship: json bodies carry
// the bytes, kv bodies say what happened and carry the bytes as one value;
// with LF framing no raw CR or LF reaches the wire.
func TestFlaggedEventsAndCRLF(t *testing.T) {
	raw := []byte("{\"process_exec\":{\"process\":{\"arguments\":\"line1\r\nline2\xff")
	ev := &event.Event{Raw: raw, Time: 1, Size: 70000, Type: "process_exec", Flags: event.Truncated}
	for _, body := range []string{BodyJSON, BodyKV} {
		for _, format := range []string{FormatRFC3164, FormatRFC5424} {
			b := newTestBuilder(t, func(c *Config) { c.Body, c.Format = body, format })
			framed, _ := b.frame(nil, "tetragon", ev)
			if n := bytes.Count(framed, []byte{'\n'}); n != 1 || framed[len(framed)-1] != '\n' || bytes.IndexByte(framed, '\r') >= 0 {
				t.Fatalf("%s/%s: raw CR/LF inside an LF-framed message: %q", body, format, framed)
			}
			msg := string(framed[:len(framed)-1])
			if body == BodyKV {
				p := parseMessage(t, format, msg, time.UTC)
				kv := parseKV(t, p.body)
				if kv[0] != [2]string{"siemship_flags", "truncated"} || kv[1] != [2]string{"siemship_size", "70000"} ||
					kv[2] != [2]string{"raw", strings.ToValidUTF8(string(raw), "\uFFFD")} {
					t.Fatalf("kv of a flagged event: %q", kv)
				}
			} else if !strings.HasSuffix(msg, `line1\r\nline2`+"\xff") {
				t.Fatalf("json body of a flagged event: %q", msg)
			}
			if format == FormatRFC5424 && !strings.Contains(msg, `flags="truncated"`) {
				t.Fatalf("no flags in the structured data: %q", msg)
			}
		}
	}
}

// A message over max_message_bytes is cut on a character boundary and
// ends with the marker.
func TestTruncation(t *testing.T) {
	b := newTestBuilder(t, func(c *Config) { c.MaxMessageBytes = 512 })
	raw := []byte(`{"a":"` + strings.Repeat("é", 1000) + `"}`)
	msg, cut := b.message(nil, "s", &event.Event{Raw: raw, Time: 1})
	if !cut || len(msg) > 512 || !bytes.HasSuffix(msg, []byte(truncMarker)) {
		t.Fatalf("cut %v len %d: %q", cut, len(msg), msg[max(0, len(msg)-40):])
	}
	if !strings.HasPrefix(strings.ToValidUTF8(string(msg), "?"), string(msg)) {
		t.Fatal("cut inside a UTF-8 sequence")
	}
}

// Both framings parse as a stream with go-syslog's RFC 6587 parsers and
// give every message back in order.
func TestFramingStreams(t *testing.T) {
	evs := genEvents(t, 300, 2)
	for _, framing := range []string{FramingLF, FramingOctet} {
		b := newTestBuilder(t, func(c *Config) { c.Format, c.Framing = FormatRFC5424, framing })
		var stream []byte
		for i := range evs {
			stream, _ = b.frame(stream, "tetragon", &evs[i])
		}
		var got []string
		emit := func(r *syslog.Result) {
			if r.Error != nil {
				t.Fatalf("%s: %v", framing, r.Error)
			}
			got = append(got, *r.Message.(*rfc5424.SyslogMessage).Message)
		}
		var p syslog.Parser
		if framing == FramingLF {
			p = nontransparent.NewParser(syslog.WithListener(emit))
		} else {
			p = octetcounting.NewParser(syslog.WithListener(emit))
		}
		p.Parse(bytes.NewReader(stream))
		if len(got) != len(evs) {
			t.Fatalf("%s: %d of %d messages", framing, len(got), len(evs))
		}
		for i := range evs {
			if got[i] != string(evs[i].Raw) {
				t.Fatalf("%s: message %d differs", framing, i)
			}
		}
	}
}

// severity_map picks the severity from an event field, case-insensitively.
func TestSeverityMap(t *testing.T) {
	b := newTestBuilder(t, func(c *Config) {
		c.SeverityField = "*.action"
		c.SeverityMap = map[string]string{"kprobe_action_sigkill": "crit"}
	})
	for _, tc := range []struct {
		raw  string
		want string
	}{
		{`{"process_kprobe":{"action":"KPROBE_ACTION_SIGKILL"}}`, "<130>"},
		{`{"process_kprobe":{"action":"KPROBE_ACTION_POST"}}`, "<134>"},
		{`{"process_exec":{}}`, "<134>"},
	} {
		msg, _ := b.message(nil, "s", &event.Event{Raw: []byte(tc.raw), Time: 1})
		if !bytes.HasPrefix(msg, []byte(tc.want)) {
			t.Errorf("%s: %.10s, want %s", tc.raw, msg, tc.want)
		}
	}
}

func TestValidate(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Transport, cfg.Framing, cfg.Ack, cfg.Facility, cfg.CAFile = "relp", "lf", "peer", "local9", "x"
	cfg.SeverityMap = map[string]string{"a": "loud"}
	v := validate.New("sinks.alog.")
	cfg.Validate(v)
	err := v.Err()
	for _, want := range []string{"sinks.alog.address", "sinks.alog.framing", "sinks.alog.ack", "sinks.alog.facility",
		"sinks.alog.severity_map.a", "sinks.alog.severity_map:", "sinks.alog.ca_file"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("no problem reported for %s: %v", want, err)
		}
	}
	cfg = DefaultConfig()
	cfg.Address, cfg.TLSServerName = "h:514", "h"
	v = validate.New("")
	cfg.Validate(v)
	if v.Err() == nil || !strings.Contains(v.Err().Error(), "transport") {
		t.Errorf("TLS keys with transport tcp accepted: %v", v.Err())
	}
}

// BenchmarkSyslogMessage builds framed messages of realistic Tetragon
// events, as the sink does per event.
func BenchmarkSyslogMessage(b *testing.B) {
	evs := genEvents(b, 2000, 3)
	_ = tetragongen.Seq
	for _, c := range []struct{ format, body, framing string }{
		{FormatRFC3164, BodyJSON, FramingLF},
		{FormatRFC5424, BodyJSON, FramingOctet},
		{FormatRFC3164, BodyKV, FramingLF},
		{FormatRFC5424, BodyKV, FramingOctet},
	} {
		b.Run(c.format+"-"+c.body+"-"+c.framing, func(b *testing.B) {
			bl := newTestBuilder(b, func(cfg *Config) { cfg.Format, cfg.Body, cfg.Framing = c.format, c.body, c.framing })
			buf := make([]byte, 0, 1<<20)
			b.ReportAllocs()
			i, n := 0, 0
			for b.Loop() {
				if len(buf) > 1<<20-128<<10 {
					buf = buf[:0]
				}
				before := len(buf)
				buf, _ = bl.frame(buf, "tetragon", &evs[i])
				n += len(buf) - before
				i = (i + 1) % len(evs)
			}
			sec := b.Elapsed().Seconds()
			b.ReportMetric(float64(b.N)/sec, "events/s")
			b.ReportMetric(float64(n)/sec/1e6, "MB/s")
		})
	}
}
