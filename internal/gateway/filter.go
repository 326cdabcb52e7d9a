package gateway

import (
	"context"
	"errors"
	"math"
	"time"

	"google.golang.org/grpc"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/internal/protocol"
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

// Bounds of StreamEvents batching (max_batch, max_delay_ms in gateway.proto).
const (
	maxBatchEvents = mxgatewayv1.MaxStreamBatch
	maxBatchDelay  = uint32(mxgatewayv1.MaxStreamBatchDelay / time.Millisecond)
	// maxBatchBytes stops a batch short of the SDK's default 4 MiB receive
	// limit with room to spare: a batch is closed once it reaches this.
	maxBatchBytes = 1 << 20
)

// batching validates the batching fields of a StreamEvents request and
// returns the batch size (1: no batching) and the longest wait for a batch.
func (v *validator) batching(req *mxgatewayv1.StreamEventsRequest) (int, time.Duration) {
	n, ms := req.GetMaxBatch(), req.GetMaxDelayMs()
	if n > maxBatchEvents {
		v.add("max_batch", "must be at most %d (got %d)", maxBatchEvents, n)
	}
	if ms > maxBatchDelay {
		v.add("max_delay_ms", "must be at most %d (got %d)", maxBatchDelay, ms)
	}
	if ms > 0 && n <= 1 {
		v.add("max_delay_ms", "needs max_batch > 1 (got max_batch %d)", n)
	}
	return int(max(n, 1)), time.Duration(ms) * time.Millisecond
}

// filteredSender sends one stream's events through its filter (nil: none),
// one per message or, with maxBatch > 1, in batches. It runs in the
// stream's one sending goroutine. Events are sent as they were encoded once
// for all their streams (protocol.Event.Encoded): a response is only the
// framing around those bytes (encodedResponse); a batch is written straight
// from the worker's encodings into its message (batchResponse).
type filteredSender struct {
	stream  grpc.ServerStream
	filter  *session.Filter
	lastSeq uint64 // the highest sequence sent or batched
	sent    func(*protocol.Event)

	maxBatch   int           // 1: one event per message
	maxDelay   time.Duration // how long fill waits for a batch to grow
	batch      []*protocol.Event
	batchBytes int
	drained    []*protocol.Event // fill's scratch
}

func (fs *filteredSender) send(ev *protocol.Event) error {
	delayed := ev.Sequence < fs.lastSeq
	fs.lastSeq = max(fs.lastSeq, ev.Sequence)
	if fs.maxBatch > 1 {
		if !delayed {
			n, err := ev.EncodedSize()
			if err != nil {
				return err
			}
			fs.batch = append(fs.batch, ev)
			fs.batchBytes += n
			if len(fs.batch) >= fs.maxBatch || fs.batchBytes >= maxBatchBytes {
				return fs.sendBatch()
			}
			return nil
		}
		// A delayed event comes alone, after what was batched before it.
		if err := fs.sendBatch(); err != nil {
			return err
		}
	}
	if err := fs.sendOne(ev, delayed); err != nil {
		return err
	}
	fs.sent(ev)
	return nil
}

// sendOne sends ev in a message of its own.
func (fs *filteredSender) sendOne(ev *protocol.Event, delayed bool) error {
	r, err := singleResponse(ev, delayed)
	if err != nil {
		return err
	}
	return fs.stream.SendMsg(r)
}

// sendBatch sends the batched events, if any, in one message.
func (fs *filteredSender) sendBatch() error {
	if len(fs.batch) == 0 {
		return nil
	}
	batch := fs.batch
	fs.batch, fs.batchBytes = fs.batch[:0], 0
	r, err := batchResponse(batch)
	if err == nil {
		err = fs.stream.SendMsg(r)
	}
	if err == nil {
		for _, ev := range batch {
			fs.sent(ev)
		}
	}
	clear(batch)
	return err
}

// fill, after an event was offered, offers what else is queued (waiting up
// to maxDelay for more) until the batch is full, then sends the batch. A
// terminal error of the subscription or ctx is left for the next call of
// next, which reports it again.
func (fs *filteredSender) fill(ctx context.Context, sub *session.Subscription) error {
	if fs.maxBatch <= 1 {
		return nil
	}
	var deadline time.Time
	for len(fs.batch) > 0 && len(fs.batch) < fs.maxBatch && fs.batchBytes < maxBatchBytes {
		fs.drained = sub.Drain(fs.drained[:0], fs.maxBatch-len(fs.batch))
		if len(fs.drained) > 0 {
			now := time.Now()
			for i, ev := range fs.drained {
				fs.drained[i] = nil
				if err := fs.offer(ev, now); err != nil {
					return err
				}
			}
			continue
		}
		if fs.maxDelay <= 0 {
			break
		}
		if deadline.IsZero() {
			deadline = time.Now().Add(fs.maxDelay)
		}
		wctx, cancel := context.WithDeadline(ctx, deadline)
		ev, err := sub.Next(wctx)
		cancel()
		if err != nil {
			break
		}
		if err := fs.offer(ev, time.Now()); err != nil {
			return err
		}
	}
	return fs.sendBatch()
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

// now is the time offer needs: the clock's with a filter, and the zero
// time without one, which reads nothing of it (a clock read is a tenth of
// the send loop's CPU on the unbatched path).
func (fs *filteredSender) now() time.Time {
	if fs.filter == nil {
		return time.Time{}
	}
	return time.Now()
}

// offer sends ev now, or leaves it to the filter.
func (fs *filteredSender) offer(ev *protocol.Event, now time.Time) error {
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
func (fs *filteredSender) next(ctx context.Context, sub *session.Subscription) (ev *protocol.Event, sendErr, err error) {
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
		sendErr = fs.flush(time.Now())
		if sendErr == nil {
			sendErr = fs.sendBatch() // due events that were not delayed
		}
		return nil, sendErr, nil
	}
	return ev, nil, err
}
