package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Event is one event of a session, in the session's sequence order. Exactly
// one of DataChange, WriteComplete, OperationComplete, BufferedDataChange and
// Gap is non-nil.
type Event struct {
	p       *mxgatewayv1.Event
	rec     *SessionRecreated
	delayed bool
}

// EventFromProto wraps a wire event.
func EventFromProto(p *mxgatewayv1.Event) Event { return Event{p: p} }

// Proto returns the wire form; it must not be modified (the decoder shares
// equal sub-messages, such as a quality or a status, between events).
func (e Event) Proto() *mxgatewayv1.Event { return e.p }

// Sequence is the contiguous per-session sequence number (for a gap marker,
// the sequence of the first event after the gap).
func (e Event) Sequence() uint64 { return e.p.GetSequence() }

// Family is the kind of event.
func (e Event) Family() mxgatewayv1.EventFamily { return e.p.GetFamily() }

// SessionID is the session the event belongs to.
func (e Event) SessionID() string { return e.p.GetSessionId() }

// WorkerTime is when the worker's event sink received the event.
func (e Event) WorkerTime() time.Time { return tsOrZero(e.p.GetWorkerTime()) }

// GatewayTime is when the gateway received the event.
func (e Event) GatewayTime() time.Time { return tsOrZero(e.p.GetGatewayTime()) }

// Gap returns the replay-gap marker, or nil. A gap means events were lost to
// this subscriber (the gateway's replay ring no longer reached back far
// enough); re-read the state you depend on.
func (e Event) Gap() *ReplayGap {
	g := e.p.GetReplayGap()
	if g == nil && e.p.GetFamily() != mxgatewayv1.EventFamily_EVENT_FAMILY_REPLAY_GAP {
		return nil
	}
	return &ReplayGap{
		RequestedAfter: g.GetRequestedAfterSequence(), FirstAvailable: g.GetFirstAvailableSequence(), Reason: g.GetReason(),
	}
}

// Delayed reports whether a Filter's minimum interval held the event back,
// so that it follows events with higher sequence numbers.
func (e Event) Delayed() bool { return e.delayed }

// Recreated returns the marker of a Recovering session that had to open a
// new session, or nil. Values may have been missed; sequences start again
// after it, and the fresh initial values of the re-advised items follow.
func (e Event) Recreated() *SessionRecreated { return e.rec }

// DataChange returns the OnDataChange body, or nil.
func (e Event) DataChange() *DataChange {
	// Small enough to inline, so that a caller that keeps the result to
	// itself (the usual loop over Events) has it on its stack, not one heap
	// allocation per event.
	out := new(DataChange)
	if !out.fill(e.p) {
		return nil
	}
	return out
}

// fill sets d from the event's OnDataChange body and reports whether it
// has one.
func (d *DataChange) fill(ev *mxgatewayv1.Event) bool {
	p := ev.GetDataChange()
	if p == nil {
		return false
	}
	*d = DataChange{
		ServerHandle: p.GetServerHandle(), ItemHandle: p.GetItemHandle(), Value: ValueFromProto(p.GetValue()),
		Quality: QualityFromProto(p.GetQuality()), Timestamp: tsOrZero(p.GetTimestamp()), Statuses: p.GetStatuses(),
	}
	return true
}

// WriteComplete returns the OnWriteComplete body, or nil.
func (e Event) WriteComplete() *WriteComplete {
	w := e.p.GetWriteComplete()
	if w == nil {
		return nil
	}
	return &WriteComplete{ServerHandle: w.GetServerHandle(), ItemHandle: w.GetItemHandle(), Statuses: w.GetStatuses()}
}

// OperationComplete returns the OperationComplete body, or nil.
func (e Event) OperationComplete() *OperationComplete {
	o := e.p.GetOperationComplete()
	if o == nil {
		return nil
	}
	return &OperationComplete{ServerHandle: o.GetServerHandle(), ItemHandle: o.GetItemHandle(), Statuses: o.GetStatuses()}
}

// BufferedDataChange returns the OnBufferedDataChange body, or nil.
func (e Event) BufferedDataChange() *BufferedDataChange {
	b := e.p.GetBufferedDataChange()
	if b == nil {
		return nil
	}
	out := &BufferedDataChange{ServerHandle: b.GetServerHandle(), ItemHandle: b.GetItemHandle(), Statuses: b.GetStatuses()}
	for _, s := range b.GetSamples() {
		out.Samples = append(out.Samples, Sample{
			Value: ValueFromProto(s.GetValue()), Quality: QualityFromProto(s.GetQuality()), Timestamp: tsOrZero(s.GetTimestamp()),
		})
	}
	return out
}

