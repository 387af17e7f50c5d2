package leader

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// ErrNotHolding refuses a checkpoint write from a process that does not
// hold the Lease (a standby, or a leader whose renewal is overdue).
var ErrNotHolding = errors.New("not holding the lease")

// ErrConflict is a ConfigMap that changed under the leader: another process
// wrote it, so there are two leaders for a moment; the writer stops.
var ErrConflict = errors.New("offsets ConfigMap changed by another writer")

// ConfigMapStore keeps small values (one per source name) in one
// ConfigMap. Writes happen only while the elector holds the Lease, and each
// is conditional on the resourceVersion this process last read or wrote: a
// conflict means another leader wrote, and abdicates. Safe for concurrent
// use; the sources of one process share one store.
type ConfigMapStore struct {
	client kubernetes.Interface
	ns     string
	name   string
	e      *Elector

	mu     sync.Mutex
	rv     string // "" when the ConfigMap did not exist at the last read
	data   map[string]string
	loaded bool
}

// ConfigMap returns the store of the elector's offsets ConfigMap.
func (e *Elector) ConfigMap() *ConfigMapStore {
	return &ConfigMapStore{client: e.client, ns: e.ns, name: e.cfg.OffsetsConfigMap, e: e}
}

// Describe names the ConfigMap, for messages.
func (s *ConfigMapStore) Describe() string { return "ConfigMap " + s.ns + "/" + s.name }

// Load reads key afresh from the API server; false when absent.
func (s *ConfigMapStore) Load(ctx context.Context, key string) ([]byte, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.readLocked(ctx); err != nil {
		return nil, false, err
	}
	v, ok := s.data[key]
	return []byte(v), ok, nil
}

func (s *ConfigMapStore) readLocked(ctx context.Context) error {
	cm, err := s.client.CoreV1().ConfigMaps(s.ns).Get(ctx, s.name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		s.rv, s.data = "", map[string]string{}
	case err != nil:
		return fmt.Errorf("read %s: %w", s.Describe(), err)
	default:
		s.rv, s.data = cm.ResourceVersion, maps.Clone(cm.Data)
		if s.data == nil {
			s.data = map[string]string{}
		}
	}
	s.loaded = true
	return nil
}

// Save writes key = value, creating the ConfigMap if it did not exist.
func (s *ConfigMapStore) Save(ctx context.Context, key string, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.e.Holding() {
		return fmt.Errorf("write %s: %w", s.Describe(), ErrNotHolding)
	}
	if !s.loaded {
		if err := s.readLocked(ctx); err != nil {
			return err
		}
	}
	data := maps.Clone(s.data)
	data[key] = string(value)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: s.name, Namespace: s.ns, ResourceVersion: s.rv,
		Labels: map[string]string{"app.kubernetes.io/part-of": "siemship"}}, Data: data}
	var out *corev1.ConfigMap
	var err error
	if s.rv == "" {
		out, err = s.client.CoreV1().ConfigMaps(s.ns).Create(ctx, cm, metav1.CreateOptions{})
	} else {
		out, err = s.client.CoreV1().ConfigMaps(s.ns).Update(ctx, cm, metav1.UpdateOptions{})
	}
	if apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) {
		err = fmt.Errorf("write %s at resourceVersion %q: %w: %w", s.Describe(), s.rv, ErrConflict, err)
		s.e.Abdicate(err)
		return err
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", s.Describe(), err)
	}
	s.rv, s.data = out.ResourceVersion, data
	return nil
}

// WhileLeading campaigns for the Lease as e and, once it leads, calls fn
// with the ConfigMap store, then releases the Lease. It is how a tool
// changes the checkpoints of a Deployment that is scaled to zero: the
// write is fenced like an agent's, and no agent can lead meanwhile. It
// gives up after wait, naming the holder (a running agent keeps the Lease).
func (e *Elector) WhileLeading(ctx context.Context, wait time.Duration, fn func(context.Context, *ConfigMapStore) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	defer func() { cancel(); <-done }() // releases the Lease
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-e.Leading():
	case <-e.Lost():
		return e.Err()
	case err := <-done:
		done <- err
		return fmt.Errorf("lease %s/%s: campaign ended before leading (%v)", e.ns, e.cfg.LeaseName, err)
	case <-timer.C:
		_, holder, err := e.State()
		if err != nil {
			return fmt.Errorf("lease %s/%s not acquired within %s: %w", e.ns, e.cfg.LeaseName, wait, err)
		}
		if holder == "" {
			return fmt.Errorf("lease %s/%s not acquired within %s", e.ns, e.cfg.LeaseName, wait)
		}
		return fmt.Errorf("lease %s/%s is held by %s: scale the Deployment to zero replicas first (kubectl scale --replicas=0), a running leader overwrites its checkpoints", e.ns, e.cfg.LeaseName, holder)
	}
	return fn(ctx, e.ConfigMap())
}
