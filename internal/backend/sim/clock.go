package sim

import (
	"sort"
	"sync"
	"time"
)

// Clock is the simulator's source of time. The simulator never reads the
// wall clock directly, so tests can drive it with a FakeClock.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// At returns a channel that receives once the clock reaches t (at once if
	// it already has) and a function that releases the wait early.
	At(t time.Time) (<-chan time.Time, func())
}

// RealClock is the wall clock.
type RealClock struct{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// At waits with a time.Timer.
func (RealClock) At(t time.Time) (<-chan time.Time, func()) {
	tm := time.NewTimer(time.Until(t))
	return tm.C, func() { tm.Stop() }
}

// FakeClock is a Clock that moves only when told to. It is safe for
// concurrent use.
type FakeClock struct {
	mu      sync.Mutex
	now     time.Time
	nextID  int
	waiters map[int]fakeWaiter
}

type fakeWaiter struct {
	at time.Time
	ch chan time.Time
}

// NewFakeClock returns a FakeClock set to start.
func NewFakeClock(start time.Time) *FakeClock {
	return &FakeClock{now: start, waiters: make(map[int]fakeWaiter)}
}

// Now returns the fake time.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// At returns a channel that fires when Advance or Set reaches t.
func (c *FakeClock) At(t time.Time) (<-chan time.Time, func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if !t.After(c.now) {
		ch <- c.now
		return ch, func() {}
	}
	id := c.nextID
	c.nextID++
	c.waiters[id] = fakeWaiter{at: t, ch: ch}
	return ch, func() {
		c.mu.Lock()
		delete(c.waiters, id)
		c.mu.Unlock()
	}
}

// Advance moves the clock forward by d and fires every wait that is due.
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.setLocked(c.now.Add(d))
	c.mu.Unlock()
}

// Set moves the clock to t (never backwards) and fires every wait that is due.
func (c *FakeClock) Set(t time.Time) {
	c.mu.Lock()
	if t.After(c.now) {
		c.setLocked(t)
	}
	c.mu.Unlock()
}

// Waiters returns how many waits are pending; tests use it to know that a
// goroutine has started waiting on the clock.
func (c *FakeClock) Waiters() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.waiters)
}

// Pending returns the times pending waits wake at, earliest first; tests
// use it to know that a goroutine is blocked on the clock.
func (c *FakeClock) Pending() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]time.Time, 0, len(c.waiters))
	for _, w := range c.waiters {
		out = append(out, w.at)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Before(out[j]) })
	return out
}

// WaitFor blocks until some wait is pending for exactly t, or timeout (real
// time) passes; it reports whether one was seen.
func (c *FakeClock) WaitFor(t time.Time, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		for _, p := range c.Pending() {
			if p.Equal(t) {
				return true
			}
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
}

func (c *FakeClock) setLocked(t time.Time) {
	c.now = t
	ids := make([]int, 0, len(c.waiters))
	for id, w := range c.waiters {
		if !w.at.After(t) {
			ids = append(ids, id)
		}
	}
	sort.Ints(ids)
	for _, id := range ids {
		c.waiters[id].ch <- t
		delete(c.waiters, id)
	}
}