// String describes the event on one line.
func (e Event) String() string {
	switch {
	case e.rec != nil:
		return fmt.Sprintf("session recreated: %s replaced %s (%v); values may have been missed", e.rec.NewSessionID, e.rec.OldSessionID, e.rec.Cause)
	case e.Gap() != nil:
		g := e.Gap()
		return fmt.Sprintf("#%d replay gap after %d, resuming at %d (%s)", e.Sequence(), g.RequestedAfter, g.FirstAvailable, g.Reason)
	case e.DataChange() != nil:
		d := e.DataChange()
		return fmt.Sprintf("#%d OnDataChange item %d = %s (%s)", e.Sequence(), d.ItemHandle, d.Value, d.Quality)
	case e.WriteComplete() != nil:
		w := e.WriteComplete()
		return fmt.Sprintf("#%d OnWriteComplete item %d ok=%t", e.Sequence(), w.ItemHandle, w.Statuses.OK())
	}
	return fmt.Sprintf("#%d %s", e.Sequence(), e.Family())
}

func tsOrZero(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime().UTC()
}

// ReplayGap is the gateway's marker that a resuming subscriber lost events.
type ReplayGap struct {
	// RequestedAfter is the after_sequence that was asked for.
	RequestedAfter uint64
	// FirstAvailable is the oldest sequence still available; delivery
	// continues from here.
	FirstAvailable uint64
	// Reason says why, for example "ring trimmed by count".
	Reason string
}

// Missed returns how many events were lost.
func (g *ReplayGap) Missed() uint64 {
	if g.FirstAvailable <= g.RequestedAfter+1 {
		return 0
	}
	return g.FirstAvailable - g.RequestedAfter - 1
}

// DataChange is an OnDataChange: the first value after Advise, then each
// change of value or quality. Check Err (the statuses) before trusting Value.
type DataChange struct {
	ServerHandle int32     // hLMX
	ItemHandle   int32     // hItem
	Value        Value     // null when there is none
	Quality      Quality   // OPC DA quality word
	Timestamp    time.Time // the value's time, UTC
	Statuses     Statuses  // the MXSTATUS_PROXY array (the event's: read only)
}

// Err returns an *MxAccessError when the statuses report a failure.
func (d *DataChange) Err() error {
	if d.Statuses.OK() {
		return nil
	}
	return &MxAccessError{Method: "OnDataChange", Statuses: d.Statuses}
}

// WriteComplete is an OnWriteComplete: the outcome of one Write* call on the
// item (FIFO per item; a Pending one may precede the final one).
type WriteComplete struct {
	ServerHandle int32    // hLMX
	ItemHandle   int32    // hItem
	Statuses     Statuses // security refusals arrive here
}

// Err returns an *MxAccessError when the statuses report a failure.
func (w *WriteComplete) Err() error {
	if w.Statuses.OK() {
		return nil
	}
	return &MxAccessError{Method: "OnWriteComplete", Statuses: w.Statuses}
}

// OperationComplete completes an ILMXProxyServer4 operation when MXAccess
// sends one.
type OperationComplete struct {
	ServerHandle int32    // hLMX
	ItemHandle   int32    // hItem
	Statuses     Statuses // the MXSTATUS_PROXY array
}

// BufferedDataChange carries every change of a buffered item over one update
// interval, in change order.
type BufferedDataChange struct {
	ServerHandle int32    // hLMX
	ItemHandle   int32    // hItem
	Samples      []Sample // in change order
	Statuses     Statuses // the MXSTATUS_PROXY array
}

// Sample is one value/quality/timestamp of a buffered item.
type Sample struct {
	Value     Value
	Quality   Quality
	Timestamp time.Time
}

// SequenceError reports that the event sequence jumped without a replay-gap
// marker, or went backwards. Events would have been lost or duplicated
// silently, so the iterator stops instead.
type SequenceError struct {
	// Expected is the sequence that should have come next.
	Expected uint64
	// Got is the sequence that came.
	Got uint64
}

// Error implements error.
func (e *SequenceError) Error() string {
	return fmt.Sprintf("client: event sequence broken: expected %d, got %d without a replay-gap marker", e.Expected, e.Got)
}

// EventsOption configures Session.Events.
type EventsOption func(*eventsOptions)

type eventsOptions struct {
	after    uint64
	liveOnly bool
	conflate bool
	filter   *mxgatewayv1.EventFilter
	batch    batching
}

// batching is the wire form of Batch: max_batch and max_delay_ms.
type batching struct{ max, delayMs uint32 }

// Bounds of Batch, as the gateway enforces them (StreamEventsRequest).
const (
	MaxEventBatch      = mxgatewayv1.MaxStreamBatch
	MaxEventBatchDelay = mxgatewayv1.MaxStreamBatchDelay
)

