package syslog

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/siemship/siemship/internal/bytesize"
	"github.com/siemship/siemship/internal/validate"
)

// Transports, framings, formats, bodies and ack modes the sink speaks.
const (
	TransportTCP  = "tcp"
	TransportTLS  = "tls"
	TransportRELP = "relp"

	FramingLF    = "lf"    // RFC 6587 non-transparent framing: message + LF
	FramingOctet = "octet" // RFC 6587 octet counting: LEN SP message

	FormatRFC3164 = "rfc3164"
	FormatRFC5424 = "rfc5424"

	BodyJSON = "json" // the event as shipped
	BodyKV   = "kv"   // key="json-encoded value" pairs, nested keys joined with '.'

	// AckWritten: an event counts as delivered once written to the socket.
	// What the kernel had not sent when the connection breaks is lost
	// without notice.
	AckWritten = "written"
	// AckPeer: an event counts as delivered once the peer's TCP stack
	// acknowledged every byte of it (the socket's send queue drained past
	// it); what was not acknowledged is sent again after a reconnect. The
	// receiver may still lose what sat in its own buffers when it crashes.
	AckPeer = "peer"
)

// Config configures one syslog sink. Keys are relative to the sink
// (sinks.<name>.<key>); DefaultConfig gives the defaults.
type Config struct {
	// Address is host:port of the receiver.
	Address string `mapstructure:"address"`
	// Transport is tcp, tls or relp. relp runs over TLS when any of the TLS
	// keys (ca_file, cert_file, key_file, tls_server_name) is set.
	Transport string `mapstructure:"transport"`
	// Framing is lf or octet (RFC 6587); empty means octet with tls (RFC
	// 5425 requires it) and lf with tcp. RELP frames carry their length and
	// take no framing.
	Framing string `mapstructure:"framing"`
	// Format is rfc3164 or rfc5424.
	Format string `mapstructure:"format"`
	// Body is json (the event's bytes as shipped) or kv.
	Body string `mapstructure:"body"`
	// Timezone is the IANA zone of message timestamps (RFC 3164 carries no
	// zone, so receivers assume their own), e.g. Asia/Tokyo.
	Timezone string `mapstructure:"timezone"`
	// Hostname is HOST/HOSTNAME; empty means the NODE_NAME environment
	// variable (the downward API), else the host name.
	Hostname string `mapstructure:"hostname"`
	// AppName is the RFC 3164 TAG and RFC 5424 APP-NAME, sanitised to what
	// the RFC allows.
	AppName string `mapstructure:"app_name"`
	// Facility is a facility name: kern, user, ..., local0 ... local7.
	Facility string `mapstructure:"facility"`
	// Severity is the severity of events SeverityMap does not match.
	Severity string `mapstructure:"severity"`
	// SeverityField is a path into the event (gjson syntax, e.g.
	// "*.action" for Tetragon's policy action); the field's value selects
	// the severity through SeverityMap. Values match case-insensitively,
	// because configuration loaders lower-case map keys.
	SeverityField string            `mapstructure:"severity_field"`
	SeverityMap   map[string]string `mapstructure:"severity_map"`
	// SDID is the RFC 5424 structured-data element ID carrying the event's
	// source and type. 32473 is the example enterprise number of RFC 5612.
	SDID string `mapstructure:"sd_id"`
	// MaxMessageBytes bounds one message (without framing); longer ones
	// are cut, marked and counted. rsyslog accepts 8 KiB by default
	// ($MaxMessageSize): raise it there, or lower this.
	MaxMessageBytes bytesize.Size `mapstructure:"max_message_bytes"`
	// CAFile is a PEM bundle added to the system roots; the server
	// certificate is always verified.
	CAFile string `mapstructure:"ca_file"`
	// CertFile and KeyFile are a PEM client certificate and its key.
	CertFile string `mapstructure:"cert_file"`
	KeyFile  string `mapstructure:"key_file"`
	// TLSServerName overrides the name checked in the server certificate
	// (default: the host of Address).
	TLSServerName string `mapstructure:"tls_server_name"`
	// Ack is written (default) or peer, for tcp and tls. RELP always waits
	// for the receiver's own acknowledgement; leave Ack empty with relp.
	Ack string `mapstructure:"ack"`
	// DialTimeout bounds connecting (and the TLS handshake and RELP open).
	DialTimeout time.Duration `mapstructure:"dial_timeout"`
	// WriteTimeout bounds one write; AckTimeout bounds how long the oldest
	// unacknowledged message may wait for its RELP answer or, with ack
	// peer, for the peer's TCP acknowledgement. Past either the connection
	// counts as dead and is replaced.
	WriteTimeout time.Duration `mapstructure:"write_timeout"`
	AckTimeout   time.Duration `mapstructure:"ack_timeout"`
	// RetryInitial and RetryMax bound the reconnect backoff (full jitter).
	RetryInitial time.Duration `mapstructure:"retry_initial"`
	RetryMax     time.Duration `mapstructure:"retry_max"`
	// RELPWindow is the number of RELP frames sent and not yet answered.
	RELPWindow int `mapstructure:"relp_window"`
	// PeerWindowBytes bounds the bytes written and not yet acknowledged by
	// the peer with ack: peer (they are kept for a resend).
	PeerWindowBytes bytesize.Size `mapstructure:"peer_window_bytes"`
}

