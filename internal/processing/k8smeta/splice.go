package k8smeta

import "github.com/siemship/siemship/internal/event"

// splice writes every enriched event, with its "k8s" member added as the
// last member of the top-level object, into one new arena for the batch and
// points the event's Raw at its part. The original bytes are neither decoded
// nor modified. The arena is sized from an upper bound, so it is allocated
// once and written once.
func (e *Enricher) splice(b *event.Batch, refs []eventRef, node []byte, usable bool) {
	size := 0
	for i := range refs {
		if !refs[i].skip {
			size += len(b.Events[i].Raw) + e.k8sBound(&refs[i], node)
		}
	}
	var arena []byte
	if size > 0 {
		arena = make([]byte, 0, size)
	}
	var counts [methodCount]int
	var misses [missCount]int
	for i := range refs {
		r := &refs[i]
		if r.skip {
			continue
		}
		raw := b.Events[i].Raw
		closing, comma, ok := closingBrace(raw)
		if !ok {
			continue
		}
		start := len(arena)
		arena = append(arena, raw[:closing]...)
		if comma {
			arena = append(arena, ',')
		}
		arena = e.appendK8s(arena, r, node, usable)
		arena = append(arena, raw[closing:]...)
		b.Events[i].Raw = arena[start:len(arena):len(arena)]
		switch {
		case r.entry != nil || r.how == host:
			counts[r.how]++
		case usable:
			misses[notFound]++
		default:
			misses[unavailable]++
		}
	}
	for m, n := range counts {
		if n > 0 {
			e.metrics.byMethod[m].Add(float64(n))
		}
	}
	for m, n := range misses {
		if n > 0 {
			e.metrics.byMiss[m].Add(float64(n))
		}
	}
}

// k8sBound is an upper bound of what appendK8s and the comma before it add
// to an event. Exceeding it would only cost a reallocation of the arena.
func (e *Enricher) k8sBound(r *eventRef, node []byte) int {
	const fixed = len(`,"k8s":{}`) + 2*len(`,"match":"container"`) + len(`,"miss":"unavailable"`)
	n := fixed + len(e.cluster) + len(node) + 2
	if r.entry != nil {
		n += len(podFrag(r.entry, r.how)) + len(r.nsFrag) + 2
	}
	if r.parEntry != nil {
		n += len(`,"parent":{}`) + len(podFrag(r.parEntry, r.parHow)) + len(r.parNS) + 2
	}
	return n
}

// closingBrace finds the closing brace of a JSON object (trailing white
// space allowed) and whether a member inserted before it needs a comma
// (false for an empty object). ok is false when raw does not end like an
// object.
func closingBrace(raw []byte) (closing int, comma, ok bool) {
	end := len(raw)
	for end > 0 && isSpace(raw[end-1]) {
		end--
	}
	if end < 2 || raw[end-1] != '}' {
		return 0, false, false
	}
	closing = end - 1
	prev := closing
	for prev > 0 && isSpace(raw[prev-1]) {
		prev--
	}
	if prev == 0 {
		return 0, false, false
	}
	return closing, raw[prev-1] != '{', true
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// appendK8s appends the "k8s" member for one event.
func (e *Enricher) appendK8s(dst []byte, r *eventRef, node []byte, usable bool) []byte {
	w := members{buf: append(dst, `"k8s":{`...)}
	w.add(e.cluster)
	w.add(node)
	switch {
	case r.how == host:
		w.add(methodFrags[host])
		if node == nil && !usable {
			w.add(missFrags[unavailable])
		}
	case r.entry != nil:
		w.add(methodFrags[r.how])
		e.appendPod(&w, r.entry, r.how, r.nsFrag)
	case usable:
		w.add(missFrags[notFound])
	default:
		w.add(missFrags[unavailable])
	}
	if r.parEntry != nil {
		w.open(`"parent":{`)
		w.add(methodFrags[r.parHow])
		e.appendPod(&w, r.parEntry, r.parHow, r.parNS)
		w.close()
	}
	return append(w.buf, '}')
}

func (e *Enricher) appendPod(w *members, p *podEntry, how method, ns []byte) {
	w.add(podFrag(p, how))
	w.add(ns)
}

// podFrag returns the pod's rendered members, with the pod labels for an
// event matched by container id, which has no pod block and so no labels.
func podFrag(p *podEntry, how method) []byte {
	if how == byContainer {
		return p.fragLabels
	}
	return p.frag
}

// members appends comma-separated JSON members, skipping empty ones.
type members struct {
	buf   []byte
	count int
}

func (w *members) add(m []byte) {
	if len(m) == 0 {
		return
	}
	if w.count > 0 {
		w.buf = append(w.buf, ',')
	}
	w.buf = append(w.buf, m...)
	w.count++
}

// open starts a nested object member such as `"parent":{`; close ends it.
func (w *members) open(prefix string) {
	if w.count > 0 {
		w.buf = append(w.buf, ',')
	}
	w.buf = append(w.buf, prefix...)
	w.count = 0
}

func (w *members) close() {
	w.buf = append(w.buf, '}')
	w.count = 1
}
