package gateway

import (
	"context"
	"errors"
	"math"
	"time"

	"google.golang.org/grpc"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/internal/session"
)

// Bounds of the StreamEvents filter (EventFilter in gateway.proto).
const (
	maxPercentDeadband = 100
	maxMinIntervalMs   = 3_600_000
)

// eventFilter validates a StreamEvents filter and returns its options.
func (v *validator) eventFilter(f *mxgatewayv1.EventFilter) session.FilterOptions {
	if f == nil {
		return session.FilterOptions{}
	}
	abs, pct, ms := f.GetAbsoluteDeadband(), f.GetPercentDeadband(), f.GetMinIntervalMs()
	if math.IsNaN(abs) || math.IsInf(abs, 0) || abs < 0 {
		v.add("filter.absolute_deadband", "must be a finite number >= 0 (got %v)", abs)
	}
	if math.IsNaN(pct) || pct < 0 || pct > maxPercentDeadband {
		v.add("filter.percent_deadband", "must be between 0 and %d (got %v)", maxPercentDeadband, pct)
	}
	if ms > maxMinIntervalMs {
		v.add("filter.min_interval_ms", "must be at most %d (one hour; got %d)", maxMinIntervalMs, ms)
	}
	return session.FilterOptions{AbsoluteDeadband: abs, PercentDeadband: pct, MinInterval: time.Duration(ms) * time.Millisecond}
}

// filteredSender sends one stream's events through its filter (nil: none).
// It runs in the stream's one sending goroutine.
type filteredSender struct {
	stream  grpc.ServerStreamingServer[mxgatewayv1.StreamEventsResponse]
	filter  *session.Filter
	lastSeq uint64 // the highest sequence sent
	sent    func(*mxgatewayv1.Event)
}

func (fs *filteredSender) send(ev *mxgatewayv1.Event) error {
	delayed := ev.GetSequence() < fs.lastSeq
	fs.lastSeq = max(fs.lastSeq, ev.GetSequence())
	if err := fs.stream.Send(&mxgatewayv1.StreamEventsResponse{Event: ev, Delayed: delayed}); err != nil {
		return err
	}
	fs.sent(ev)
	return nil
}

// flush sends the held events that are due at now.
func (fs *filteredSender) flush(now time.Time) error {
	if fs.filter == nil {
		return nil
	}
	for _, ev := range fs.filter.Due(now) {
		if err := fs.send(ev); err != nil {
			return err
		}
	}
	return nil
}

// offer sends ev now, or leaves it to the filter.
func (fs *filteredSender) offer(ev *mxgatewayv1.Event, now time.Time) error {
	if err := fs.flush(now); err != nil {
		return err
	}
	if fs.filter != nil && !fs.filter.Offer(ev, now) {
		return nil
	}
	return fs.send(ev)
}

// next waits for the subscription's next event, waking up in time to send
// a held event when it is due. After such a wake-up it returns a nil event
// and the error of sending (sendErr); err is the subscription's.
func (fs *filteredSender) next(ctx context.Context, sub *session.Subscription) (ev *mxgatewayv1.Event, sendErr, err error) {
	due := time.Time{}
	if fs.filter != nil {
		due = fs.filter.NextDue()
	}
	if due.IsZero() {
		ev, err = sub.Next(ctx)
		return ev, nil, err
	}
	wctx, cancel := context.WithDeadline(ctx, due)
	defer cancel()
	ev, err = sub.Next(wctx)
	if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		return nil, fs.flush(time.Now()), nil
	}
	return ev, nil, err
}
