package leader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/siemship/siemship/internal/validate"
)

// ErrLost says this process stopped leading: its leader-only sources stop
// and the agent exits non-zero, to come back as a standby with fresh state.
var ErrLost = errors.New("leadership lost")

// Elector campaigns for the Lease and tells its gates when this process
// leads and when it stopped. Run it once; the other methods are safe for
// concurrent use.
type Elector struct {
	cfg      Config
	ns       string
	identity string
	client   kubernetes.Interface
	log      *slog.Logger
	lock     *trackedLock
	le       *leaderelection.LeaderElector
	leadingG prometheus.Gauge

	leading  chan struct{}
	lost     chan struct{}
	once     sync.Once // closes lost
	lostErr  error     // set before lost is closed
	leadOnce sync.Once
	stopMu   sync.Mutex
	stop     context.CancelFunc // ends the campaign; nil before Run
	stopped  bool
	runCtx   context.Context // Run's; done when the campaign was ended on purpose
}

// New builds an elector from cfg (kubeconfig or in-cluster); it contacts
// nothing.
func New(cfg Config, reg prometheus.Registerer, log *slog.Logger) (*Elector, error) {
	v := validate.New("leader_election.")
	cfg.Validate(v)
	if err := v.Err(); err != nil {
		return nil, err
	}
	var rc *rest.Config
	var err error
	if cfg.Kubeconfig == "" {
		rc, err = rest.InClusterConfig()
	} else {
		rc, err = clientcmd.BuildConfigFromFlags("", cfg.Kubeconfig)
	}
	if err != nil {
		return nil, fmt.Errorf("leader election: kubernetes client config: %w", err)
	}
	rc.UserAgent = "siemship"
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("leader election: kubernetes client: %w", err)
	}
	return NewWithClient(cfg, client, reg, log)
}

// NewWithClient builds an elector that talks through client.
func NewWithClient(cfg Config, client kubernetes.Interface, reg prometheus.Registerer, log *slog.Logger) (*Elector, error) {
	ns, err := cfg.namespace()
	if err != nil {
		return nil, err
	}
	id := cfg.Identity
	if id == "" {
		host, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("leader election identity: %w", err)
		}
		id = host + "_" + rand.String(8)
	}
	inner, err := resourcelock.New(resourcelock.LeasesResourceLock, ns, cfg.LeaseName,
		client.CoreV1(), client.CoordinationV1(), resourcelock.ResourceLockConfig{Identity: id})
	if err != nil {
		return nil, fmt.Errorf("leader election lock: %w", err)
	}
	e := &Elector{cfg: cfg, ns: ns, identity: id, client: client, log: log.With("lease", ns+"/"+cfg.LeaseName, "identity", id),
		lock: &trackedLock{Interface: inner}, leading: make(chan struct{}), lost: make(chan struct{})}
	e.leadingG = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "siemship", Subsystem: "leader", Name: "leading",
		Help: "1 while this process holds the leader election Lease and runs the leader-only sources."})
	if err := reg.Register(e.leadingG); err != nil {
		return nil, fmt.Errorf("register leader metrics: %w", err)
	}
	e.le, err = leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: e.lock, Name: cfg.LeaseName,
		LeaseDuration: cfg.LeaseDuration, RenewDeadline: cfg.RenewDeadline, RetryPeriod: cfg.RetryPeriod,
		// Released only after the pipeline stopped and wrote its final
		// checkpoint (Run's caller cancels last), so a standby takes over at
		// once on a rollout instead of after lease_duration.
		ReleaseOnCancel: true,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(context.Context) {
				e.leadOnce.Do(func() {
					e.leadingG.Set(1)
					e.log.Info("leading: starting the leader-only sources")
					close(e.leading)
				})
			},
			OnStoppedLeading: func() {
				e.leadingG.Set(0)
				if e.isLeading() && !e.endedOnPurpose() {
					e.markLost(fmt.Errorf("%w: lease %s/%s not renewed within renew_deadline %s", ErrLost, e.ns, cfg.LeaseName, cfg.RenewDeadline))
				}
			},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("leader election: %w", err)
	}
	return e, nil
}

// Namespace is where the Lease and the ConfigMap live.
func (e *Elector) Namespace() string { return e.ns }

// Identity is this replica's name in the Lease.
func (e *Elector) Identity() string { return e.identity }

// Run campaigns until ctx ends or leadership is lost, whichever is first.
// Cancel ctx only after the leader-only sources wrote their final
// checkpoint: cancelling releases the Lease.
func (e *Elector) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	e.stopMu.Lock()
	if e.stopped {
		e.stopMu.Unlock()
		return nil
	}
	e.stop, e.runCtx = cancel, ctx
	e.stopMu.Unlock()
	e.log.Info("campaigning for the lease", "lease_duration", e.cfg.LeaseDuration.String(),
		"renew_deadline", e.cfg.RenewDeadline.String(), "retry_period", e.cfg.RetryPeriod.String())
	e.le.Run(ctx) // returns when ctx ends or renewal failed
	if e.isLost() {
		return e.lostErr
	}
	return nil
}

// Abdicate stops leading because of err (another writer of the offsets
// ConfigMap: two leaders). The leader-only sources stop.
func (e *Elector) Abdicate(err error) {
	e.markLost(fmt.Errorf("%w: %w", ErrLost, err))
	e.stopMu.Lock()
	defer e.stopMu.Unlock()
	e.stopped = true
	if e.stop != nil {
		e.stop()
	}
}

func (e *Elector) markLost(err error) {
	e.once.Do(func() {
		e.lostErr = err
		e.log.Error("stopped leading: stopping the leader-only sources; the agent exits to restart as a standby", "error", err)
		close(e.lost)
	})
}

func (e *Elector) endedOnPurpose() bool {
	e.stopMu.Lock()
	defer e.stopMu.Unlock()
	return e.runCtx != nil && e.runCtx.Err() != nil
}

func (e *Elector) isLeading() bool {
	select {
	case <-e.leading:
		return true
	default:
		return false
	}
}

func (e *Elector) isLost() bool {
	select {
	case <-e.lost:
		return true
	default:
		return false
	}
}

// Leading is closed once this process leads.
func (e *Elector) Leading() <-chan struct{} { return e.leading }

// Lost is closed once this process stopped leading; Err says why.
func (e *Elector) Lost() <-chan struct{} { return e.lost }

// Err is why leadership was lost, or nil.
func (e *Elector) Err() error {
	if e.isLost() {
		return e.lostErr
	}
	return nil
}

// Holding reports whether this process may write as the leader now: it
// leads, and wrote the Lease within renew_deadline. A standby takes the
// Lease only lease_duration after the last renewal it saw, so a write
// started within renew_deadline lands while nobody else can lead.
func (e *Elector) Holding() bool {
	if !e.isLeading() || e.isLost() {
		return false
	}
	last, _ := e.lock.state()
	return !last.IsZero() && time.Since(last) < e.cfg.RenewDeadline
}

// State describes the election for readiness and status: whether this
// process leads, who holds the Lease, and the last Lease error (nil when
// the last call succeeded).
func (e *Elector) State() (leading bool, holder string, err error) {
	_, err = e.lock.state()
	return e.isLeading() && !e.isLost(), e.le.GetLeader(), err
}

func isNotFound(err error) bool { return apierrors.IsNotFound(err) }