func newBatching(maxEvents int, maxDelay time.Duration) batching {
	if maxEvents <= 1 {
		return batching{} // one event per message; a delay means nothing then
	}
	ms := maxDelay.Milliseconds()
	if maxDelay > 0 && ms == 0 {
		ms = 1
	}
	return batching{max: uint32(min(maxEvents, MaxEventBatch)), delayMs: uint32(min(ms, MaxEventBatchDelay.Milliseconds()))}
}

// Batch asks the gateway to send up to maxEvents events per message,
// waiting up to maxDelay (whole milliseconds; 0: never wait, send what is
// queued) for a batch to fill. It changes only the framing on the wire: the
// iterator still yields one Event at a time, in the same order, with the
// same sequence checks and resume. maxEvents <= 1 turns batching off (the
// default); values beyond MaxEventBatch and MaxEventBatchDelay are clamped
// to them. WithEventBatch sets it for every Events call of a client.
func Batch(maxEvents int, maxDelay time.Duration) EventsOption {
	return func(o *eventsOptions) { o.batch = newBatching(maxEvents, maxDelay) }
}

// AfterSequence starts after the given sequence (resuming where an earlier
// reader stopped). The default, 0, starts with the oldest event the
// gateway's replay ring still holds (a gap marker first when it no longer
// reaches sequence 1).
func AfterSequence(seq uint64) EventsOption { return func(o *eventsOptions) { o.after = seq } }

// LiveOnly starts at the live tail: only events after the stream attaches.
// Reconnects still resume from the last delivered sequence.
func LiveOnly() EventsOption { return func(o *eventsOptions) { o.liveOnly = true } }

// Conflate asks the gateway to deliver only the latest OnDataChange per item
// when this reader falls behind. This is a named non-parity mode for
// dashboards: sequence numbers then skip the merged events, so only their
// order is checked, not their contiguity.
func Conflate() EventsOption { return func(o *eventsOptions) { o.conflate = true } }

// EventFilter is the non-parity, per-subscriber filter of OnDataChange
// events that the gateway applies for one Events reader (never to the
// worker or to other readers). The first value of each item, and any change
// of quality, status or data type, always passes; non-numeric values are
// never dropped by the deadbands; other event families are never filtered.
type EventFilter struct {
	// AbsoluteDeadband drops a numeric change smaller than this from the
	// last value delivered for the item (0: off).
	AbsoluteDeadband float64
	// PercentDeadband drops a numeric change smaller than this percentage
	// (0 to 100) of the last delivered value's magnitude (0: off).
	PercentDeadband float64
	// MinInterval delivers at most one change per item per interval (whole
	// milliseconds, at most an hour); a change within it is held, replaced
	// by newer ones, and delivered when the interval has passed, with
	// Delayed true (0: off).
	MinInterval time.Duration
}

// Filter asks the gateway to filter this reader's OnDataChange events (a
// named non-parity mode, like Conflate): sequence numbers then skip the
// dropped events, and an event held by MinInterval arrives after events
// with higher sequence numbers (Delayed). After a reconnect the filter
// starts afresh, from the events after the last one delivered that was not
// delayed.
func Filter(f EventFilter) EventsOption {
	return func(o *eventsOptions) {
		ms := f.MinInterval.Milliseconds()
		if f.MinInterval > 0 && ms == 0 {
			ms = 1
		}
		o.filter = &mxgatewayv1.EventFilter{AbsoluteDeadband: f.AbsoluteDeadband, PercentDeadband: f.PercentDeadband,
			MinIntervalMs: uint32(min(ms, math.MaxUint32))}
	}
}

// Events returns the session's events as a Go iterator, in sequence order.
//
// It resumes by itself: when the stream or the connection drops, it
// reconnects with exponential backoff (WithEventBackoff) and asks for the
// events after the last one it delivered, so nothing is lost or repeated.
// When the gateway can no longer replay that far, the next element is an
// Event whose Gap is non-nil. Any other discontinuity ends the iteration
// with a *SequenceError; events are never skipped silently.
//
// The iteration ends without an error when ctx ends or the Session is
// closed, and with a final non-nil error when the failure is permanent: the
// session is unknown or faulted (ErrSessionNotFound, ErrSessionFaulted), the
// key is refused (ErrUnauthenticated, ErrPermissionDenied), or the backoff
// gave up. Breaking out of the loop closes the stream.
//
// Each call opens its own stream (a subscriber on the gateway); several may
// run at once.
//
// On a Recovering session, a session reported gone does not end the
// iteration: the session is recreated (see Recovering), the next element is
// an Event whose Recreated is non-nil, and the events of the new session
// follow from its first one.
func (s *Session) Events(ctx context.Context, opts ...EventsOption) iter.Seq2[Event, error] {
	eo := eventsOptions{batch: s.c.opts.eventBatch}
	for _, o := range opts {
		o(&eo)
	}
	return func(yield func(Event, error) bool) {
		if err := s.checkOpen(); err != nil {
			yield(Event{}, err)
			return
		}
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stop := context.AfterFunc(s.life, cancel)
		defer stop()
		s.streamEvents(ctx, eo, yield)
	}
}