// DefaultConfig returns the defaults: RFC 3164 over plain TCP with LF
// framing, the event's JSON as the message, local0.info, UTC.
func DefaultConfig() Config {
	return Config{
		Transport:       TransportTCP,
		Format:          FormatRFC3164,
		Body:            BodyJSON,
		Timezone:        "UTC",
		AppName:         "siemship",
		Facility:        "local0",
		Severity:        "info",
		SDID:            "siemship@32473",
		MaxMessageBytes: 64 << 10,
		DialTimeout:     10 * time.Second,
		WriteTimeout:    30 * time.Second,
		AckTimeout:      30 * time.Second,
		RetryInitial:    500 * time.Millisecond,
		RetryMax:        30 * time.Second,
		RELPWindow:      128, // librelp's default
		PeerWindowBytes: 8 << 20,
	}
}

// minMessageBytes is the size RFC 5424 (§6.1) requires every receiver to
// accept; below it a header and the truncation marker leave no room.
const minMessageBytes = 480

// Validate records every problem of c in v, with keys relative to the sink.
func (c *Config) Validate(v *validate.Errors) {
	if v.Required("address", c.Address, "siem.example.com:514") {
		if host, port, err := net.SplitHostPort(c.Address); err != nil || host == "" || port == "" {
			v.Bad("address", "must be host:port, e.g. siem.example.com:514", fmt.Sprintf("%q", c.Address))
		}
	}
	v.OneOf("transport", c.Transport, TransportTCP, TransportTLS, TransportRELP)
	v.OneOf("framing", c.Framing, "", FramingLF, FramingOctet)
	if c.Transport == TransportRELP && c.Framing != "" {
		v.Add("framing", "does not apply to relp (RELP frames carry their length): leave it unset")
	}
	v.OneOf("format", c.Format, FormatRFC3164, FormatRFC5424)
	v.OneOf("body", c.Body, BodyJSON, BodyKV)
	if _, err := time.LoadLocation(c.Timezone); err != nil || c.Timezone == "" {
		v.Bad("timezone", "must be an IANA time zone such as UTC or Asia/Tokyo", fmt.Sprintf("%q", c.Timezone))
	}
	if _, ok := facilities[c.Facility]; !ok {
		v.Bad("facility", "must be a facility name such as user, daemon, auth or local0 … local7", fmt.Sprintf("%q", c.Facility))
	}
	if _, ok := severities[c.Severity]; !ok {
		v.Bad("severity", "must be a severity name: emerg, alert, crit, err, warning, notice, info or debug", fmt.Sprintf("%q", c.Severity))
	}
	for val, sev := range c.SeverityMap {
		if _, ok := severities[strings.ToLower(sev)]; !ok {
			v.Bad("severity_map."+val, "must be a severity name: emerg, alert, crit, err, warning, notice, info or debug", fmt.Sprintf("%q", sev))
		}
	}
	if len(c.SeverityMap) > 0 && c.SeverityField == "" {
		v.Add("severity_map", "needs severity_field, the event field whose value it maps, e.g. \"*.action\"")
	}
	if c.SDID == "" || len(c.SDID) > 32 || string(sanitize(nil, c.SDID, sdNameOK, 32, "")) != c.SDID || !strings.Contains(c.SDID, "@") {
		v.Bad("sd_id", "must be name@enterprise-number with at most 32 printable characters and no space, =, ] or \"", fmt.Sprintf("%q", c.SDID))
	}
	v.Between("max_message_bytes", int64(c.MaxMessageBytes), minMessageBytes, 16<<20)
	tlsSet := c.CAFile != "" || c.CertFile != "" || c.KeyFile != "" || c.TLSServerName != ""
	if c.Transport == TransportTCP && tlsSet {
		v.Add("transport", "is tcp but TLS keys (ca_file, cert_file, key_file, tls_server_name) are set: use transport: tls, or remove them")
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		v.Add("cert_file", "cert_file and key_file must be set together (a client certificate and its key)")
	}
	for key, p := range map[string]string{"ca_file": c.CAFile, "cert_file": c.CertFile, "key_file": c.KeyFile} {
		if p != "" {
			if _, err := os.Stat(p); err != nil {
				v.Add(key, fmt.Sprintf("cannot read %s: %v", p, err))
			}
		}
	}
	switch c.Transport {
	case TransportRELP:
		if c.Ack != "" {
			v.Add("ack", "does not apply to relp: RELP always waits for the receiver's acknowledgement; leave it unset")
		}
		v.Between("relp_window", int64(c.RELPWindow), 1, 1<<16)
	default:
		v.OneOf("ack", c.Ack, "", AckWritten, AckPeer)
		if c.Ack == AckPeer && !peerAckSupported {
			v.Add("ack", "peer needs Linux (the socket send queue is read with SIOCOUTQ), this is "+runtime.GOOS)
		}
		if c.Ack == AckPeer {
			v.Between("peer_window_bytes", int64(c.PeerWindowBytes), int64(c.MaxMessageBytes), 1<<30)
		}
	}
	v.Positive("dial_timeout", c.DialTimeout)
	v.Positive("write_timeout", c.WriteTimeout)
	v.Positive("ack_timeout", c.AckTimeout)
	v.Positive("retry_initial", c.RetryInitial)
	v.Positive("retry_max", c.RetryMax)
	if c.RetryMax < c.RetryInitial {
		v.Bad("retry_max", "must not be below retry_initial", c.RetryMax)
	}
}

// framing returns the effective framing.
func (c *Config) framing() string {
	if c.Framing != "" {
		return c.Framing
	}
	if c.Transport == TransportTLS {
		return FramingOctet
	}
	return FramingLF
}

// ack returns the effective ack mode for tcp and tls.
func (c *Config) ack() string {
	if c.Ack == "" {
		return AckWritten
	}
	return c.Ack
}

// useTLS says whether the connection is TLS.
func (c *Config) useTLS() bool {
	return c.Transport == TransportTLS ||
		(c.Transport == TransportRELP && (c.CAFile != "" || c.CertFile != "" || c.KeyFile != "" || c.TLSServerName != ""))
}

// hostname returns the configured host name, else NODE_NAME, else the
// host's name.
func (c *Config) hostname() string {
	if c.Hostname != "" {
		return c.Hostname
	}
	if n := os.Getenv("NODE_NAME"); n != "" {
		return n
	}
	if n, err := os.Hostname(); err == nil {
		return n
	}
	return ""
}
