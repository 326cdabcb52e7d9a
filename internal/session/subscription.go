package session

import (
	"context"
	"sync"
	"time"

	"github.com/mxgateway/mxgateway/internal/protocol"
)

// SubscribeRequest says where a new subscription starts.
type SubscribeRequest struct {
	// AfterSequence delivers events with a higher sequence first from the
	// replay ring, then live. 0 replays everything the ring still holds.
	AfterSequence uint64
	// LiveOnly starts at the live tail; AfterSequence is ignored.
	LiveOnly bool
	// Conflate (non-parity) keeps only the latest undelivered OnDataChange
	// per (server handle, item handle) while the subscriber is behind.
	// Other families are never conflated.
	Conflate bool
}

// Subscription is one event subscriber of a session. Its live queue is
// bounded by count and by bytes; the session's pump waits for room in it
// (flow control) and applies the slow-consumer policy only to a subscriber
// that makes no room within the stall timeout. Exactly one goroutine (the
// stream's sender) calls Next. Close detaches it.
type Subscription struct {
	s        *Session
	capacity int
	capBytes int64
	conflate bool
	notify   chan struct{} // capacity 1: "something changed"
	room     chan struct{} // capacity 1: "the live queue shrank or ended"

	mu        sync.Mutex
	replay    []*protocol.Event  // the snapshot taken at subscribe time
	ri        int                // next replay index
	q         []qEntry           // live queue; nil events were conflated away
	bytes     int64              // frame bytes of the live events in q
	head      int                // next live index in q
	base      uint64             // absolute position of q[0]
	live      int                // non-nil entries in q[head:]
	latest    map[itemKey]uint64 // conflation: item → absolute position in q
	conflated uint64
	err       error // terminal: delivered after the queue drains
	abort     bool  // deliver err at once, dropping the queue (slow consumer)
	closed    bool
}

type itemKey struct{ server, item int32 }

func keyOf(ev *protocol.Event) itemKey { return itemKey{ev.ServerHandle, ev.ItemHandle} }

type qEntry struct {
	ev   *protocol.Event
	size int
}

func newSubscription(s *Session, replay []*protocol.Event, capacity int, capBytes int64, conflate bool) *Subscription {
	sub := &Subscription{
		s:        s,
		capacity: capacity,
		capBytes: capBytes,
		conflate: conflate,
		notify:   make(chan struct{}, 1),
		room:     make(chan struct{}, 1),
		replay:   replay,
	}
	if conflate {
		sub.latest = make(map[itemKey]uint64)
	}
	return sub
}

