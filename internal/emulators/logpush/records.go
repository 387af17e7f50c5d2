// Package logpush emulates Cloudflare Logpush pushing to an HTTP
// destination: the validation request a job starts with, header_* URL
// parameters turned into headers, gzip NDJSON uploads of realistic records
// and retries with backoff on any answer but 2xx. It records which records
// were answered 200, so a test can check that every one of them reached the
// sink. See contracts/cloudflare-taegis-syslog.md.
package logpush

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"time"
)

// Datasets the generator writes.
const (
	HTTPRequests   = "http_requests"
	FirewallEvents = "firewall_events"
	GatewayDNS     = "gateway_dns"
)

// Timestamp formats of a Logpush job (output_options.timestamp_format).
const (
	UnixNano = "unixnano"
	Unix     = "unix"
	RFC3339  = "rfc3339"
)

// Generator writes records of one dataset as Logpush does: one JSON object
// per record, fields in alphabetical order (the dashboard's field list),
// every value random so that records differ the way real traffic does.
// Not safe for concurrent use.
type Generator struct {
	dataset string
	format  string
	rnd     *rand.Rand
	now     time.Time
	buf     []byte
}

// NewGenerator returns a generator of dataset records timed from start on,
// with the given timestamp_format, reproducible from seed.
func NewGenerator(dataset, format string, start time.Time, seed uint64) (*Generator, error) {
	switch dataset {
	case HTTPRequests, FirewallEvents, GatewayDNS:
	default:
		return nil, fmt.Errorf("dataset %q: the generator writes %s, %s or %s", dataset, HTTPRequests, FirewallEvents, GatewayDNS)
	}
	switch format {
	case UnixNano, Unix, RFC3339:
	default:
		return nil, fmt.Errorf("timestamp_format %q: want %s, %s or %s", format, UnixNano, Unix, RFC3339)
	}
	return &Generator{dataset: dataset, format: format, rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), now: start.UTC()}, nil
}

// Next returns a new record (a fresh slice, without newline).
func (g *Generator) Next() []byte {
	// Records of a batch are close in time, in arrival order, not strictly.
	g.now = g.now.Add(time.Duration(g.rnd.IntN(20_000_000)))
	w := &jw{b: g.buf[:0], g: g}
	switch g.dataset {
	case HTTPRequests:
		g.httpRequest(w)
	case FirewallEvents:
		g.firewallEvent(w)
	default:
		g.gatewayDNS(w)
	}
	g.buf = w.b
	return append([]byte(nil), w.b...)
}

// Time reads the event time a record of this generator carries, as written.
func (g *Generator) Time() time.Time { return g.now }

func (g *Generator) httpRequest(w *jw) {
	host := pick(g, hosts)
	path := g.path()
	method := pick(g, methods)
	status := pick(g, statuses)
	start := g.now
	end := start.Add(time.Duration(1+g.rnd.IntN(900)) * time.Millisecond)
	w.open()
	w.num("BotScore", int64(1+g.rnd.IntN(99)))
	w.str("CacheCacheStatus", pick(g, cacheStatuses))
	w.num("CacheResponseBytes", int64(g.rnd.IntN(2_000_000)))
	w.num("ClientASN", int64(pick(g, asns)))
	w.str("ClientCountry", pick(g, countries))
	w.str("ClientDeviceType", pick(g, []string{"desktop", "mobile", "tablet"}))
	w.str("ClientIP", g.ip())
	w.num("ClientRequestBytes", int64(200+g.rnd.IntN(8000)))
	w.str("ClientRequestHost", host)
	w.str("ClientRequestMethod", method)
	w.str("ClientRequestPath", path)
	w.str("ClientRequestProtocol", pick(g, []string{"HTTP/1.1", "HTTP/2", "HTTP/3"}))
	w.str("ClientRequestReferer", "https://"+pick(g, hosts)+g.path())
	w.str("ClientRequestURI", path+g.query())
	w.str("ClientRequestUserAgent", pick(g, userAgents))
	w.str("EdgeColoCode", pick(g, colos))
	w.time("EdgeEndTimestamp", end)
	w.num("EdgeResponseBytes", int64(300+g.rnd.IntN(500_000)))
	w.str("EdgeResponseContentType", pick(g, []string{"text/html", "application/json", "image/webp", "text/css", "application/javascript"}))
	w.num("EdgeResponseStatus", int64(status))
	w.time("EdgeStartTimestamp", start)
	w.num("OriginResponseDurationMs", int64(g.rnd.IntN(3000)))
	w.num("OriginResponseStatus", int64(status))
	w.str("RayID", g.hex(16))
	w.str("SecurityAction", pick(g, []string{"", "", "", "block", "managed_challenge", "log"}))
	w.num("WAFAttackScore", int64(1+g.rnd.IntN(99)))
	w.str("ZoneName", zoneOf(host))
	w.close()
}

