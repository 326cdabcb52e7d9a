package workerclient

import (
	"sync"

	"github.com/mxgateway/mxgateway/internal/protocol"
)

// eventQueue is the per-session queue between the read loop and the
// session's distributor, bounded by count and by frame bytes. A full queue
// makes the read loop wait (flow control: the pipe fills and the worker
// buffers), never drops. An event is always admitted to an empty queue, so
// one larger than the byte bound still passes.
type eventQueue struct {
	maxEvents int
	maxBytes  int64

	mu       sync.Mutex
	items    []*protocol.Event
	head     int
	bytes    int64
	closed   bool
	notEmpty chan struct{} // capacity 1
	notFull  chan struct{} // capacity 1
}

func newEventQueue(maxEvents int, maxBytes int64) *eventQueue {
	return &eventQueue{
		maxEvents: maxEvents,
		maxBytes:  maxBytes,
		notEmpty:  make(chan struct{}, 1),
		notFull:   make(chan struct{}, 1),
	}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// fullLocked reports whether ev of size bytes must wait.
func (q *eventQueue) fullLocked(size int) bool {
	n := len(q.items) - q.head
	return n > 0 && (n >= q.maxEvents || q.bytes+int64(size) > q.maxBytes)
}

// tryPush queues ev if it fits and reports whether it did.
func (q *eventQueue) tryPush(ev *protocol.Event) bool {
	q.mu.Lock()
	if q.fullLocked(ev.Bytes) {
		q.mu.Unlock()
		return false
	}
	q.items = append(q.items, ev)
	q.bytes += int64(ev.Bytes)
	q.mu.Unlock()
	signal(q.notEmpty)
	return true
}

// push queues ev, waiting for room until stop is closed or expire (nil:
// never) fires; it reports whether ev was queued.
func (q *eventQueue) push(ev *protocol.Event, stop <-chan struct{}, expire <-chan struct{}) bool {
	for {
		if q.tryPush(ev) {
			return true
		}
		select {
		case <-q.notFull:
		case <-stop:
			return false
		case <-expire:
			return false
		}
	}
}

// takeBatch is the most events one take hands over: what the distributor
// holds outside the queue's bounds stays small.
const takeBatch = 256

// take moves up to takeBatch queued events to dst, oldest first, waiting
// while the queue is empty and open; ok is false once it is closed and
// drained.
func (q *eventQueue) take(dst []*protocol.Event) (_ []*protocol.Event, ok bool) {
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
			signal(q.notFull)
			if more {
				signal(q.notEmpty)
			}
			return dst, true
		}
		if q.closed {
			q.mu.Unlock()
			return dst, false
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
