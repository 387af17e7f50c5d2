package tetragonparse

import "time"

// parseRFC3339Millis parses Tetragon's timestamps (RFC 3339 with up to nine
// fractional digits, "Z" or a numeric zone) to Unix milliseconds without
// allocating; anything unusual falls back to time.Parse.
func parseRFC3339Millis(b []byte) (int64, bool) {
	if ms, ok := fastRFC3339(b); ok {
		return ms, true
	}
	t, err := time.Parse(time.RFC3339Nano, string(b))
	if err != nil {
		return 0, false
	}
	return t.UnixMilli(), true
}

func fastRFC3339(b []byte) (int64, bool) {
	// 2006-01-02T15:04:05[.frac]Z
	if len(b) < 20 || b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' || b[len(b)-1] != 'Z' {
		return 0, false
	}
	num := func(s []byte) (int, bool) {
		n := 0
		for _, c := range s {
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	year, ok1 := num(b[0:4])
	month, ok2 := num(b[5:7])
	day, ok3 := num(b[8:10])
	hour, ok4 := num(b[11:13])
	minute, ok5 := num(b[14:16])
	sec, ok6 := num(b[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || month < 1 || month > 12 || day < 1 || day > 31 ||
		hour > 23 || minute > 59 || sec > 60 {
		return 0, false
	}
	ms := 0
	rest := b[19 : len(b)-1]
	if len(rest) > 0 {
		if rest[0] != '.' || len(rest) < 2 || len(rest) > 10 {
			return 0, false
		}
		frac := rest[1:]
		if _, ok := num(frac); !ok {
			return 0, false
		}
		for i := 0; i < 3; i++ {
			ms *= 10
			if i < len(frac) {
				ms += int(frac[i] - '0')
			}
		}
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, 0, time.UTC)
	if t.Day() != day {
		return 0, false // e.g. February 30th: let time.Parse reject it
	}
	return t.UnixMilli() + int64(ms), true
}
