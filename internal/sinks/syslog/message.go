package syslog

import (
	"bytes"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/tidwall/gjson"

	"github.com/siemship/siemship/internal/event"
	"github.com/siemship/siemship/internal/jsonstr"
)

// truncMarker ends a message cut to max_message_bytes.
const truncMarker = "...[truncated by siemship]"

// builder turns events into syslog messages by appending bytes: no maps,
// no per-event allocations once its buffers have grown. Not safe for
// concurrent use.
type builder struct {
	rfc5424  bool
	kv       bool
	framing  string // FramingLF, FramingOctet, or "" (RELP: unframed)
	facility int
	severity int // default
	sevField string
	sevRules []sevRule
	host     []byte // sanitised
	app      []byte // sanitised
	sdID     string
	loc      *time.Location
	max      int

	key     []byte // kv: the current flattened key
	scratch []byte // octet framing: the message before its length is known
}

type sevRule struct {
	value string
	sev   int
}

func newBuilder(cfg *Config, framing string) (*builder, error) {
	loc, err := time.LoadLocation(cfg.Timezone)
	if err != nil {
		return nil, err
	}
	b := &builder{
		rfc5424:  cfg.Format == FormatRFC5424,
		kv:       cfg.Body == BodyKV,
		framing:  framing,
		facility: facilities[cfg.Facility],
		severity: severities[cfg.Severity],
		sevField: cfg.SeverityField,
		sdID:     cfg.SDID,
		loc:      loc,
		max:      int(cfg.MaxMessageBytes),
	}
	for v, s := range cfg.SeverityMap {
		b.sevRules = append(b.sevRules, sevRule{value: v, sev: severities[strings.ToLower(s)]})
	}
	if b.rfc5424 {
		// RFC 5424 §6: HOSTNAME ≤ 255 and APP-NAME ≤ 48 PRINTUSASCII.
		b.host = sanitize(nil, cfg.hostname(), printUSASCII, 255, "-")
		b.app = sanitize(nil, cfg.AppName, printUSASCII, 48, "-")
	} else {
		// RFC 3164 §4.1.2/4.1.3: HOST without spaces, TAG ≤ 32 alphanumerics.
		b.host = sanitize(nil, cfg.hostname(), printUSASCII, 255, "localhost")
		b.app = sanitize(nil, cfg.AppName, alnum, 32, "siemship")
	}
	return b, nil
}

func printUSASCII(c byte) bool { return c > ' ' && c < 0x7f }
func alnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
func sdNameOK(c byte) bool { return printUSASCII(c) && c != '=' && c != ']' && c != '"' && c != ' ' }

// sanitize appends the bytes of s that ok accepts, at most max of them, or
// def when none are left.
func sanitize(dst []byte, s string, ok func(byte) bool, max int, def string) []byte {
	start := len(dst)
	for i := 0; i < len(s) && len(dst)-start < max; i++ {
		if ok(s[i]) {
			dst = append(dst, s[i])
		}
	}
	if len(dst) == start {
		dst = append(dst, def...)
	}
	return dst
}

// frame appends ev as one framed message (for RELP: unframed) and reports
// whether it was cut to the size limit.
func (b *builder) frame(dst []byte, source string, ev *event.Event) ([]byte, bool) {
	switch b.framing {
	case FramingOctet:
		var cut bool
		b.scratch, cut = b.message(b.scratch[:0], source, ev)
		dst = strconv.AppendInt(dst, int64(len(b.scratch)), 10)
		dst = append(dst, ' ')
		return append(dst, b.scratch...), cut
	case FramingLF:
		dst, cut := b.message(dst, source, ev)
		return append(dst, '\n'), cut
	default:
		return b.message(dst, source, ev)
	}
}