func (g *Generator) firewallEvent(w *jw) {
	host := pick(g, hosts)
	w.open()
	w.str("Action", pick(g, []string{"block", "challenge", "managed_challenge", "js_challenge", "log", "skip"}))
	w.num("ClientASN", int64(pick(g, asns)))
	w.str("ClientASNDescription", pick(g, asnNames))
	w.str("ClientCountry", pick(g, countries))
	w.str("ClientIP", g.ip())
	w.str("ClientRequestHost", host)
	w.str("ClientRequestMethod", pick(g, methods))
	w.str("ClientRequestPath", g.path())
	w.str("ClientRequestProtocol", pick(g, []string{"HTTP/1.1", "HTTP/2"}))
	w.str("ClientRequestQuery", g.query())
	w.str("ClientRequestUserAgent", pick(g, userAgents))
	w.time("Datetime", g.now)
	w.str("Description", pick(g, ruleDescriptions))
	w.str("EdgeColoCode", pick(g, colos))
	w.num("EdgeResponseStatus", int64(pick(g, []int{403, 403, 429, 503, 200})))
	w.str("Kind", "firewall")
	w.num("MatchIndex", int64(g.rnd.IntN(4)))
	w.raw("Metadata", fmt.Sprintf(`{"ruleset_version":"%d","type":"customer"}`, 1+g.rnd.IntN(40)))
	w.str("RayID", g.hex(16))
	w.str("RuleID", g.hex(32))
	w.str("Source", pick(g, []string{"firewallCustom", "firewallManaged", "rateLimit", "bic", "hot", "uaBlock"}))
	w.close()
}

func (g *Generator) gatewayDNS(w *jw) {
	name := pick(g, []string{"www", "api", "cdn", "mail", "login", "static", "telemetry"}) + "." + pick(g, dnsDomains)
	qtype := pick(g, []struct {
		n    int
		name string
	}{{1, "A"}, {28, "AAAA"}, {5, "CNAME"}, {16, "TXT"}, {65, "HTTPS"}})
	w.open()
	w.str("AccountID", accountID)
	w.str("ColoCode", pick(g, colos))
	w.time("Datetime", g.now)
	w.str("DeviceID", g.uuid())
	w.str("DeviceName", fmt.Sprintf("laptop-%04d", g.rnd.IntN(3000)))
	w.str("DstIP", pick(g, []string{"172.64.36.1", "172.64.36.2", "2a06:98c1:54::1"}))
	w.num("DstPort", 53)
	w.str("Email", fmt.Sprintf("%s.%s@example.com", pick(g, firstNames), pick(g, lastNames)))
	w.str("Location", pick(g, []string{"Tokyo HQ", "Osaka", "Remote", "London office"}))
	w.raw("MatchedCategoryIDs", fmt.Sprintf("[%d]", pick(g, categories)))
	w.str("Policy", pick(g, []string{"", "Block malware", "Block gambling", "Allow corporate"}))
	w.str("PolicyID", g.uuid())
	w.str("Protocol", pick(g, []string{"https", "udp", "tls"}))
	w.raw("QueryCategoryIDs", fmt.Sprintf("[%d,%d]", pick(g, categories), pick(g, categories)))
	w.str("QueryName", name)
	w.num("QuerySize", int64(30+g.rnd.IntN(60)))
	w.num("QueryType", int64(qtype.n))
	w.str("QueryTypeName", qtype.name)
	w.num("RCode", int64(pick(g, []int{0, 0, 0, 0, 3, 2})))
	w.raw("ResolvedIPs", `["`+g.ip()+`"]`)
	w.num("ResolverDecision", int64(pick(g, []int{1, 1, 1, 2, 3, 9})))
	w.str("SrcIP", g.ip())
	w.num("SrcPort", int64(1024+g.rnd.IntN(64000)))
	w.str("TimeZone", "Asia/Tokyo")
	w.str("UserID", g.uuid())
	w.close()
}

func (g *Generator) ip() string {
	if g.rnd.IntN(8) == 0 {
		var a [16]byte
		a[0], a[1] = 0x20, 0x01
		for i := 2; i < 16; i++ {
			a[i] = byte(g.rnd.UintN(256))
		}
		return netip.AddrFrom16(a).String()
	}
	return netip.AddrFrom4([4]byte{byte(1 + g.rnd.IntN(222)), byte(g.rnd.UintN(256)), byte(g.rnd.UintN(256)), byte(1 + g.rnd.IntN(254))}).String()
}

func (g *Generator) hex(n int) string {
	const digits = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = digits[g.rnd.IntN(16)]
	}
	return string(b)
}

func (g *Generator) uuid() string {
	h := g.hex(32)
	return h[:8] + "-" + h[8:12] + "-4" + h[13:16] + "-a" + h[17:20] + "-" + h[20:]
}

func (g *Generator) path() string {
	p := "/" + pick(g, pathWords)
	for range g.rnd.IntN(4) {
		p += "/" + pick(g, pathWords)
	}
	if g.rnd.IntN(3) == 0 {
		p += "/" + strconv.Itoa(g.rnd.IntN(100000))
	}
	return p
}

