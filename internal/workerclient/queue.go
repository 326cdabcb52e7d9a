package workerclient

import (
	"errors"
	"fmt"
	"sync"

	"github.com/mxgateway/mxgateway/internal/protocol"
)

// eventQueue is the per-session queue between the read loop and the
// session's distributor. It is bounded by the worker's event credit
// (credit), not by itself: the read loop puts what the worker was allowed
// to send and never waits.
type eventQueue struct {
	mu       sync.Mutex
	items    []*protocol.Event
	head     int
	bytes    int64 // frame bytes, for QueuedEvents
	closed   bool
	notEmpty chan struct{} // capacity 1
}

func newEventQueue() *eventQueue {
	return &eventQueue{notEmpty: make(chan struct{}, 1)}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// put queues ev.
func (q *eventQueue) put(ev *protocol.Event) {
	q.mu.Lock()
	q.items = append(q.items, ev)
	q.bytes += int64(ev.Bytes)
	q.mu.Unlock()
	signal(q.notEmpty)
}

// credit is the worker's event credit, kept by the gateway: how many
// events and worker-encoded bytes the worker may still send (its own view
// plus the grants on their way), and what the session took since the last
// grant. It equals the queue's room: what the worker may send, what is in
// the pipe or the queue, and what was taken but not yet granted back add
// up to the full credit.
type credit struct {
	mu                      sync.Mutex
	events, bytes           int64 // may still be sent
	fullEvents, fullBytes   int64
	takenEvents, takenBytes int64 // to grant back
	drained                 bool  // the queue was empty after the last take
	maxEvent                int64 // the largest event the worker may send: a frame
}

func newCredit(events int, bytes int64, maxEvent int) *credit {
	return &credit{events: int64(events), bytes: bytes, fullEvents: int64(events), fullBytes: bytes, maxEvent: int64(maxEvent)}
}

// errOverCredit: the worker sent an event it had no credit for.
var errOverCredit = errors.New("the worker sent beyond its event credit")

// spend accounts for one event of n worker-encoded bytes received. An
// event larger than the byte credit is allowed while the worker held all
// of its credit.
func (c *credit) spend(n int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	full := c.events == c.fullEvents && c.bytes == c.fullBytes
	if c.events < 1 || int64(n) > c.bytes && !full {
		return fmt.Errorf("%w: an event of %d bytes with %d events and %d bytes of credit left", errOverCredit, n, c.events, c.bytes)
	}
	c.events--
	c.bytes -= int64(n)
	return nil
}

// taken records events the session took; drained says the queue is empty
// now.
func (c *credit) taken(evs []*protocol.Event, drained bool) {
	var b int64
	for _, ev := range evs {
		b += int64(ev.WorkerBytes())
	}
	c.mu.Lock()
	c.takenEvents += int64(len(evs))
	c.takenBytes += b
	c.drained = drained
	c.mu.Unlock()
}

// dueLocked: a grant is worth a frame once half of either credit is
// waiting, or when the queue was drained and what the worker may still
// send might not cover its next event (one more event, or a frame of the
// largest size): only then can the worker be waiting for it. Below that,
// a drained queue grants nothing, so a quiet session does not pay a
// frame each way for every event it receives.
func (c *credit) dueLocked() bool {
	if c.takenEvents == 0 {
		return false
	}
	if 2*c.takenEvents >= c.fullEvents || 2*c.takenBytes >= c.fullBytes {
		return true
	}
	return c.drained && (c.events < 1 || c.bytes < c.maxEvent)
}

func (c *credit) due() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dueLocked()
}

// grant returns the grant to send, if one is due, and counts it as the
// worker's (the write follows at once).
func (c *credit) grant() (events uint32, bytes uint64, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.dueLocked() {
		return 0, 0, false
	}
	events, bytes = uint32(c.takenEvents), uint64(c.takenBytes)
	c.events += c.takenEvents
	c.bytes += c.takenBytes
	c.takenEvents, c.takenBytes, c.drained = 0, 0, false
	return events, bytes, true
}

// takeBatch is the most events one take hands over: what the distributor
// holds outside the queue's bounds stays small.
const takeBatch = 256

// take moves up to takeBatch queued events to dst, oldest first, waiting
// while the queue is empty and open; ok is false once it is closed and
// drained. drained reports that the take emptied the queue.
func (q *eventQueue) take(dst []*protocol.Event) (_ []*protocol.Event, ok, drained bool) {
	for {
		q.mu.Lock()
		if n := len(q.items) - q.head; n > 0 {
			n = min(n, takeBatch)
			for _, ev := range q.items[q.head : q.head+n] {
				q.bytes -= int64(ev.Bytes)
			}
			dst = append(dst, q.items[q.head:q.head+n]...)
			clear(q.items[q.head : q.head+n])
			q.head += n
			if q.head == len(q.items) {
				q.items, q.head = q.items[:0], 0
			} else if q.head >= 4096 && 2*q.head >= len(q.items) {
				m := copy(q.items, q.items[q.head:])
				clear(q.items[m:])
				q.items, q.head = q.items[:m], 0
			}
			more := q.head < len(q.items)
			q.mu.Unlock()
			if more {
				signal(q.notEmpty)
			}
			return dst, true, !more
		}
		if q.closed {
			q.mu.Unlock()
			return dst, false, true
		}
		q.mu.Unlock()
		<-q.notEmpty
	}
}

// close ends take once the queue is drained.
func (q *eventQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	signal(q.notEmpty)
}

// depth reports what is queued.
func (q *eventQueue) depth() (events int, bytes int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items) - q.head, q.bytes
}