// Next returns the next event, blocking until one is available, the
// subscription ends or ctx is done. After the subscription ends it returns
// the terminal error: ErrClosed when the session closed normally, an error
// wrapping ErrSlowConsumer when this subscriber was disconnected, or a
// *FaultError. Events received before the end are delivered first, except
// after a slow-consumer disconnect.
func (sub *Subscription) Next(ctx context.Context) (*protocol.Event, error) {
	for {
		sub.mu.Lock()
		if sub.abort {
			err := sub.err
			sub.mu.Unlock()
			return nil, err
		}
		if sub.ri < len(sub.replay) {
			ev := sub.replay[sub.ri]
			sub.replay[sub.ri] = nil
			sub.ri++
			if sub.ri == len(sub.replay) {
				sub.replay, sub.ri = nil, 0
			}
			sub.mu.Unlock()
			return ev, nil
		}
		if ev := sub.popLocked(); ev != nil {
			sub.mu.Unlock()
			return ev, nil
		}
		if sub.err != nil {
			err := sub.err
			sub.mu.Unlock()
			return nil, err
		}
		sub.mu.Unlock()
		select {
		case <-sub.notify:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Drain appends to dst up to max events that are already queued, without
// waiting, and returns it: what Next would return next, in the same order.
// It reports no terminal error; the next Next does. Like Next, only the
// stream's sender calls it.
func (sub *Subscription) Drain(dst []*protocol.Event, max int) []*protocol.Event {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	for n := 0; n < max && !sub.abort; n++ {
		if sub.ri < len(sub.replay) {
			dst = append(dst, sub.replay[sub.ri])
			sub.replay[sub.ri] = nil
			sub.ri++
			if sub.ri == len(sub.replay) {
				sub.replay, sub.ri = nil, 0
			}
			continue
		}
		ev := sub.popLocked()
		if ev == nil {
			break
		}
		dst = append(dst, ev)
	}
	return dst
}

// Close detaches the subscription from its session. Safe to call twice and
// concurrently with Next.
func (sub *Subscription) Close() {
	sub.s.detach(sub)
}

// Conflated reports how many events conflation dropped for this subscriber.
func (sub *Subscription) Conflated() uint64 {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	return sub.conflated
}

// queued is the number of events waiting for Next (replay and live).
func (sub *Subscription) queued() int {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if sub.abort {
		return 0
	}
	return len(sub.replay) - sub.ri + sub.live
}

// hasRoom reports whether offer would take ev (size bytes) now: the
// subscriber has ended, conflation replaces a queued value, or the live
// queue is below both bounds (an empty queue takes any event). Called by the
// pump with Session.mu held.
func (sub *Subscription) hasRoom(ev *protocol.Event, size int) bool {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if sub.err != nil || sub.closed {
		return true
	}
	bytes := sub.bytes
	if sub.conflate && ev.IsDataChange() {
		if pos, ok := sub.latest[keyOf(ev)]; ok {
			bytes -= int64(sub.q[pos-sub.base].size)
			return bytes+int64(size) <= sub.capBytes || sub.live == 1
		}
	}
	return sub.live == 0 || sub.live < sub.capacity && bytes+int64(size) <= sub.capBytes
}

// offer queues ev (size bytes) without blocking and reports false when the
// queue is full. Called by the pump with Session.mu held.
func (sub *Subscription) offer(ev *protocol.Event, size int) bool {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if sub.err != nil || sub.closed {
		return true
	}
	var key itemKey
	keyed := false
	if sub.conflate && ev.IsDataChange() {
		key, keyed = keyOf(ev), true
		if pos, ok := sub.latest[key]; ok {
			old := &sub.q[pos-sub.base]
			sub.bytes -= int64(old.size)
			*old = qEntry{}
			sub.live--
			sub.conflated++
		}
	}
	if sub.live > 0 && (sub.live >= sub.capacity || sub.bytes+int64(size) > sub.capBytes) {
		return false
	}
	if keyed {
		sub.latest[key] = sub.base + uint64(len(sub.q))
	}
	sub.q = append(sub.q, qEntry{ev, size})
	sub.bytes += int64(size)
	sub.live++
	if sub.conflate && len(sub.q)-sub.head > 2*sub.capacity {
		sub.compactLocked()
	}
	sub.signal()
	return true
}

// popLocked takes the next live event, or nil.
func (sub *Subscription) popLocked() *protocol.Event {
	for sub.head < len(sub.q) {
		pos := sub.base + uint64(sub.head)
		e := sub.q[sub.head]
		ev := e.ev
		sub.q[sub.head] = qEntry{}
		sub.head++
		if ev == nil {
			continue
		}
		sub.live--
		sub.bytes -= int64(e.size)
		signal(sub.room)
		if sub.conflate && ev.IsDataChange() {
			key := keyOf(ev)
			if sub.latest[key] == pos {
				delete(sub.latest, key)
			}
		}
		if sub.head >= 64 && sub.head*2 >= len(sub.q) {
			sub.compactLocked()
		}
		return ev
	}
	sub.base += uint64(len(sub.q))
	sub.q, sub.head = sub.q[:0], 0
	return nil
}

// compactLocked drops consumed and conflated slots in place and renumbers
// the conflation positions.
func (sub *Subscription) compactLocked() {
	n := 0
	for _, e := range sub.q[sub.head:] {
		if e.ev != nil {
			sub.q[n] = e
			n++
		}
	}
	clear(sub.q[n:])
	sub.base += uint64(len(sub.q)) // positions are never reused
	sub.q, sub.head = sub.q[:n], 0
	if sub.conflate {
		clear(sub.latest)
		for i, e := range sub.q {
			if e.ev.IsDataChange() {
				sub.latest[keyOf(e.ev)] = sub.base + uint64(i)
			}
		}
	}
}

// end records the terminal error; queued events are still delivered.
func (sub *Subscription) end(err error) {
	sub.mu.Lock()
	if sub.err == nil {
		sub.err = err
	}
	sub.mu.Unlock()
	sub.signal()
	signal(sub.room)
}

// fail ends the subscription at once, dropping whatever is queued.
func (sub *Subscription) fail(err error) {
	sub.mu.Lock()
	if sub.err == nil {
		sub.err = err
	}
	sub.abort = true
	sub.replay, sub.ri = nil, 0
	sub.q, sub.head, sub.live, sub.bytes = nil, 0, 0, 0
	if sub.latest != nil {
		clear(sub.latest)
	}
	sub.mu.Unlock()
	sub.signal()
	signal(sub.room)
}

func (sub *Subscription) signal() { signal(sub.notify) }

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// waitRoom waits until sub has room for ev (size bytes). It returns true
// when there is room, false when the subscriber made no room at all for
// stall (it is slow: the caller applies the policy) or stop or gone was
// closed. Called by the pump without Session.mu.
func (sub *Subscription) waitRoom(ev *protocol.Event, size int, stall time.Duration, stop, gone <-chan struct{}) bool {
	t := time.NewTimer(stall)
	defer t.Stop()
	for {
		select {
		case <-sub.room:
			if sub.hasRoom(ev, size) {
				return true
			}
			// It is reading: the stall clock starts again.
			if !t.Stop() {
				<-t.C
			}
			t.Reset(stall)
		case <-t.C:
			return sub.hasRoom(ev, size)
		case <-stop:
			return false
		case <-gone:
			return false
		}
	}
}
