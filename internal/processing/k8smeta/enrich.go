package k8smeta

import (
	"time"
	"unsafe"

	"github.com/siemship/siemship/internal/event"
)

// method says how an event's process was matched to a pod.
type method uint8

const (
	noMatch method = iota
	byUID
	byName
	byContainer
	host // a host process: node metadata only
	methodCount
)

var methodNames = [methodCount]string{"none", "uid", "name", "container", "host"}

func (m method) String() string { return methodNames[m] }

// match members, rendered once.
var methodFrags = [methodCount][]byte{
	nil, []byte(`"match":"uid"`), []byte(`"match":"name"`), []byte(`"match":"container"`), []byte(`"match":"host"`),
}

// miss says why an event of a pod went out without the pod's metadata.
type miss uint8

const (
	notFound    miss = iota // not in the cache after waiting
	unavailable             // caches not synced, or the API server failing
	missCount
)

var missNames = [missCount]string{"not_found", "unavailable"}

func (m miss) String() string { return missNames[m] }

var missFrags = [missCount][]byte{[]byte(`"miss":"not_found"`), []byte(`"miss":"unavailable"`)}

// podKey is how an event names a pod. Its strings point into the event's
// bytes while Enrich runs; copies kept longer are cloned.
type podKey struct {
	uid, namespace, name, docker string
}

func (k podKey) empty() bool { return k.uid == "" && k.name == "" && k.docker == "" }

// eventRef is Enrich's working state for one event.
type eventRef struct {
	skip     bool // not enriched: flagged, not an object, or no process
	self     podKey
	parent   podKey
	how      method
	entry    *podEntry
	nsFrag   []byte
	parHow   method
	parEntry *podEntry
	parNS    []byte
	pending  bool // refers to a pod not (fully) in the cache yet
}

// missedFor is how long a pod that was waited for in vain is not waited for
// again, so that events of a pod that will never appear (gone before the
// agent started, or beyond the retention) cost one wait, not one per batch.
const missedFor = 30 * time.Second

// Enrich adds the "k8s" member to every well-formed process event of b,
// replacing ev.Raw with the spliced bytes (one new buffer per batch). It
// waits at most Config.WaitForPod in total for pods not in the cache yet;
// events whose pod is still unknown then go out with "k8s":{"miss":…}.
// Events flagged Truncated or Malformed, and events without a process, are
// left as they are. Not safe for concurrent use.
func (e *Enricher) Enrich(b *event.Batch) {
	if !e.cfg.Enabled || len(b.Events) == 0 {
		return
	}
	start := time.Now()
	refs := e.parse(b)
	usable := e.health.usable.Load()
	if e.resolve(refs, start, usable) > 0 && usable && e.cfg.WaitForPod > 0 {
		e.wait(refs, start)
	}
	node := e.nodeFrag()
	e.splice(b, refs, node, usable)
	clear(refs) // drop references to the event bytes
	e.metrics.enrich.Observe(time.Since(start).Seconds())
}

// parse extracts the pod references of every event.
func (e *Enricher) parse(b *event.Batch) []eventRef {
	refs := e.refs[:0]
	for i := range b.Events {
		ev := &b.Events[i]
		var r eventRef
		if ev.Flags&(event.Truncated|event.Malformed) != 0 {
			r.skip = true
		} else {
			r.skip = !parseEvent(ev.Raw, ev.Type, &r)
		}
		refs = append(refs, r)
	}
	e.refs = refs
	return refs
}

// parseEvent reads the pod references of the event's process and parent.
// It reports false for events without a process.
func parseEvent(raw []byte, typ string, r *eventRef) bool {
	var ok bool
	r.self, r.parent, ok = scanEvent(raw, typ)
	return ok
}

// bytesView returns b as a string without copying. The string must not be
// kept after b changes or goes away: Enrich keeps none.
func bytesView(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// resolve looks up the pods of refs under one read lock and returns how many
// are pending.
func (e *Enricher) resolve(refs []eventRef, now time.Time, usable bool) int {
	pending := 0
	e.store.mu.RLock()
	defer e.store.mu.RUnlock()
	for i := range refs {
		r := &refs[i]
		if r.skip || (r.how != noMatch && !r.pending) {
			continue
		}
		if r.self.empty() {
			r.how = host
			continue
		}
		r.entry, r.how = e.store.lookupLocked(r.self)
		r.pending = (r.entry == nil || !r.entry.ownersDone) && usable && !e.recentlyMissed(r.self, now)
		if r.pending {
			pending++
		}
		if r.entry != nil {
			r.nsFrag = e.store.nsFragLocked(r.entry.pod.Namespace)
		}
		if !r.parent.empty() {
			p, how := e.store.lookupLocked(r.parent)
			if p != nil && p != r.entry && (r.entry == nil || p.pod.UID != r.entry.pod.UID) {
				r.parEntry, r.parHow, r.parNS = p, how, e.store.nsFragLocked(p.pod.Namespace)
			}
		}
	}
	return pending
}

// wait re-resolves pending refs whenever the cache changes, until none is
// pending or WaitForPod since start has passed. Pods still missing are
// remembered so that later batches do not wait for them again.
func (e *Enricher) wait(refs []eventRef, start time.Time) {
	e.metrics.waits.Inc()
	timer := time.NewTimer(e.cfg.WaitForPod - time.Since(start))
	defer timer.Stop()
	for {
		changed := e.store.changedCh()
		if e.resolve(refs, time.Now(), true) == 0 {
			return
		}
		select {
		case <-changed:
		case <-timer.C:
			e.rememberMisses(refs, time.Now())
			return
		}
	}
}

func (e *Enricher) rememberMisses(refs []eventRef, now time.Time) {
	if len(e.missed) > 10000 {
		clear(e.missed) // bound the memory; the cost is one more wait each
	}
	for i := range refs {
		if k := refs[i].self; refs[i].pending {
			e.missed[podKey{
				uid: cloneString(k.uid), namespace: cloneString(k.namespace),
				name: cloneString(k.name), docker: cloneString(k.docker),
			}] = now
		}
	}
}

func (e *Enricher) recentlyMissed(k podKey, now time.Time) bool {
	t, ok := e.missed[k]
	if ok && now.Sub(t) > missedFor {
		delete(e.missed, k)
		return false
	}
	return ok
}

func cloneString(s string) string {
	if s == "" {
		return ""
	}
	return string([]byte(s))
}

func (e *Enricher) nodeFrag() []byte {
	e.store.mu.RLock()
	defer e.store.mu.RUnlock()
	return e.store.node
}
