package logscale

import (
	"fmt"
	"strings"
	"time"
)

// javaTimeFormat is a java.time.format.DateTimeFormatter pattern, as
// LogScale's parseTimestamp(format=…) takes it, compiled for parsing with
// the semantics of DateTimeFormatter.ofPattern (strict, case sensitive,
// ResolverStyle.SMART) for the subset of pattern letters parsers use:
//
//	yyyy uuuu        year, 4 digits
//	M MM d dd H HH m mm s ss
//	                 one letter: 1 or 2 digits; two letters: exactly 2
//	S…S (1 to 9)     fraction of a second, exactly as many digits as letters
//	                 (SSSSSSSSS takes 9 digits and refuses 3: Java's
//	                 appendFraction(NANO_OF_SECOND, n, n, false))
//	X XX XXX XXXX XXXXX
//	                 offset +HHmm, +HHMM, +HH:MM, +HHMMss, +HH:MM:ss; Z for zero
//	'text' ''        quoted literal, a quote
//	[ ]              optional section: tried, and skipped (with what it had
//	                 parsed) when it does not match
//
// Other characters but letters and the reserved { } # are literals. A
// pattern with any other letter is refused rather than guessed at: passing
// the emulator must mean the pattern does what it says in LogScale.
type javaTimeFormat struct {
	pattern string
	items   []jtItem
}

type jtKind int

const (
	jtLiteral jtKind = iota
	jtNumber
	jtFraction
	jtOffset
	jtOptional
)

type jtItem struct {
	kind     jtKind
	literal  string
	field    byte // y M d H m s
	min, max int  // digits
	colon    bool // offset: HH:MM
	minutes  int  // offset: 0 absent, 1 optional, 2 required
	seconds  bool // offset: optional seconds
	optional []jtItem
}

// LogScale's default format of parseTimestamp.
const defaultTimestampFormat = "yyyy-MM-dd'T'HH:mm:ss[.SSSSSSSSS]XXXXX"

