package gateway

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"
)

// DefaultStreamWriteTimeout is how long one event stream send may stay
// blocked (the client stopped reading and flow control is exhausted)
// before the stream ends.
const DefaultStreamWriteTimeout = 30 * time.Second

// ErrWriteDeadline ends a stream whose send stayed blocked past the write
// timeout: the client stopped reading.
var ErrWriteDeadline = errors.New("gateway: stream send blocked past the write timeout")

// deadlineStream bounds every Send of a server stream: the send runs in
// the stream's sender goroutine while the handler waits at most the write
// timeout (or until ctx ends). After a timeout the handler returns, which
// makes gRPC finish the stream and unblocks the abandoned send; no later
// Send is made. Send and stop must be called from one goroutine.
type deadlineStream[T any] struct {
	grpc.ServerStreamingServer[T]
	ctx     context.Context
	timeout time.Duration
	timer   *time.Timer

	reqs    chan *T
	results chan error
	done    chan struct{} // closed when the sender goroutine returned
	failed  error         // sticky: the stream is unusable after a timeout
}

func newDeadlineStream[T any](ctx context.Context, s grpc.ServerStreamingServer[T], timeout time.Duration) *deadlineStream[T] {
	d := &deadlineStream[T]{
		ServerStreamingServer: s, ctx: ctx, timeout: timeout,
		reqs: make(chan *T), results: make(chan error, 1), done: make(chan struct{}),
	}
	go d.sender()
	return d
}

func (d *deadlineStream[T]) sender() {
	defer close(d.done)
	for m := range d.reqs {
		d.results <- d.ServerStreamingServer.Send(m)
	}
}

// Send sends m, failing with ErrWriteDeadline when that takes longer than
// the timeout and with ctx's error when ctx ends first.
func (d *deadlineStream[T]) Send(m *T) error {
	if d.failed != nil {
		return d.failed
	}
	d.reqs <- m
	if d.timer == nil {
		d.timer = time.NewTimer(d.timeout)
	} else {
		d.timer.Reset(d.timeout)
	}
	select {
	case err := <-d.results:
		d.timer.Stop()
		return err
	case <-d.timer.C:
		d.failed = fmt.Errorf("%w (%v)", ErrWriteDeadline, d.timeout)
	case <-d.ctx.Done():
		d.failed = d.ctx.Err()
	}
	return d.failed
}

// stop ends the sender goroutine. After a timeout the goroutine is still
// inside the blocked send; it returns once the handler returned and gRPC
// finished the stream, so stop does not wait for it then.
func (d *deadlineStream[T]) stop() {
	close(d.reqs)
	if d.failed == nil {
		<-d.done
	}
}