func (g *Generator) query() string {
	if g.rnd.IntN(2) == 0 {
		return ""
	}
	return "?" + pick(g, []string{"q", "id", "page", "utm_source", "ref"}) + "=" + g.hex(1+g.rnd.IntN(12))
}

func pick[T any](g *Generator, xs []T) T { return xs[g.rnd.IntN(len(xs))] }

func zoneOf(host string) string {
	dots := 0
	for i := len(host) - 1; i >= 0; i-- {
		if host[i] == '.' {
			if dots++; dots == 2 {
				return host[i+1:]
			}
		}
	}
	return host
}

// jw appends a JSON object field by field.
type jw struct {
	b     []byte
	g     *Generator
	first bool
}

func (w *jw) open()  { w.b = append(w.b, '{'); w.first = true }
func (w *jw) close() { w.b = append(w.b, '}') }

func (w *jw) key(k string) {
	if !w.first {
		w.b = append(w.b, ',')
	}
	w.first = false
	w.b = append(w.b, '"')
	w.b = append(w.b, k...)
	w.b = append(w.b, '"', ':')
}

func (w *jw) str(k, v string) {
	w.key(k)
	w.b = appendJSONString(w.b, v)
}

func (w *jw) num(k string, v int64) {
	w.key(k)
	w.b = strconv.AppendInt(w.b, v, 10)
}

func (w *jw) raw(k, v string) {
	w.key(k)
	w.b = append(w.b, v...)
}

// time writes t in the job's timestamp_format: unixnano and unix are
// numbers, rfc3339 a string with whole seconds, as Logpush writes them.
func (w *jw) time(k string, t time.Time) {
	w.key(k)
	switch w.g.format {
	case UnixNano:
		w.b = strconv.AppendInt(w.b, t.UnixNano(), 10)
	case Unix:
		w.b = strconv.AppendInt(w.b, t.Unix(), 10)
	default:
		w.b = append(w.b, '"')
		w.b = t.UTC().AppendFormat(w.b, time.RFC3339)
		w.b = append(w.b, '"')
	}
}

func appendJSONString(b []byte, s string) []byte {
	const hexd = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hexd[c>>4], hexd[c&15])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

const accountID = "e1836771179f98aabb828da5ea69a111"

var (
	hosts = []string{"www.example.com", "api.example.com", "shop.example.co.jp", "static.example.net",
		"login.example.com", "blog.example.org", "cdn.example.co.jp", "m.example.com"}
	methods       = []string{"GET", "GET", "GET", "GET", "POST", "POST", "PUT", "DELETE", "HEAD", "OPTIONS"}
	statuses      = []int{200, 200, 200, 200, 200, 204, 301, 302, 304, 400, 401, 403, 404, 404, 429, 500, 502, 503}
	cacheStatuses = []string{"hit", "hit", "miss", "dynamic", "expired", "revalidated", "bypass", "none"}
	asns          = []int{2516, 4713, 17676, 2497, 7922, 15169, 16509, 8075, 13335, 3320, 4134}
	asnNames      = []string{"KDDI KDDI CORPORATION", "OCN NTT Communications Corporation", "GIGAINFRA SoftBank Corp.",
		"GOOGLE", "AMAZON-02", "MICROSOFT-CORP-MSN-AS-BLOCK", "COMCAST-7922", "DTAG Internet service provider operations"}
	countries  = []string{"jp", "jp", "jp", "us", "us", "de", "gb", "fr", "cn", "kr", "sg", "br", "in", "nl"}
	colos      = []string{"NRT", "KIX", "HND", "SJC", "LAX", "FRA", "LHR", "CDG", "SIN", "ICN", "AMS"}
	pathWords  = []string{"api", "v1", "v2", "users", "login", "cart", "checkout", "products", "images", "static", "assets", "search", "wp-admin", "wp-login.php", ".env", "graphql", "health", "商品", "検索"}
	userAgents = []string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
		"curl/8.5.0", "python-requests/2.31.0", "Go-http-client/2.0", "Googlebot/2.1 (+http://www.google.com/bot.html)",
		`sqlmap/1.7 (https://sqlmap.org) "quoted"`,
	}
	ruleDescriptions = []string{"Block known bad ASNs", "SQLi - UNION SELECT", "XSS - script tag", "Rate limit login",
		"Managed rule 100173", "Block .env probes", "Country block"}
	dnsDomains = []string{"example.com", "corp.example.co.jp", "github.com", "slack.com", "badsite.example", "zoom.us", "microsoft.com"}
	categories = []int{2, 7, 9, 26, 28, 68, 80, 117, 128, 155, 163}
	firstNames = []string{"taro", "hanako", "ken", "yuki", "alice", "bob", "mei"}
	lastNames  = []string{"sato", "suzuki", "takahashi", "tanaka", "smith", "jones"}
)