// streamEvents is the resume loop behind Events.
func (s *Session) streamEvents(ctx context.Context, eo eventsOptions, yield func(Event, error) bool) {
	last := eo.after
	anchored := eo.after > 0 || !eo.liveOnly // do we know which sequence must come next?
	backoff := s.c.opts.eventBackoff
	failures := 0
	id := s.ID()
	// recreated delivers the marker of a recovery away from id and restarts
	// the sequence check for the new session.
	recreated := func(m *SessionRecreated) bool {
		id, last, anchored, failures = s.ID(), 0, true, 0
		return yield(Event{rec: m}, nil)
	}
	// deliver checks one received event against the sequence and yields it;
	// false ends the iteration (the reader stopped or the sequence broke).
	deliver := func(ev *mxgatewayv1.Event, delayed bool) bool {
		if s.rec != nil {
			ev = s.rec.toVirtualEvent(ev)
		}
		seq := ev.GetSequence()
		if delayed {
			// Held by the filter: older than what came before it, and
			// never where a resume starts.
			if eo.filter == nil || (anchored && seq > last) {
				yield(Event{}, &SequenceError{Expected: last + 1, Got: seq})
				return false
			}
			return yield(Event{p: ev, delayed: true}, nil)
		}
		if ev.GetReplayGap() != nil || ev.GetFamily() == mxgatewayv1.EventFamily_EVENT_FAMILY_REPLAY_GAP {
			// The marker's sequence is that of the first event after the gap.
			if anchored && seq != 0 && seq <= last {
				yield(Event{}, &SequenceError{Expected: last + 1, Got: seq})
				return false
			}
			if !yield(Event{p: ev}, nil) {
				return false
			}
			if seq > 0 {
				last = seq - 1
			}
			anchored, failures = true, 0
			return true
		}
		if anchored {
			ok := seq == last+1
			if eo.conflate || eo.filter != nil {
				ok = seq > last
			}
			if !ok {
				yield(Event{}, &SequenceError{Expected: last + 1, Got: seq})
				return false
			}
		}
		last, anchored, failures = seq, true, 0
		return yield(Event{p: ev}, nil)
	}
	for {
		if s.rec != nil && s.ID() != id {
			// Another reader or a command recovered the session meanwhile.
			m := s.rec.marker(id)
			if m == nil {
				m = &SessionRecreated{OldSessionID: id, NewSessionID: s.ID()}
			}
			if !recreated(m) {
				return
			}
		}
		req := &mxgatewayv1.StreamEventsRequest{SessionId: id, AfterSequence: last, Conflate: eo.conflate, Filter: eo.filter,
			MaxBatch: eo.batch.max, MaxDelayMs: eo.batch.delayMs}
		if !anchored {
			req.LiveOnly = true
		}
		stream, err := s.c.gw.StreamEvents(ctx, req, grpc.ForceCodecV2(newEventCodec()))
		for err == nil {
			var resp *mxgatewayv1.StreamEventsResponse
			resp, err = stream.Recv()
			if err != nil {
				break
			}
			if ev := resp.GetEvent(); ev != nil && !deliver(ev, resp.GetDelayed()) {
				return
			}
			// A batch (max_batch > 1): each event is checked and delivered
			// as if it had come alone.
			for _, ev := range resp.GetEvents() {
				if !deliver(ev, false) {
					return
				}
			}
		}
		if ctx.Err() != nil {
			return
		}
		var ge *GatewayError
		if !errors.Is(err, io.EOF) {
			if errors.As(fromRPC(ctx, err), &ge) && ge.Permanent() {
				if s.rec == nil || !sessionGone(ge) {
					yield(Event{}, ge)
					return
				}
				m, rerr := s.recoverFrom(ctx, id, ge)
				if rerr != nil {
					if ctx.Err() == nil {
						yield(Event{}, rerr)
					}
					return
				}
				if !recreated(m) {
					return
				}
				continue
			}
		}
		failures++
		if backoff.MaxAttempts > 0 && failures > backoff.MaxAttempts {
			if err == io.EOF {
				err = errors.New("stream ended")
			}
			yield(Event{}, fmt.Errorf("client: events: giving up after %d attempts: %w", backoff.MaxAttempts, fromRPC(ctx, err)))
			return
		}
		if backoff.sleep(ctx, failures-1) != nil {
			return
		}
	}
}
