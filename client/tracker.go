package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

var errItemRemoved = errors.New("client: item removed before its write completed")

// tracker follows the session's events for the conveniences: the latest
// value of each item of their registration, and the write completions
// awaited per item in FIFO order. It owns one goroutine, started by
// startTracker and waited for by stop.
type tracker struct {
	hLMX   int32
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	values  map[int32]*DataChange
	writes  map[int32][]*writeWaiter
	err     error         // terminal error of the event stream
	changed chan struct{} // closed and replaced on every value update
}

type writeWaiter struct {
	ch        chan Statuses // buffered 1; receives the final completion
	abandoned bool          // nobody waits any more; still absorbs its completion
	err       error         // why ch was closed without a completion, when known
}

func startTracker(s *Session, hLMX int32, after uint64) *tracker {
	ctx, cancel := context.WithCancel(s.life)
	t := &tracker{
		hLMX: hLMX, cancel: cancel, done: make(chan struct{}),
		values: map[int32]*DataChange{}, writes: map[int32][]*writeWaiter{}, changed: make(chan struct{}),
	}
	go t.run(ctx, s, after)
	return t
}

func (t *tracker) run(ctx context.Context, s *Session, after uint64) {
	defer close(t.done)
	var opts []EventsOption
	if after > 0 {
		opts = append(opts, AfterSequence(after))
	}
	err := ErrClosed
	s.streamEvents(ctx, eventsOptionsOf(opts), func(ev Event, e error) bool {
		if e != nil {
			err = e
			return false
		}
		t.handle(ev)
		return true
	})
	t.fail(err)
}

func eventsOptionsOf(opts []EventsOption) eventsOptions {
	var eo eventsOptions
	for _, o := range opts {
		o(&eo)
	}
	return eo
}

func (t *tracker) handle(ev Event) {
	if ev.Recreated() != nil {
		// A recovering session opened a new session: completions of writes
		// sent to the old one can never arrive, and first values come again.
		t.mu.Lock()
		for h, q := range t.writes {
			for _, w := range q {
				w.err = ErrSessionRecreated
				close(w.ch)
			}
			delete(t.writes, h)
		}
		clear(t.values)
		t.mu.Unlock()
		return
	}
	if d := ev.DataChange(); d != nil && d.ServerHandle == t.hLMX {
		t.mu.Lock()
		t.values[d.ItemHandle] = d
		close(t.changed)
		t.changed = make(chan struct{})
		t.mu.Unlock()
		return
	}
	if w := ev.WriteComplete(); w != nil && w.ServerHandle == t.hLMX {
		if w.Statuses.Pending() && w.Statuses.OK() {
			return // "accepted, in progress": the final one follows
		}
		t.mu.Lock()
		q := t.writes[w.ItemHandle]
		if len(q) > 0 {
			q[0].ch <- w.Statuses
			t.writes[w.ItemHandle] = q[1:]
		}
		t.mu.Unlock()
	}
}

// fail records the stream's end and wakes every waiter.
func (t *tracker) fail(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err == nil {
		t.err = fmt.Errorf("client: session events ended: %w", err)
	}
	close(t.changed)
	t.changed = make(chan struct{})
	for h, q := range t.writes {
		for _, w := range q {
			close(w.ch)
		}
		delete(t.writes, h)
	}
}

func (t *tracker) stop() {
	t.cancel()
	<-t.done
}

// firstValue waits until a data change for hItem has been seen.
func (t *tracker) firstValue(ctx context.Context, hItem int32) (*DataChange, error) {
	for {
		t.mu.Lock()
		d, err, ch := t.values[hItem], t.err, t.changed
		t.mu.Unlock()
		if d != nil {
			return d, nil
		}
		if err != nil {
			return nil, err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// expectWrite queues a completion waiter for hItem; call it before sending
// the write.
func (t *tracker) expectWrite(hItem int32) *writeWaiter {
	w := &writeWaiter{ch: make(chan Statuses, 1)}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err != nil {
		close(w.ch)
		return w
	}
	t.writes[hItem] = append(t.writes[hItem], w)
	return w
}

// cancelWrite removes a waiter whose write was refused synchronously.
func (t *tracker) cancelWrite(hItem int32, w *writeWaiter) {
	t.mu.Lock()
	defer t.mu.Unlock()
	q := t.writes[hItem]
	for i, x := range q {
		if x == w {
			t.writes[hItem] = append(q[:i:i], q[i+1:]...)
			return
		}
	}
}

// abandonWrite leaves the waiter queued so that a late completion is matched
// to it and not to the next write.
func (t *tracker) abandonWrite(w *writeWaiter) {
	t.mu.Lock()
	w.abandoned = true
	t.mu.Unlock()
}

func (t *tracker) waitWrite(ctx context.Context, w *writeWaiter) (Statuses, error) {
	select {
	case st, ok := <-w.ch:
		if !ok {
			t.mu.Lock()
			err := t.err
			if w.err != nil {
				err = w.err
			}
			t.mu.Unlock()
			if err == nil {
				err = errItemRemoved
			}
			return nil, err
		}
		return st, nil
	case <-ctx.Done():
		t.abandonWrite(w)
		return nil, ctx.Err()
	}
}

// forget drops everything keyed by a removed item handle; MXAccess reuses
// handle values.
func (t *tracker) forget(hItem int32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.values, hItem)
	for _, w := range t.writes[hItem] {
		close(w.ch)
	}
	delete(t.writes, hItem)
}
