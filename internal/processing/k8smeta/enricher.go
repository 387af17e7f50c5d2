package k8smeta

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/workqueue"
)

// Enricher adds Kubernetes metadata to events. Run keeps its caches up to
// date; Enrich reads them. Enrich is not safe for concurrent use (one
// processing goroutine calls it); Run, Enrich and Ready may run concurrently.
type Enricher struct {
	cfg     Config
	log     *slog.Logger
	node    string
	client  kubernetes.Interface
	store   *store
	owners  *ownerResolver
	health  *health
	metrics *metrics
	cluster []byte // rendered "cluster" member, nil when not configured
	ran     atomic.Bool

	// Scratch state reused by Enrich across batches.
	refs   []eventRef
	missed map[podKey]time.Time
}

// New builds an enricher from cfg. It loads the kubeconfig (or the
// in-cluster config) but does not contact the API server: Run does. With
// cfg.Enabled false it returns an enricher that does nothing.
func New(cfg Config, reg prometheus.Registerer, log *slog.Logger) (*Enricher, error) {
	log = log.With("component", "k8smeta")
	if !cfg.Enabled {
		return &Enricher{cfg: cfg, log: log}, nil
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	restCfg, err := loadRESTConfig(cfg.Kubeconfig)
	if err != nil {
		return nil, err
	}
	client, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	metaClient, err := metadata.NewForConfig(restCfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes metadata client: %w", err)
	}
	m := newMetrics()
	h := newHealth(log, m)
	e := &Enricher{
		cfg:     cfg,
		log:     log,
		node:    cfg.nodeName(),
		client:  client,
		store:   newStore(cfg.Groups),
		owners:  newOwnerResolver(metaClient, func(res string, err error) { h.observe(res, "get", err) }),
		health:  h,
		metrics: m,
		missed:  make(map[podKey]time.Time),
	}
	if cfg.ClusterName != "" {
		e.cluster = renderString("cluster", cfg.ClusterName)
	}
	if err := m.register(reg, e.store, e.owners); err != nil {
		return nil, err
	}
	return e, nil
}

func loadRESTConfig(kubeconfig string) (*rest.Config, error) {
	var cfg *rest.Config
	var err error
	if kubeconfig == "" {
		cfg, err = rest.InClusterConfig()
	} else {
		cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes client config: %w", err)
	}
	cfg.UserAgent = "siemship"
	return cfg, nil
}

// Run starts the informers and the owner lookups and blocks until ctx is
// done. While the API server is unreachable or refuses the agent, the
// informers keep retrying (with client-go's backoff) and Enrich goes on with
// what the cache holds. Run may be called once.
func (e *Enricher) Run(ctx context.Context) error {
	if !e.ran.CompareAndSwap(false, true) {
		return errors.New("kubernetes metadata: Run called twice")
	}
	if !e.cfg.Enabled {
		<-ctx.Done()
		return nil
	}
	queue := workqueue.NewTypedRateLimitingQueueWithConfig(
		// Failed lookups are retried: the API server may be back, or the
		// RBAC fixed. The delay grows per pod up to 30 s.
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](100*time.Millisecond, 30*time.Second),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "siemship-k8s-owners"},
	)
	informers, err := e.informers(queue)
	if err != nil {
		queue.ShutDown()
		return err
	}
	var wg sync.WaitGroup
	synced := make([]cache.InformerSynced, 0, len(informers))
	for _, inf := range informers {
		synced = append(synced, inf.HasSynced)
		wg.Go(func() { inf.RunWithContext(ctx) })
	}
	wg.Go(func() {
		if cache.WaitForCacheSync(ctx.Done(), synced...) {
			e.health.setSynced()
		}
	})
	wg.Go(func() { e.resolveOwners(ctx, queue) })
	wg.Go(func() { e.expire(ctx) })
	<-ctx.Done()
	queue.ShutDown()
	wg.Wait()
	return nil
}

// resolveOwners works through pods whose owner chain is not known yet.
func (e *Enricher) resolveOwners(ctx context.Context, queue workqueue.TypedRateLimitingInterface[string]) {
	for {
		uid, quit := queue.Get()
		if quit {
			return
		}
		e.resolveOwner(ctx, queue, uid)
		queue.Done(uid)
	}
}

func (e *Enricher) resolveOwner(ctx context.Context, queue workqueue.TypedRateLimitingInterface[string], uid string) {
	p := e.store.pod(uid)
	if p == nil {
		queue.Forget(uid)
		return
	}
	chain, err := e.owners.chain(ctx, p.pod)
	// A partial chain is recorded too, so events stop waiting for it.
	e.store.setOwners(uid, chain)
	if err != nil {
		queue.AddRateLimited(uid)
		return
	}
	queue.Forget(uid)
}

// expire drops deleted pods after the retention time, and stale owners.
func (e *Enricher) expire(ctx context.Context) {
	every := min(max(e.cfg.PodRetention/4, 100*time.Millisecond), 10*time.Second)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			e.store.expire(now.Add(-e.cfg.PodRetention))
			e.owners.expire(now)
		}
	}
}

// Ready reports whether enrichment works fully, with a one-line reason
// (for /readyz) when it does not, e.g. "kubernetes API unreachable since …".
// WaitSynced blocks until the caches first synced, timeout passed or ctx is
// done, and reports whether they synced. The agent calls it once before
// processing, so the events read at start are not all shipped unenriched.
func (e *Enricher) WaitSynced(ctx context.Context, timeout time.Duration) bool {
	if !e.cfg.Enabled {
		return true
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-e.health.syncedCh:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

func (e *Enricher) Ready() (bool, string) {
	if !e.cfg.Enabled {
		return true, "kubernetes metadata disabled"
	}
	return e.health.ready()
}
