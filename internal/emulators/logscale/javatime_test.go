package logscale

import (
	"strings"
	"testing"
	"time"
)

// Expected results follow java.time.format.DateTimeFormatter.ofPattern
// (JDK 17) parsing the text with the pattern; "error" cases throw
// DateTimeParseException there.
func TestJavaTimeParse(t *testing.T) {
	const def = defaultTimestampFormat
	const tetragon = "yyyy-MM-dd'T'HH:mm:ss[.SSSSSSSSS][.SSSSSS][.SSS]XXXXX"
	utc := time.UTC
	for _, tc := range []struct {
		pattern, text string
		loc           *time.Location
		want          string // RFC 3339 in UTC, or "error: <part of the message>"
	}{
		// LogScale's default: a fixed nine-digit fraction or none.
		{def, "2023-10-06T22:03:57.700326678Z", nil, "2023-10-06T22:03:57.700326678Z"},
		{def, "2023-10-06T22:03:57Z", nil, "2023-10-06T22:03:57Z"},
		{def, "2022-05-11T12:54:45.615Z", nil, "error: at index 19: expected an offset (Z, +hh…, -hh…) (an optional section was skipped: at index 20: fraction needs 9 digits: 3 digits found"},
		{def, "2022-05-11T12:54:45.615123Z", nil, "error: at index 19: expected an offset"},
		{def, "2022-05-11T12:54:45.6151234567Z", nil, "error: expected an offset"},
		// Optional sections tried in order: each of protojson's widths.
		{tetragon, "2023-10-06T22:03:57.700326678Z", nil, "2023-10-06T22:03:57.700326678Z"},
		{tetragon, "2023-10-06T22:03:57.700326Z", nil, "2023-10-06T22:03:57.700326Z"},
		{tetragon, "2022-05-11T12:54:45.615Z", nil, "2022-05-11T12:54:45.615Z"},
		{tetragon, "2024-04-14T02:19:00Z", nil, "2024-04-14T02:19:00Z"},
		{tetragon, "2024-04-14T02:19:00.12Z", nil, "error: at index 19: expected an offset"},
		{tetragon, "2024-04-14T02:19:00.1234Z", nil, "error: at index 23: expected an offset"},
		// XXXXX: Z, +HH:MM, +HH:MM:ss; not +HH or +HHMM.
		{def, "2024-04-14T04:19:00+02:00", nil, "2024-04-14T02:19:00Z"},
		{def, "2024-04-14T02:19:00-00:30", nil, "2024-04-14T02:49:00Z"},
		{def, "2024-04-14T04:19:00+02:00:30", nil, "2024-04-14T02:18:30Z"},
		{def, "2024-04-14T04:19:00+02", nil, "error: offset minutes missing"},
		{def, "2024-04-14T04:19:00+0200", nil, "error: offset minutes missing"},
		{def, "2024-04-14T04:19:00", nil, "error: expected an offset"},
		{"yyyy-MM-dd'T'HH:mm:ssXX", "2024-04-14T04:19:00+0200", nil, "2024-04-14T02:19:00Z"},
		{"yyyy-MM-dd'T'HH:mm:ssX", "2024-04-14T04:19:00+02", nil, "2024-04-14T02:19:00Z"},
		{"yyyy-MM-dd'T'HH:mm:ssXXX", "2024-04-14T04:19:00+02:00:30", nil, "error: unparsed text"},
		// Fixed widths.
		{"yyyy-MM-dd HH:mm:ss.SSS", "2024-04-14 02:19:00.5", utc, "error: fraction needs 3 digits"},
		{"yyyy-MM-dd HH:mm:ss.SSS", "2024-04-14 02:19:00.500", utc, "2024-04-14T02:19:00.5Z"},
		{"yyyy-MM-dd HH:mm:ss", "2024-4-14 02:19:00", utc, "error: 1 digits found, 2 needed"},
		{"yyyy-M-d H:m:s", "2024-4-9 2:9:0", utc, "2024-04-09T02:09:00Z"},
		// No zone in the text: the timezone parameter, else an error.
		{"yyyy-MM-dd HH:mm:ss", "2024-04-14 02:19:00", nil, "error: no time zone"},
		{"yyyy-MM-dd HH:mm:ss[XXX]", "2024-04-14 02:19:00", utc, "2024-04-14T02:19:00Z"},
		{"yyyy-MM-dd HH:mm:ss[XXX]", "2024-04-14 04:19:00+02:00", utc, "2024-04-14T02:19:00Z"},
		// SMART resolution and ranges.
		{"yyyy-MM-dd", "2023-02-30", utc, "2023-02-28T00:00:00Z"},
		{"yyyy-MM-dd", "2023-13-01", utc, "error: out of range"},
		{"yyyy-MM-dd HH:mm", "2023-01-01 24:00", utc, "error: out of range"},
		// Quotes and trailing text.
		{"yyyy-MM-dd'T''x'", "2023-01-01T'x", utc, "2023-01-01T00:00:00Z"},
		{"yyyy-MM-dd", "2023-01-01 ", utc, "error: unparsed text"},
	} {
		f, err := compileJavaTime(tc.pattern)
		if err != nil {
			t.Fatalf("compile %q: %v", tc.pattern, err)
		}
		got, err := f.Parse(tc.text, tc.loc)
		if want, isErr := strings.CutPrefix(tc.want, "error: "); isErr {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%q with %q: %v, %v; want an error with %q", tc.text, tc.pattern, got, err, want)
			}
			continue
		}
		if err != nil || got.UTC().Format(time.RFC3339Nano) != tc.want {
			t.Errorf("%q with %q: %v, %v; want %s", tc.text, tc.pattern, got.UTC().Format(time.RFC3339Nano), err, tc.want)
		}
	}
}

// Patterns the emulator cannot check faithfully are refused, not guessed.
func TestJavaTimeRefusesUnknownPatterns(t *testing.T) {
	for _, p := range []string{"EEE yyyy", "yy-MM-dd", "MMM", "yyyy-MM-dd'T", "[yyyy", "yyyy]", "SSSSSSSSSS", "XXXXXX", "yyyy{", "hh:mm a"} {
		if _, err := compileJavaTime(p); err == nil {
			t.Errorf("pattern %q accepted", p)
		}
	}
}

func FuzzJavaTime(f *testing.F) {
	f.Add("yyyy-MM-dd'T'HH:mm:ss[.SSSSSSSSS][.SSS]XXXXX", "2022-05-11T12:54:45.615Z")
	f.Add("[[yyyy]]'''", "''")
	f.Fuzz(func(t *testing.T, pattern, text string) {
		fm, err := compileJavaTime(pattern)
		if err != nil {
			return
		}
		_, _ = fm.Parse(text, time.UTC) // must not panic
	})
}
