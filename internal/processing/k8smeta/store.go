package k8smeta

import (
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// podEntry is what Enrich needs of one pod. Entries are immutable once in
// the store: a change replaces the entry, so Enrich can use an entry after
// releasing the lock.
type podEntry struct {
	pod        *corev1.Pod // stripped by stripPod
	containers []string    // Tetragon-style container ids (see containerIDs)
	owners     []owner     // the controller chain, the pod's controller first
	ownersDone bool        // owners resolved (or given up on for now)
	deleted    time.Time   // zero while the pod exists
	frag       []byte      // renderPod without pod labels
	fragLabels []byte      // renderPod with pod labels
}

func (p *podEntry) hasContainer(id string) bool {
	return slices.Contains(p.containers, id)
}

type nsName struct{ namespace, name string }

type nsEntry struct {
	frag    []byte
	deleted time.Time
}

// store indexes pod entries by uid, namespace/name and container id, and
// keeps the rendered namespace and node fragments. Deleted pods and
// namespaces stay until expire removes them after the retention time.
type store struct {
	groups Groups

	mu          sync.RWMutex
	byUID       map[string]*podEntry
	byName      map[nsName]*podEntry
	byContainer map[string]*podEntry
	namespaces  map[string]*nsEntry
	node        []byte
	deletedPods int
	changed     chan struct{} // closed and replaced whenever a pod entry changes
}

func newStore(g Groups) *store {
	return &store{
		groups:      g,
		byUID:       make(map[string]*podEntry),
		byName:      make(map[nsName]*podEntry),
		byContainer: make(map[string]*podEntry),
		namespaces:  make(map[string]*nsEntry),
		changed:     make(chan struct{}),
	}
}

// putPod adds or replaces a live pod. Owners resolved for an earlier version
// of the pod are kept while its controller is the same. It reports whether
// the owners still need resolving.
func (s *store) putPod(p *corev1.Pod) (needOwners bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	uid := string(p.UID)
	old := s.byUID[uid]
	e := &podEntry{pod: p, containers: containerIDs(p)}
	switch {
	case !s.groups.Owners || len(p.OwnerReferences) == 0:
		e.ownersDone = true
	case old != nil && sameController(old.pod, p):
		e.owners, e.ownersDone = old.owners, old.ownersDone
	}
	if old != nil && !old.deleted.IsZero() {
		e.deleted = old.deleted // a late update of a deleted pod
	}
	s.replace(old, e)
	return !e.ownersDone
}

// setOwners records the owner chain of the pod with this uid, if it is
// still in the store.
func (s *store) setOwners(uid string, owners []owner) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.byUID[uid]
	if old == nil {
		return
	}
	e := *old
	e.owners, e.ownersDone = owners, true
	s.replace(old, &e)
}

// replace renders e and swaps it in for old (nil for a new pod) in every
// index, then wakes Enrich calls waiting for pods.
func (s *store) replace(old, e *podEntry) {
	e.frag = renderPod(s.groups, e.pod, e.owners, false)
	e.fragLabels = e.frag
	if s.groups.Labels && len(e.pod.Labels) > 0 {
		e.fragLabels = renderPod(s.groups, e.pod, e.owners, true)
	}
	if old != nil {
		for _, id := range old.containers {
			if s.byContainer[id] == old {
				delete(s.byContainer, id)
			}
		}
	}
	s.byUID[string(e.pod.UID)] = e
	key := nsName{e.pod.Namespace, e.pod.Name}
	if cur := s.byName[key]; cur == nil || cur == old || e.deleted.IsZero() {
		s.byName[key] = e // a live pod takes the name over from a deleted one
	}
	for _, id := range e.containers {
		s.byContainer[id] = e
	}
	close(s.changed)
	s.changed = make(chan struct{})
}

// deletePod marks a pod deleted; its entry stays for late events.
func (s *store) deletePod(uid string, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.byUID[uid]
	if old == nil || !old.deleted.IsZero() {
		return
	}
	e := *old
	e.deleted = now
	s.replace(old, &e)
	s.deletedPods++
}

func (s *store) putNamespace(ns *corev1.Namespace) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.namespaces[ns.Name] = &nsEntry{frag: renderNamespace(ns)}
}

func (s *store) deleteNamespace(name string, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.namespaces[name]; old != nil && old.deleted.IsZero() {
		s.namespaces[name] = &nsEntry{frag: old.frag, deleted: now}
	}
}

func (s *store) setNode(frag []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.node = frag
}

// expire removes pods and namespaces deleted before cutoff.
func (s *store) expire(cutoff time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for uid, e := range s.byUID {
		if e.deleted.IsZero() || e.deleted.After(cutoff) {
			continue
		}
		delete(s.byUID, uid)
		s.deletedPods--
		key := nsName{e.pod.Namespace, e.pod.Name}
		if s.byName[key] == e {
			delete(s.byName, key)
		}
		for _, id := range e.containers {
			if s.byContainer[id] == e {
				delete(s.byContainer, id)
			}
		}
	}
	for name, ns := range s.namespaces {
		if !ns.deleted.IsZero() && !ns.deleted.After(cutoff) {
			delete(s.namespaces, name)
		}
	}
}

// pod returns the entry for uid, or nil.
func (s *store) pod(uid string) *podEntry {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.byUID[uid]
}

// counts returns the number of live pods, deleted pods kept, and namespaces.
func (s *store) counts() (live, deleted, namespaces int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.byUID) - s.deletedPods, s.deletedPods, len(s.namespaces)
}

func sameController(a, b *corev1.Pod) bool {
	if len(a.OwnerReferences) == 0 || len(b.OwnerReferences) == 0 {
		return false
	}
	return a.OwnerReferences[0].UID == b.OwnerReferences[0].UID
}

// lookupLocked finds the pod an event names: by uid when the event has one
// (a uid is never matched by name or container, which could be another
// incarnation of the pod), else by namespace/name, else by container id.
// A name match is not taken when the event's container id belongs to a
// different pod of that name (a late event of a deleted, recreated pod).
// s.mu must be held for reading.
func (s *store) lookupLocked(k podKey) (*podEntry, method) {
	if k.uid != "" {
		if e := s.byUID[k.uid]; e != nil {
			return e, byUID
		}
		return nil, noMatch
	}
	if k.name != "" {
		e := s.byName[nsName{k.namespace, k.name}]
		if e != nil && (k.docker == "" || len(e.containers) == 0 || e.hasContainer(k.docker)) {
			return e, byName
		}
	}
	if k.docker != "" {
		e := s.byContainer[k.docker]
		if e != nil && (k.name == "" || (e.pod.Namespace == k.namespace && e.pod.Name == k.name)) {
			return e, byContainer
		}
	}
	return nil, noMatch
}

// nsFragLocked returns the rendered namespace member; s.mu must be held.
func (s *store) nsFragLocked(name string) []byte {
	if ns := s.namespaces[name]; ns != nil {
		return ns.frag
	}
	return nil
}

// changedCh returns a channel closed at the next change of a pod entry.
func (s *store) changedCh() <-chan struct{} {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.changed
}
