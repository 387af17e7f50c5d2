package syslog

import (
	"testing"
	"time"

	"github.com/siemship/siemship/internal/testenv/syslogd"
)

// Every transport, framing, format and body against the real receivers:
// every event arrives once, in order, parsed by go-syslog with the
// expected host, app, zone and a body that gives the event back.
func TestRealReceivers(t *testing.T) {
	pki := syslogd.NewPKI(t)
	for _, tc := range []struct {
		name, kind                       string
		transport, framing, format, body string
		ack                              string
	}{
		{"rsyslog-imtcp-lf-rfc3164-kv", syslogd.RsyslogTCP, TransportTCP, FramingLF, FormatRFC3164, BodyKV, AckWritten},
		{"rsyslog-imtcp-octet-rfc5424-json", syslogd.RsyslogTCP, TransportTCP, FramingOctet, FormatRFC5424, BodyJSON, AckPeer},
		{"rsyslog-gtls-octet-rfc5424-kv", syslogd.RsyslogTLS, TransportTLS, "", FormatRFC5424, BodyKV, AckPeer},
		{"rsyslog-imrelp-rfc3164-json", syslogd.RsyslogRELP, TransportRELP, "", FormatRFC3164, BodyJSON, ""},
		{"rsyslog-imrelp-rfc5424-kv", syslogd.RsyslogRELP, TransportRELP, "", FormatRFC5424, BodyKV, ""},
		{"syslog-ng-network-lf-rfc3164-kv", syslogd.SyslogNGNetwork, TransportTCP, FramingLF, FormatRFC3164, BodyKV, AckWritten},
		{"syslog-ng-syslog-octet-rfc5424-json", syslogd.SyslogNGSyslog, TransportTCP, FramingOctet, FormatRFC5424, BodyJSON, AckWritten},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rcv := syslogd.Start(t, syslogd.Options{Kind: tc.kind, TLS: pki})
			cfg := testConfig(rcv.Addr)
			cfg.Transport, cfg.Framing, cfg.Format, cfg.Body, cfg.Ack = tc.transport, tc.framing, tc.format, tc.body, tc.ack
			cfg.Timezone = "Asia/Tokyo"
			if tc.transport == TransportTLS {
				cfg.CAFile, cfg.CertFile, cfg.KeyFile, cfg.TLSServerName = pki.CAFile, pki.ClientCert, pki.ClientKey, "localhost"
			}
			const n = 1500
			evs := genEvents(t, n, 7)
			r := startRun(t, cfg, n)
			go r.send(evs, 0, n) // owned: ends when the sink took every batch
			r.waitAcked(t, n, 30*time.Second)
			r.finish(t, 10*time.Second)
			msgs := rcv.WaitMessages(n, 30*time.Second)
			if len(msgs) != n {
				t.Fatalf("%d messages for %d events", len(msgs), n)
			}
			jst, _ := time.LoadLocation("Asia/Tokyo")
			for i, m := range msgs {
				p := parseMessage(t, tc.format, m, jst)
				if p.host != "node-a" || p.app != "siemship" || p.facility != 16 || p.sev != 6 {
					t.Fatalf("message %d: host %q app %q facility %d severity %d", i, p.host, p.app, p.facility, p.sev)
				}
				want := time.UnixMilli(evs[i].Time).In(jst)
				if p.ts.In(jst).Format(time.Stamp) != want.Format(time.Stamp) {
					t.Fatalf("message %d: time %s, want %s JST", i, p.ts.In(jst).Format(time.Stamp), want.Format(time.Stamp))
				}
				checkBody(t, tc.body, p.body, evs[i].Raw)
			}
			if got := r.metric("siemship_syslog_messages_acked_total"); got != n {
				t.Errorf("messages_acked_total %v, want %d", got, n)
			}
			if ok, why := r.s.Ready(); !ok {
				t.Errorf("not ready after delivering: %s", why)
			}
		})
	}
}

// Closing the input while batches are still queued ends Run once they are
// delivered (a close seen while draining the input once left Run waiting).
func TestCloseWhileQueued(t *testing.T) {
	for _, kind := range []string{syslogd.RsyslogTCP, syslogd.RsyslogRELP} {
		t.Run(kind, func(t *testing.T) {
			rcv := syslogd.Start(t, syslogd.Options{Kind: kind})
			cfg := testConfig(rcv.Addr)
			if kind == syslogd.RsyslogRELP {
				cfg.Transport = TransportRELP
			}
			const n = 300
			r := startRun(t, cfg, n)
			r.send(genEvents(t, n, 5), 0, n)
			r.finish(t, 20*time.Second)
			if got := r.nacked.Load(); got != n {
				t.Fatalf("%d of %d acknowledged when Run returned", got, n)
			}
			rcv.WaitMessages(n, 20*time.Second)
		})
	}
}