func compileJavaTime(pattern string) (*javaTimeFormat, error) {
	f := &javaTimeFormat{pattern: pattern}
	stack := [][]jtItem{nil}
	rs := []rune(pattern)
	for i := 0; i < len(rs); {
		c := rs[i]
		top := &stack[len(stack)-1]
		switch {
		case c == '\'':
			j := i + 1
			var lit strings.Builder
			for ; j < len(rs); j++ {
				if rs[j] == '\'' {
					if j+1 < len(rs) && rs[j+1] == '\'' {
						lit.WriteRune('\'')
						j++
						continue
					}
					break
				}
				lit.WriteRune(rs[j])
			}
			if j >= len(rs) {
				return nil, fmt.Errorf("format %q: unterminated quote", pattern)
			}
			if lit.Len() == 0 { // '' is a quote
				lit.WriteRune('\'')
			}
			*top = append(*top, jtItem{kind: jtLiteral, literal: lit.String()})
			i = j + 1
		case c == '[':
			stack = append(stack, nil)
			i++
		case c == ']':
			if len(stack) == 1 {
				return nil, fmt.Errorf("format %q: ] without [", pattern)
			}
			inner := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			stack[len(stack)-1] = append(stack[len(stack)-1], jtItem{kind: jtOptional, optional: inner})
			i++
		case c == '{' || c == '}' || c == '#':
			return nil, fmt.Errorf("format %q: %c is reserved", pattern, c)
		case (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'):
			n := 1
			for i+n < len(rs) && rs[i+n] == c {
				n++
			}
			item, err := letterItem(c, n)
			if err != nil {
				return nil, fmt.Errorf("format %q: %w", pattern, err)
			}
			*top = append(*top, item)
			i += n
		default:
			*top = append(*top, jtItem{kind: jtLiteral, literal: string(c)})
			i++
		}
	}
	if len(stack) != 1 {
		return nil, fmt.Errorf("format %q: [ without ]", pattern)
	}
	f.items = stack[0]
	return f, nil
}

func letterItem(c rune, n int) (jtItem, error) {
	unsupported := fmt.Errorf("pattern letters %s are not supported by the emulator", strings.Repeat(string(c), n))
	switch c {
	case 'y', 'u':
		if n != 4 {
			return jtItem{}, unsupported
		}
		return jtItem{kind: jtNumber, field: 'y', min: 4, max: 4}, nil
	case 'M', 'd', 'H', 'm', 's':
		switch n {
		case 1:
			return jtItem{kind: jtNumber, field: byte(c), min: 1, max: 2}, nil
		case 2:
			return jtItem{kind: jtNumber, field: byte(c), min: 2, max: 2}, nil
		}
		return jtItem{}, unsupported
	case 'S':
		if n > 9 {
			return jtItem{}, fmt.Errorf("too many pattern letters: S")
		}
		return jtItem{kind: jtFraction, min: n, max: n}, nil
	case 'X':
		switch n {
		case 1:
			return jtItem{kind: jtOffset, minutes: 1}, nil
		case 2:
			return jtItem{kind: jtOffset, minutes: 2}, nil
		case 3:
			return jtItem{kind: jtOffset, minutes: 2, colon: true}, nil
		case 4:
			return jtItem{kind: jtOffset, minutes: 2, seconds: true}, nil
		case 5:
			return jtItem{kind: jtOffset, minutes: 2, seconds: true, colon: true}, nil
		}
		return jtItem{}, fmt.Errorf("too many pattern letters: X")
	}
	return jtItem{}, unsupported
}

// jtFields are the values parsed so far.
type jtFields struct {
	year, month, day, hour, minute, second, nano int
	have                                         map[byte]bool
	offset                                       int // seconds east of UTC
	hasOffset                                    bool
	// skipped is why the last optional section that did not match failed:
	// the usual cause of an error after it.
	skipped string
}

func (p *jtFields) clone() jtFields {
	c := *p
	c.have = make(map[byte]bool, len(p.have))
	for k, v := range p.have {
		c.have[k] = v
	}
	return c
}

// Parse parses the whole of s (DateTimeFormatter.parse refuses trailing
// text), taking the zone from the text or, when it has none, from loc.
func (f *javaTimeFormat) Parse(s string, loc *time.Location) (time.Time, error) {
	fields := jtFields{have: map[byte]bool{}}
	pos, err := parseItems(f.items, s, 0, &fields)
	note := ""
	if fields.skipped != "" {
		note = " (an optional section was skipped: " + fields.skipped + ")"
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("text %q could not be parsed with %q at index %d: %w%s", s, f.pattern, pos, err, note)
	}
	if pos != len(s) {
		return time.Time{}, fmt.Errorf("text %q could not be parsed with %q, unparsed text found at index %d%s", s, f.pattern, pos, note)
	}
	for _, k := range []byte{'y', 'M', 'd'} {
		if !fields.have[k] {
			return time.Time{}, fmt.Errorf("text %q parsed with %q has no date", s, f.pattern)
		}
	}
	if fields.month < 1 || fields.month > 12 || fields.day < 1 || fields.day > 31 ||
		fields.hour > 23 || fields.minute > 59 || fields.second > 59 {
		return time.Time{}, fmt.Errorf("text %q parsed with %q: a field is out of range", s, f.pattern)
	}
	// SMART resolution: a day past the month's end becomes its last day.
	if last := time.Date(fields.year, time.Month(fields.month)+1, 0, 0, 0, 0, 0, time.UTC).Day(); fields.day > last {
		fields.day = last
	}
	switch {
	case fields.hasOffset:
		loc = time.FixedZone("", fields.offset)
	case loc == nil:
		return time.Time{}, fmt.Errorf("text %q has no time zone and no timezone is set", s)
	}
	return time.Date(fields.year, time.Month(fields.month), fields.day, fields.hour, fields.minute, fields.second, fields.nano, loc), nil
}

func parseItems(items []jtItem, s string, pos int, f *jtFields) (int, error) {
	for _, it := range items {
		var err error
		switch it.kind {
		case jtLiteral:
			if !strings.HasPrefix(s[pos:], it.literal) {
				return pos, fmt.Errorf("expected %q", it.literal)
			}
			pos += len(it.literal)
		case jtNumber:
			var v int
			if v, pos, err = digits(s, pos, it.min, it.max); err != nil {
				return pos, err
			}
			f.have[it.field] = true
			switch it.field {
			case 'y':
				f.year = v
			case 'M':
				f.month = v
			case 'd':
				f.day = v
			case 'H':
				f.hour = v
			case 'm':
				f.minute = v
			case 's':
				f.second = v
			}
		case jtFraction:
			start := pos
			var v int
			if v, pos, err = digits(s, pos, it.min, it.max); err != nil {
				return pos, fmt.Errorf("fraction needs %d digits: %w", it.min, err)
			}
			for n := pos - start; n < 9; n++ {
				v *= 10
			}
			f.nano = v
		case jtOffset:
			if pos, err = parseOffset(it, s, pos, f); err != nil {
				return pos, err
			}
		case jtOptional:
			saved := f.clone()
			if next, err := parseItems(it.optional, s, pos, f); err == nil {
				pos = next
			} else {
				*f = saved
				f.skipped = fmt.Sprintf("at index %d: %v", next, err)
			}
		}
	}
	return pos, nil
}

// digits reads at least min and at most max ASCII digits.
func digits(s string, pos, min, max int) (int, int, error) {
	v, n := 0, 0
	for n < max && pos+n < len(s) && s[pos+n] >= '0' && s[pos+n] <= '9' {
		v = v*10 + int(s[pos+n]-'0')
		n++
	}
	if n < min {
		return 0, pos, fmt.Errorf("%d digits found, %d needed", n, min)
	}
	return v, pos + n, nil
}

func parseOffset(it jtItem, s string, pos int, f *jtFields) (int, error) {
	if strings.HasPrefix(s[pos:], "Z") {
		f.offset, f.hasOffset = 0, true
		return pos + 1, nil
	}
	if pos >= len(s) || (s[pos] != '+' && s[pos] != '-') {
		return pos, fmt.Errorf("expected an offset (Z, +hh…, -hh…)")
	}
	sign := 1
	if s[pos] == '-' {
		sign = -1
	}
	p := pos + 1
	h, p, err := digits(s, p, 2, 2)
	if err != nil {
		return pos, fmt.Errorf("offset hours: %w", err)
	}
	total := h * 3600
	// part reads one more component (minutes, seconds): ":MM" or "MM".
	part := func(p int) (int, int, bool) {
		q := p
		if it.colon {
			if !strings.HasPrefix(s[q:], ":") {
				return 0, p, false
			}
			q++
		}
		v, q, err := digits(s, q, 2, 2)
		if err != nil {
			return 0, p, false
		}
		return v, q, true
	}
	if it.minutes > 0 {
		m, next, ok := part(p)
		switch {
		case ok && m > 59:
			return pos, fmt.Errorf("offset minutes out of range")
		case ok:
			total += m * 60
			p = next
			if it.seconds {
				if sec, next, ok := part(p); ok && sec <= 59 {
					total += sec
					p = next
				}
			}
		case it.minutes == 2:
			return pos, fmt.Errorf("offset minutes missing")
		}
	}
	if h > 18 || total > 18*3600 {
		return pos, fmt.Errorf("offset out of range")
	}
	f.offset, f.hasOffset = sign*total, true
	return p, nil
}