// message appends one syslog message without framing.
func (b *builder) message(dst []byte, source string, ev *event.Event) ([]byte, bool) {
	start := len(dst)
	dst = append(dst, '<')
	dst = strconv.AppendInt(dst, int64(b.facility*8+b.sev(ev)), 10)
	dst = append(dst, '>')
	t := time.Now()
	if ev.Time != 0 {
		t = time.UnixMilli(ev.Time)
	}
	t = t.In(b.loc)
	if b.rfc5424 {
		dst = append(dst, '1', ' ')
		dst = t.AppendFormat(dst, "2006-01-02T15:04:05.000Z07:00")
		dst = append(dst, ' ')
		dst = append(dst, b.host...)
		dst = append(dst, ' ')
		dst = append(dst, b.app...)
		dst = append(dst, " - "...) // PROCID: the agent's pid means nothing to a SIEM
		dst = sanitize(dst, ev.Type, printUSASCII, 32, "-")
		dst = append(dst, " ["...)
		dst = append(dst, b.sdID...)
		dst = appendParam(dst, "source", source)
		dst = appendParam(dst, "type", ev.Type)
		if ev.Flags != 0 {
			dst = append(dst, ` flags="`...)
			dst = appendFlags(dst, ev.Flags)
			dst = append(dst, '"')
		}
		dst = append(dst, "] "...)
	} else {
		dst = t.AppendFormat(dst, time.Stamp)
		dst = append(dst, ' ')
		dst = append(dst, b.host...)
		dst = append(dst, ' ')
		dst = append(dst, b.app...)
		dst = append(dst, ':', ' ')
	}
	switch {
	case ev.Flags&(event.Truncated|event.Malformed) != 0 && b.kv:
		// Raw is not JSON: say so, and carry the bytes as one value.
		dst = append(dst, `siemship_flags="`...)
		dst = appendFlags(dst, ev.Flags)
		dst = append(dst, `" siemship_size="`...)
		dst = strconv.AppendInt(dst, int64(ev.Size), 10)
		dst = append(dst, `" raw=`...)
		dst = jsonstr.Append(dst, ev.Raw)
	case b.kv:
		dst = b.appendKV(dst, ev.Raw)
	default:
		// The event as shipped. Compact JSON has no raw CR or LF, but a
		// malformed line or a CRLF file may: with LF framing they would
		// split the message, so they are written as \r and \n.
		dst = appendNoCRLF(dst, ev.Raw, b.framing == FramingLF)
	}
	if len(dst)-start <= b.max {
		return dst, false
	}
	cut := start + b.max - len(truncMarker)
	for cut > start && !utf8.RuneStart(dst[cut]) {
		cut-- // never split a UTF-8 sequence
	}
	return append(dst[:cut], truncMarker...), true
}

// sev returns the severity of ev.
func (b *builder) sev(ev *event.Event) int {
	if b.sevField == "" || ev.Flags&(event.Truncated|event.Malformed) != 0 {
		return b.severity
	}
	r := gjson.Get(unsafeString(ev.Raw), b.sevField)
	if !r.Exists() {
		return b.severity
	}
	v := r.Str
	if r.Type != gjson.String {
		v = r.Raw
	}
	for _, rule := range b.sevRules {
		if strings.EqualFold(rule.value, v) {
			return rule.sev
		}
	}
	return b.severity
}

// appendParam appends ` name="value"`, escaping what RFC 5424 §6.3.3
// requires (", \ and ]) and dropping control characters.
func appendParam(dst []byte, name, value string) []byte {
	dst = append(dst, ' ')
	dst = append(dst, name...)
	dst = append(dst, '=', '"')
	for i := 0; i < len(value); i++ {
		switch c := value[i]; {
		case c == '"' || c == '\\' || c == ']':
			dst = append(dst, '\\', c)
		case c < ' ' || c == 0x7f:
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}

func appendFlags(dst []byte, f event.Flags) []byte {
	start := len(dst)
	for _, n := range []struct {
		f    event.Flags
		name string
	}{{event.Truncated, "truncated"}, {event.Malformed, "malformed"}, {event.TimeGuessed, "time_guessed"}} {
		if f&n.f != 0 {
			if len(dst) > start {
				dst = append(dst, ',')
			}
			dst = append(dst, n.name...)
		}
	}
	return dst
}

// appendNoCRLF appends src; with escape, raw CR and LF become \r and \n.
func appendNoCRLF(dst, src []byte, escape bool) []byte {
	if !escape {
		return append(dst, src...)
	}
	for {
		// Two vectorised scans beat one byte loop on events of kilobytes.
		i, j := bytes.IndexByte(src, '\n'), bytes.IndexByte(src, '\r')
		if i < 0 || (j >= 0 && j < i) {
			i = j
		}
		if i < 0 {
			return append(dst, src...)
		}
		dst = append(dst, src[:i]...)
		if src[i] == '\r' {
			dst = append(dst, '\\', 'r')
		} else {
			dst = append(dst, '\\', 'n')
		}
		src = src[i+1:]
	}
}

// unsafeString views b as a string for read-only lookups that do not
// outlive b.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// unsafeBytes views s as bytes that nobody may modify.
func unsafeBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }
