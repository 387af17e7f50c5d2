package leader

import (
	"context"
	"sync"
	"time"

	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// trackedLock wraps client-go's Lease lock to learn what the elector does
// not expose: when this replica last wrote the Lease as its holder (the
// fence for checkpoint writes) and the last error of a Lease call (for
// readiness; a missing RBAC rule shows there by name).
type trackedLock struct {
	resourcelock.Interface

	mu        sync.Mutex
	lastRenew time.Time // start of the last successful write holding the Lease
	lastErr   error
}

var _ resourcelock.Interface = (*trackedLock)(nil)

func (l *trackedLock) Get(ctx context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	rec, raw, err := l.Interface.Get(ctx)
	l.note(err, time.Time{}, false)
	return rec, raw, err
}

func (l *trackedLock) Create(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	start := time.Now()
	err := l.Interface.Create(ctx, ler)
	l.note(err, start, ler.HolderIdentity == l.Identity())
	return err
}

func (l *trackedLock) Update(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	start := time.Now()
	err := l.Interface.Update(ctx, ler)
	l.note(err, start, ler.HolderIdentity == l.Identity())
	return err
}

// note records the outcome of a call; a NotFound from Get is the normal
// first step of creating the Lease, not a problem.
func (l *trackedLock) note(err error, start time.Time, holding bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		if !isNotFound(err) {
			l.lastErr = err
		}
		return
	}
	l.lastErr = nil
	if !start.IsZero() {
		if holding {
			l.lastRenew = start
		} else {
			l.lastRenew = time.Time{} // released
		}
	}
}

func (l *trackedLock) state() (time.Time, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastRenew, l.lastErr
}
