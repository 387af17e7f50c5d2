package k8smeta

import "bytes"

// scanEvent reads, in one pass over the event's bytes, what Enrich needs:
// process.pod.{uid,namespace,name} and process.docker, and the same of
// parent, under the event key typ (the first key when typ is empty). It
// stops once it has both, so the rest of a long event (kprobe arguments,
// node_name, time) is not read. ok is false for events without a process
// object and for input that is not a JSON object.
//
// It is hand-written rather than built on gjson because gjson's Get
// re-scans the enclosing objects for every field (five to eight partial
// passes per event); see BenchmarkScanEvent. FuzzScanEvent checks it
// against gjson.
//
// Returned strings point into raw. String values with escapes are returned
// empty: Kubernetes names, uids and container ids never contain characters
// that JSON escapes.
func scanEvent(raw []byte, typ string) (self, parent podKey, ok bool) {
	s := scanner{b: raw}
	if !s.enter() {
		return self, parent, false
	}
	for first := true; ; first = false {
		key, m := s.nextKey()
		if m != gotKey {
			return self, parent, false
		}
		if key == typ || (typ == "" && first) {
			return s.body()
		}
		if !s.skipValue() {
			return self, parent, false
		}
	}
}

// scanner walks JSON bytes. A method that reports false has found the input
// malformed (or truncated); the scan is then abandoned.
type scanner struct {
	b []byte
	i int
}

// body reads the event object's process and parent members.
func (s *scanner) body() (self, parent podKey, ok bool) {
	if !s.enter() {
		return self, parent, false
	}
	var seenProc, seenParent bool
	for !seenProc || !seenParent {
		key, m := s.nextKey()
		if m != gotKey {
			return self, parent, seenProc && m == objEnd
		}
		var k *podKey
		switch {
		case key == "process" && !seenProc:
			seenProc, k = true, &self
		case key == "parent" && !seenParent:
			seenParent, k = true, &parent
		}
		if k != nil && !s.objectNext() {
			if k == &self {
				return self, parent, false // a process that is not an object
			}
			k = nil // a parent that is not an object is ignored
		}
		if k == nil {
			if !s.skipValue() {
				return self, parent, false
			}
			continue
		}
		if !s.process(k) {
			return self, parent, false
		}
	}
	return self, parent, true
}

// process reads pod and docker of a process object, then skips the rest of
// it. A value that is not an object counts as malformed.
func (s *scanner) process(k *podKey) bool {
	if !s.enter() {
		return false
	}
	var seenPod, seenDocker bool
	for !seenPod || !seenDocker {
		key, m := s.nextKey()
		if m != gotKey {
			return m == objEnd
		}
		switch {
		case key == "pod" && !seenPod:
			seenPod = true
			if !s.pod(k) {
				return false
			}
		case key == "docker" && !seenDocker:
			seenDocker = true
			k.docker = s.stringValue()
			if len(k.docker) > dockerIDLen {
				k.docker = k.docker[:dockerIDLen]
			}
		default:
			if !s.skipValue() {
				return false
			}
		}
	}
	return s.skipNested(1)
}

// pod reads uid, namespace and name of a pod object; a pod value that is
// not an object is skipped.
func (s *scanner) pod(k *podKey) bool {
	if !s.enter() {
		return s.skipValue()
	}
	var seenUID, seenNS, seenName bool
	for !seenUID || !seenNS || !seenName {
		key, m := s.nextKey()
		if m != gotKey {
			return m == objEnd
		}
		switch {
		case key == "uid" && !seenUID:
			seenUID, k.uid = true, s.stringValue()
		case key == "namespace" && !seenNS:
			seenNS, k.namespace = true, s.stringValue()
		case key == "name" && !seenName:
			seenName, k.name = true, s.stringValue()
		default:
			if !s.skipValue() {
				return false
			}
		}
	}
	return s.skipNested(1)
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// objectNext reports whether the next value is an object.
func (s *scanner) objectNext() bool {
	s.ws()
	return s.i < len(s.b) && s.b[s.i] == '{'
}

// enter consumes the '{' of an object value; false (consuming nothing but
// white space) when the value is not an object.
func (s *scanner) enter() bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '{' {
		s.i++
		return true
	}
	return false
}

// found is what nextKey found.
type found uint8

const (
	gotKey found = iota // a key and its colon
	objEnd              // the object's closing brace
	bad                 // anything else: malformed or truncated input
)

// nextKey consumes an optional ',' and the next "key": of the current
// object, or its closing '}'.
func (s *scanner) nextKey() (string, found) {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == ',' {
		s.i++
		s.ws()
	}
	if s.i >= len(s.b) {
		return "", bad
	}
	switch s.b[s.i] {
	case '}':
		s.i++
		return "", objEnd
	case '"':
	default:
		return "", bad
	}
	key, escaped, ok := s.stringAt()
	if !ok {
		return "", bad
	}
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != ':' {
		return "", bad
	}
	s.i++
	if escaped {
		return "\\", gotKey // matches no key looked for
	}
	return bytesView(key), gotKey
}

// stringEnd returns the index of the quote closing a string whose content
// starts at start, or -1 when it is unclosed, and whether the string has
// escapes. Most strings in an event are short keys: a plain loop finds
// their end faster than a call to bytes.IndexByte, which takes over for
// long strings.
func (s *scanner) stringEnd(start int) (end int, escaped bool) {
	b := s.b
	j := start
	for n := min(len(b), start+24); j < n; j++ {
		switch b[j] {
		case '"':
			return j, escaped
		case '\\':
			escaped = true
			j++
		}
	}
	for j < len(b) {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return -1, escaped
		}
		q := j + k
		bs := 0
		for p := q - 1; p >= j && b[p] == '\\'; p-- {
			bs++
		}
		if !escaped && bytes.IndexByte(b[j:q], '\\') >= 0 {
			escaped = true
		}
		if bs%2 == 0 {
			return q, escaped
		}
		j = q + 1
	}
	return -1, escaped
}

// stringAt consumes the string starting at s.i (a quote) and returns its
// content, or ok false when it is unclosed. escaped says it has escapes.
func (s *scanner) stringAt() (content []byte, escaped, ok bool) {
	start := s.i + 1
	end, escaped := s.stringEnd(start)
	if end < 0 {
		s.i = len(s.b)
		return nil, false, false
	}
	s.i = end + 1
	return s.b[start:end], escaped, true
}

// stringValue consumes a value and returns it if it is a string without
// escapes, else "".
func (s *scanner) stringValue() string {
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		s.skipValue()
		return ""
	}
	v, escaped, ok := s.stringAt()
	if !ok || escaped {
		return ""
	}
	return bytesView(v)
}

// skipValue consumes one value of any kind.
func (s *scanner) skipValue() bool {
	s.ws()
	if s.i >= len(s.b) {
		return false
	}
	switch s.b[s.i] {
	case '"':
		_, _, ok := s.stringAt()
		return ok
	case '{', '[':
		s.i++
		return s.skipNested(1)
	case ',', ':', '}', ']':
		return false
	}
	for s.i < len(s.b) { // number, true, false, null
		switch s.b[s.i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return true
		}
		s.i++
	}
	return false
}

// skipNested consumes input until depth open objects or arrays are closed.
func (s *scanner) skipNested(depth int) bool {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case '"':
			end, _ := s.stringEnd(s.i + 1)
			if end < 0 {
				return false
			}
			s.i = end
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				s.i++
				return true
			}
		}
		s.i++
	}
	return false
}
