package session

import (
	"context"
	"time"
)

// startSweeperLocked starts the lease sweeper once. m.mu must be held.
func (m *Manager) startSweeperLocked() {
	if m.sweepStop != nil {
		return
	}
	m.sweepStop = make(chan struct{})
	m.sweepDone = make(chan struct{})
	go m.sweep(m.sweepStop, m.sweepDone)
}

// sweep closes sessions whose lease ran out, every SweepInterval, until
// stop is closed.
func (m *Manager) sweep(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(m.opts.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			m.expireLeases()
		}
	}
}

// expireLeases closes every expired session (one without a stream or a
// running command whose lease ran out), each in its own goroutine so
// that one slow worker teardown never delays the others. Session.close
// marks the session closing at once, so a later sweep skips it.
func (m *Manager) expireLeases() {
	now := m.opts.Now()
	m.mu.Lock()
	var expired []*Session
	for _, s := range m.sessions {
		if s.expired(now) && !s.runningAbandoned() {
			expired = append(expired, s)
		}
	}
	if m.refusing {
		expired = nil // Shutdown closes everything itself
	}
	for _, s := range expired {
		m.closers.Go(func() { s.close(context.Background(), "lease expired") })
	}
	m.mu.Unlock()
}

// runningAbandoned reports whether the worker still runs commands whose
// callers stopped waiting. Like a command in flight, such a command holds
// the lease: the sweeper never closes a session under a running command
// (the heartbeat ceiling bounds how long one may run).
func (s *Session) runningAbandoned() bool { return s.w.Unanswered() > 0 }
