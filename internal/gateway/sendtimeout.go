package gateway

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
)

// DefaultStreamWriteTimeout is how long one event stream send may stay
// blocked (the client stopped reading and flow control is exhausted)
// before the stream ends.
const DefaultStreamWriteTimeout = 30 * time.Second

// ErrWriteDeadline ends a stream whose send stayed blocked past the write
// timeout: the client stopped reading.
var ErrWriteDeadline = errors.New("gateway: stream send blocked past the write timeout")

// errSendAbandoned is what the sending loop gets once the handler gave
// up on it (a send past the write timeout, or the stream's context ended
// during a send): it must not send again and returns at once.
var errSendAbandoned = errors.New("gateway: stream abandoned by its handler")

// sendWatch bounds every send of an event stream without a hand-off per
// send: the loop that sends runs on a goroutine of its own and marks when
// each send begins and ends; the handler goroutine watches the mark and
// returns when one send has lasted past the write timeout, which makes
// gRPC finish the stream and unblocks the send. The state word makes the
// give-up and the end of a send exclusive, so no send starts after the
// handler returned.
type sendWatch struct {
	base time.Time
	// state is 0 between sends, the start of the current send in
	// nanoseconds after base while one runs, and -1 once abandoned.
	state atomic.Int64
}

func newSendWatch() *sendWatch { return &sendWatch{base: time.Now()} }

func (w *sendWatch) now() int64 { return max(1, int64(time.Since(w.base))) }

// begin marks the start of a send; false when the stream was abandoned.
func (w *sendWatch) begin() bool { return w.state.CompareAndSwap(0, w.now()) }

// end marks the end of a send; false when the stream was abandoned
// meanwhile.
func (w *sendWatch) end() bool {
	v := w.state.Load()
	return v > 0 && w.state.CompareAndSwap(v, 0)
}

// abandonStuck gives up on a send that has run longer than timeout.
func (w *sendWatch) abandonStuck(timeout time.Duration) bool {
	v := w.state.Load()
	return v > 0 && w.now()-v > int64(timeout) && w.state.CompareAndSwap(v, -1)
}

// abandonSending gives up on a send in progress; false when none is.
func (w *sendWatch) abandonSending() bool {
	v := w.state.Load()
	return v > 0 && w.state.CompareAndSwap(v, -1)
}

// abandon stops the loop from sending again, whatever it is doing.
func (w *sendWatch) abandon() { w.state.Store(-1) }

// wait returns the loop's result (done), or failed(ErrWriteDeadline) when
// a send stays blocked past timeout, or failed(ctx's error) when ctx ends
// while the loop is inside a send (gRPC does not see our ctx; a loop
// between sends notices ctx itself).
func (w *sendWatch) wait(ctx context.Context, done <-chan error, timeout time.Duration, failed func(error) error) error {
	period := max(timeout/8, time.Millisecond)
	tick := time.NewTicker(period)
	defer tick.Stop()
	ctxDone := ctx.Done()
	for {
		select {
		case err := <-done:
			return err
		case <-ctxDone:
			ctxDone = nil
			if w.abandonSending() {
				return failed(ctx.Err())
			}
			// Between sends: the loop ends by itself; watch closely in case
			// it had just begun one.
			tick.Reset(min(period, 10*time.Millisecond))
		case <-tick.C:
			if ctx.Err() != nil && w.abandonSending() {
				return failed(ctx.Err())
			}
			if w.abandonStuck(timeout) {
				return failed(fmt.Errorf("%w (%v)", ErrWriteDeadline, timeout))
			}
		}
	}
}

// watchedStream is an event stream whose every send is marked on a
// sendWatch.
type watchedStream struct {
	grpc.ServerStreamingServer[mxgatewayv1.StreamEventsResponse]
	w *sendWatch
}

// Send sends m unless the stream was abandoned.
func (s watchedStream) Send(m *mxgatewayv1.StreamEventsResponse) error { return s.SendMsg(m) }

// SendMsg sends m (a response or an *encodedResponse of one) unless the
// stream was abandoned.
func (s watchedStream) SendMsg(m any) error {
	if !s.w.begin() {
		return errSendAbandoned
	}
	err := s.ServerStreamingServer.SendMsg(m)
	if !s.w.end() {
		return errSendAbandoned
	}
	return err
}
