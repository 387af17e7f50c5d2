package logpush

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/siemship/siemship/internal/event"
	"github.com/siemship/siemship/internal/validate"
)

const ms2022 = int64(1653485126000) // 2022-05-25T13:25:26Z

func TestRecordTimes(t *testing.T) {
	cases := []struct {
		name, dataset, timeField, raw string
		want                          int64
		flags                         event.Flags
	}{
		{"http rfc3339", "http_requests", "", `{"EdgeStartTimestamp":"2022-05-25T13:25:26Z"}`, ms2022, 0},
		{"http unixnano", "http_requests", "", `{"EdgeStartTimestamp":1653485126000000000}`, ms2022, 0},
		{"http unix", "http_requests", "", `{"EdgeStartTimestamp":1653485126}`, ms2022, 0},
		{"http unix as string", "http_requests", "", `{"EdgeStartTimestamp":"1653485126"}`, ms2022, 0},
		{"rfc3339 fraction and zone", "http_requests", "", `{"EdgeStartTimestamp":"2022-05-25T22:25:26.250+09:00"}`, ms2022 + 250, 0},
		{"known field preferred", "firewall_events", "", `{"EdgeStartTimestamp":1,"Datetime":"2022-05-25T13:25:26Z"}`, ms2022, 0},
		{"gateway", "gateway_dns", "", `{"Datetime":1653485126000000000}`, ms2022, 0},
		{"audit When", "audit_logs", "", `{"When":"2022-05-25T13:25:26Z"}`, ms2022, 0},
		{"workers milliseconds", "workers_trace_events", "", `{"EventTimestampMs":1653485126000}`, ms2022, 0},
		{"microseconds", "x", "", `{"Timestamp":1653485126000000}`, ms2022, 0},
		{"generic list for an unknown dataset", "mystery", "", `{"a":1,"Timestamp":"2022-05-25T13:25:26Z"}`, ms2022, 0},
		{"configured field", "http_requests", "seen.at", `{"EdgeStartTimestamp":5,"seen":{"at":1653485126}}`, ms2022, 0},
		{"zero means absent", "http_requests", "", `{"EdgeStartTimestamp":0}`, 0, event.TimeGuessed},
		{"unparseable", "http_requests", "", `{"EdgeStartTimestamp":"yesterday"}`, 0, event.TimeGuessed},
		{"no time field", "http_requests", "", `{"RayID":"x"}`, 0, event.TimeGuessed},
		{"not JSON", "http_requests", "", `{"EdgeStartTimestamp":"2022-05-25T13:25:26Z"`, 0, event.Malformed | event.TimeGuessed},
		{"JSON but not an object", "http_requests", "", `[1,2]`, 0, event.Malformed | event.TimeGuessed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ds := newDatasets(c.timeField, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x"}, []string{"dataset"})).get(c.dataset)
			e := event.Event{Raw: []byte(c.raw)}
			const now = 42
			ds.parse(&e, now)
			want := c.want
			if c.flags&event.TimeGuessed != 0 {
				want = now
			}
			if e.Time != want || e.Flags != c.flags || e.Type != c.dataset {
				t.Errorf("time %d flags %b type %q, want %d %b %q", e.Time, e.Flags, e.Type, want, c.flags, c.dataset)
			}
		})
	}
}

func TestDatasets(t *testing.T) {
	cases := []struct{ configured, url, want string }{
		{"", "/logpush?tags=dataset:http_requests", "http_requests"},
		{"", "/logpush?header_Authorization=x&tags=env:prod,dataset:gateway_dns", "gateway_dns"},
		{"", "/logpush?tags=env:prod&tags=dataset:dns_logs", "dns_logs"},
		{"", "/cloudflare/firewall_events", "firewall_events"},
		{"", "/", "unknown"},
		{"", "/Bad-Name", "unknown"},
		{"audit_logs", "/logpush?tags=dataset:http_requests", "audit_logs"},
	}
	d := newDatasets("", prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x"}, []string{"dataset"}))
	for _, c := range cases {
		if got := d.get(datasetOf(c.configured, httptest.NewRequest("POST", c.url, nil))).name; got != c.want {
			t.Errorf("%q with dataset %q: %q, want %q", c.url, c.configured, got, c.want)
		}
	}
	for i := range 2 * maxDatasets {
		d.get("ds_" + strings.Repeat("x", i%60) + string(rune('a'+i%26)))
	}
	if len(d.m) > maxDatasets+1 {
		t.Errorf("%d datasets interned, cap %d", len(d.m), maxDatasets)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := DefaultConfig()
	ok.TLSCertFile, ok.TLSKeyFile, ok.SecretFile = "c", "k", "s"
	cases := map[string]struct {
		edit func(*Config)
		want string
	}{
		"defaults with files": {func(*Config) {}, ""},
		"plain http refused":  {func(c *Config) { c.TLSCertFile, c.TLSKeyFile = "", "" }, "src.tls_cert_file: must be set"},
		"plain http allowed":  {func(c *Config) { c.TLSCertFile, c.TLSKeyFile, c.AllowPlainHTTP = "", "", true }, ""},
		"half a pair":         {func(c *Config) { c.TLSKeyFile = "" }, "set together"},
		"no secret":           {func(c *Config) { c.SecretFile = "" }, "src.secret_file"},
		"bad listen":          {func(c *Config) { c.Listen = "8443" }, "src.listen"},
		"bad header":          {func(c *Config) { c.AuthHeader = "X Auth" }, "src.auth_header"},
		"record over batch":   {func(c *Config) { c.MaxRecordBytes = c.BatchBytes }, "src.max_record_bytes"},
		"bad dataset":         {func(c *Config) { c.Dataset = "HTTP requests" }, "src.dataset"},
		"sub-second retry":    {func(c *Config) { c.RetryAfter = 0 }, "src.retry_after"},
	}
	for name, c := range cases {
		cfg := ok
		c.edit(&cfg)
		v := validate.New("src.")
		cfg.Validate(v)
		err := v.Err()
		if (err == nil) != (c.want == "") || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
}
