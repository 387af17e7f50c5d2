package pipeline

import (
	"maps"
	"sync"
)

// Loops tracks long-running loops for /healthz: a loop that returned while
// the agent runs is dead, and the process should be restarted. Safe for
// concurrent use.
type Loops struct {
	mu      sync.Mutex
	running map[string]bool
	stopped map[string]string
}

// NewLoops returns an empty tracker.
func NewLoops() *Loops { return &Loops{running: map[string]bool{}, stopped: map[string]string{}} }

// Loop wraps a loop's body so its liveness is tracked.
func (l *Loops) Loop(name string, body func() error) func() {
	l.mu.Lock()
	l.running[name] = true
	l.mu.Unlock()
	return func() {
		err := body()
		l.mu.Lock()
		defer l.mu.Unlock()
		delete(l.running, name)
		reason := "returned"
		if err != nil {
			reason = err.Error()
		}
		l.stopped[name] = reason
	}
}

// Dead returns the loops that stopped, with why; nil when none did.
func (l *Loops) Dead() map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.stopped) == 0 {
		return nil
	}
	return maps.Clone(l.stopped)
}
