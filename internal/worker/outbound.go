package worker

import (
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"

	workerv1 "github.com/mxgateway/mxgateway/api/mxgateway/worker/v1"
	"github.com/mxgateway/mxgateway/internal/frame"
	"github.com/mxgateway/mxgateway/internal/protocol"
)

// outEvent is one queued encoded mxgateway.v1.Event and its sequence.
type outEvent struct {
	ev  []byte
	seq uint64
}

// outbox is what the worker has to send, in two lanes:
//
//   - the control lane: command replies, heartbeats, the ShutdownAck. It
//     goes ahead of the event lane, so a reply or a heartbeat never waits
//     behind a burst of queued events. Control messages keep their order
//     among themselves. They are bounded by the command queue and the
//     heartbeat cadence.
//   - the event lane: encoded events, strictly in sequence order, bounded
//     by count and by encoded bytes (the burst buffer of the flow control).
//
// Events also wait for credit (flow control): the gateway grants room for
// a number of events and of encoded event bytes (GatewayHello, then
// EventCredit as its session takes them), and the writer takes only the
// events the credit covers. An event larger than the byte credit goes
// while the worker holds all of its credit. Events without credit stay
// queued, within the lane's bounds; control messages never need credit.
//
// The ordering rule between the lanes: a control message may overtake
// events queued before it, but an event never overtakes a control message
// queued before it (the writer takes both lanes under one lock and writes
// the control lane first, and between two events it sends whatever
// control message arrived meanwhile). A fault jumps both lanes and ends
// them.
//
// wire is held by whoever writes to the connection: the writer goroutine
// for each batch, or a goroutine that sends a control message itself
// while the writer is idle (sendControl), saving the hand-off to the
// writer and its wake-up on the path of every command.
type outbox struct {
	mu  sync.Mutex
	ctl []*workerv1.WorkerEnvelope
	evs []outEvent // evs[head:] are queued
	// head is the first queued event of evs.
	head       int
	limit      int
	limitBytes int64
	fault      *workerv1.Fault
	faultTaken bool
	final      bool
	wake       chan struct{}

	// The event credit (mu): what the gateway has room for, and all of
	// it (the initial grant).
	creditEvents, creditBytes int64
	fullEvents, fullBytes     int64

	wire sync.Mutex

	// ctlQueued is len(ctl), for the writer to look at between events
	// without the lock.
	ctlQueued atomic.Int32
	// events counts events queued or in the writer's hands; it is only
	// increased under mu.
	events  atomic.Int64
	bytes   atomic.Int64 // encoded bytes of those events
	faulted atomic.Bool
	// unsent counts messages queued or being written but not yet flushed
	// to the connection (Exiter waits for it to reach zero).
	unsent atomic.Int64
}

func newOutbox(limit int, limitBytes int64) *outbox {
	return &outbox{limit: limit, limitBytes: limitBytes, wake: make(chan struct{}, 1)}
}

// setLimits replaces the bounds where n or b is positive.
func (o *outbox) setLimits(n int, b int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if n > 0 {
		o.limit = n
	}
	if b > 0 {
		o.limitBytes = b
	}
}

// setCredit sets the initial credit, all of it (before the writer runs).
func (o *outbox) setCredit(events uint32, bytes uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.creditEvents, o.creditBytes = int64(events), int64(bytes)
	o.fullEvents, o.fullBytes = o.creditEvents, o.creditBytes
}

// errCreditOverflow: a grant beyond what was sent.
var errCreditOverflow = errors.New("worker: EventCredit grants more than the events sent")

// addCredit adds a grant. The gateway returns only what it got, so a
// grant that takes the credit past the initial one is a protocol error.
func (o *outbox) addCredit(events uint32, bytes uint64) error {
	o.mu.Lock()
	e, b := o.creditEvents+int64(events), o.creditBytes+int64(bytes)
	if e > o.fullEvents || b > o.fullBytes {
		o.mu.Unlock()
		return fmt.Errorf("%w: %d events and %d bytes of credit after the grant, at most %d and %d",
			errCreditOverflow, e, b, o.fullEvents, o.fullBytes)
	}
	o.creditEvents, o.creditBytes = e, b
	o.mu.Unlock()
	o.signal()
	return nil
}

func (o *outbox) signal() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// closedLocked reports whether nothing more may be queued: nothing follows
// a Fault, and nothing follows the ShutdownAck.
func (o *outbox) closedLocked() bool { return o.fault != nil || o.final }

// push queues a control envelope (after a fault or finish it is dropped).
func (o *outbox) push(env *workerv1.WorkerEnvelope) {
	o.mu.Lock()
	if o.closedLocked() {
		o.mu.Unlock()
		return
	}
	o.ctl = append(o.ctl, env)
	o.ctlQueued.Store(int32(len(o.ctl)))
	o.unsent.Add(1)
	o.mu.Unlock()
	o.signal()
}

// pushEvent queues an encoded event without blocking. It returns false,
// with what is queued, when the event does not fit the bounds. An event is
// always admitted to an empty queue, so one larger than the byte bound (but
// within the frame limit) still goes.
func (o *outbox) pushEvent(ev []byte, seq uint64) (ok bool, queued int, queuedBytes int64) {
	o.mu.Lock()
	if o.closedLocked() {
		o.mu.Unlock()
		return true, 0, 0
	}
	n, b := o.events.Load(), o.bytes.Load()
	if n > 0 && (n >= int64(o.limit) || b+int64(len(ev)) > o.limitBytes) {
		o.mu.Unlock()
		return false, int(n), b
	}
	o.events.Add(1)
	o.bytes.Add(int64(len(ev)))
	o.unsent.Add(1)
	o.evs = append(o.evs, outEvent{ev: ev, seq: seq})
	o.mu.Unlock()
	o.signal()
	return true, 0, 0
}

// setFault makes f the next and last thing the writer sends.
func (o *outbox) setFault(f *workerv1.Fault) {
	o.mu.Lock()
	if o.fault == nil {
		o.fault = f
		o.faulted.Store(true)
	}
	o.mu.Unlock()
	o.signal()
}

// finish lets the writer end once everything queued is written. last,
// when set, is queued first, under the same lock, so that nothing can
// follow it (the ShutdownAck).
func (o *outbox) finish(last *workerv1.WorkerEnvelope) {
	o.mu.Lock()
	if last != nil && !o.closedLocked() {
		o.ctl = append(o.ctl, last)
		o.ctlQueued.Store(int32(len(o.ctl)))
		o.unsent.Add(1)
	}
	o.final = true
	o.mu.Unlock()
	o.signal()
}

// take returns what there is to write without blocking: the control lane
// (swapping in the spare slice) and the queued events the credit covers
// (copied to evBuf, the credit spent), or the fault, or done. All empty
// means wait for a wake-up (a message, a grant).
func (o *outbox) take(ctlBuf []*workerv1.WorkerEnvelope, evBuf []outEvent) (ctl []*workerv1.WorkerEnvelope, evs []outEvent, fault *workerv1.Fault, done bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	queued := o.evs[o.head:]
	switch {
	case o.fault != nil && !o.faultTaken:
		o.faultTaken = true
		return nil, nil, o.fault, false
	case o.faultTaken:
		return nil, nil, nil, true
	case len(o.ctl) == 0 && len(queued) == 0:
		return nil, nil, nil, o.final
	}
	k := 0
	for k < len(queued) && o.creditEvents > 0 {
		n := int64(len(queued[k].ev))
		if n > o.creditBytes && (o.creditBytes != o.fullBytes || o.creditEvents != o.fullEvents) {
			break
		}
		o.creditEvents--
		o.creditBytes -= n
		k++
	}
	evs = append(evBuf[:0], queued[:k]...)
	clear(queued[:k])
	o.head += k
	switch {
	case o.head == len(o.evs):
		o.evs, o.head = o.evs[:0], 0
	case o.head >= 4096 && 2*o.head >= len(o.evs):
		m := copy(o.evs, o.evs[o.head:])
		clear(o.evs[m:])
		o.evs, o.head = o.evs[:m], 0
	}
	ctl, o.ctl = o.ctl, ctlBuf[:0]
	o.ctlQueued.Store(0)
	return ctl, evs, nil, false
}

// takeControl returns the control lane (the writer, between two events).
func (o *outbox) takeControl() []*workerv1.WorkerEnvelope {
	o.mu.Lock()
	defer o.mu.Unlock()
	ctl := o.ctl
	o.ctl = nil
	o.ctlQueued.Store(0)
	return ctl
}

// sendControl sends a control envelope. When the writer is idle and no
// control message is queued, the calling goroutine writes and flushes it
// itself (the common case of a command's reply); otherwise it joins the
// control lane. Only goroutines that may block on the pipe call it (the
// command and heartbeat goroutines, never the reader).
func (w *worker) sendControl(env *workerv1.WorkerEnvelope) {
	o := w.out
	if !o.wire.TryLock() {
		o.push(env)
		return
	}
	o.mu.Lock()
	switch {
	case o.closedLocked():
		o.mu.Unlock()
		o.wire.Unlock()
		return
	case len(o.ctl) > 0:
		o.mu.Unlock()
		o.wire.Unlock()
		o.push(env)
		return
	}
	o.unsent.Add(1)
	o.mu.Unlock()
	err := w.writeControl(env)
	if err == nil {
		err = w.pc.Flush()
	}
	o.unsent.Add(-1)
	o.wire.Unlock()
	if err != nil {
		w.writeFailed(err)
	}
}

// writeControl writes one control envelope (wire held).
func (w *worker) writeControl(env *workerv1.WorkerEnvelope) error {
	_, err := w.pc.Send(env)
	return err
}

// writeFailed ends the worker after a failed write: an oversized frame
// (nothing was sent; the sink and the reply check make it unreachable) is
// an internal fault, anything else a lost connection.
func (w *worker) writeFailed(err error) {
	if frame.CodeOf(err) == frame.CodeOversized {
		w.fatal(protocol.ExitInternal, workerv1.FaultCode_FAULT_CODE_INTERNAL,
			"worker: outbound message exceeds the frame limit: "+err.Error())
		return
	}
	w.terminate(ending{code: protocol.ExitConnectionLost, reason: "worker: write to gateway failed: " + err.Error()})
}

// writeLoop sends the outbox after the handshake: each batch under the
// wire lock, the control lane first, then the events, with any control
// message that arrives meanwhile sent before the next event. It flushes
// once per batch and after control messages.
func (w *worker) writeLoop() (err error) {
	defer func() {
		if r := recover(); r != nil {
			w.log.Error("worker: panic in writer", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = fmt.Errorf("worker: panic in writer: %v", r)
			w.terminate(ending{code: protocol.ExitInternal, reason: err.Error()})
		}
	}()
	var lastEvent uint64 // the sequence of the last event written
	var spareCtl []*workerv1.WorkerEnvelope
	var spareEvs []outEvent
	for {
		o := w.out
		o.wire.Lock()
		ctl, evs, fault, done := o.take(spareCtl, spareEvs)
		switch {
		case done:
			o.wire.Unlock()
			return nil
		case fault != nil:
			err := w.sendFault(fault, lastEvent)
			o.wire.Unlock()
			if err != nil {
				w.writeFailed(err)
				return err
			}
			continue // take reports done next
		case len(ctl) == 0 && len(evs) == 0:
			o.wire.Unlock()
			<-o.wake
			continue
		}
		n, err := w.writeBatch(ctl, evs, &lastEvent)
		o.unsent.Add(-int64(n))
		o.wire.Unlock()
		if err != nil {
			w.writeFailed(err)
			if frame.CodeOf(err) != frame.CodeOversized {
				return err
			}
			// Faulted: the next take returns the fault.
		}
		clear(ctl)
		clear(evs)
		spareCtl, spareEvs = ctl[:0], evs[:0]
	}
}

// sendFault sends the fault, the last frame (wire held).
func (w *worker) sendFault(fault *workerv1.Fault, lastEvent uint64) error {
	if fault.GetCode() == workerv1.FaultCode_FAULT_CODE_EVENT_OVERFLOW {
		fault = &workerv1.Fault{Code: fault.GetCode(),
			Message: fmt.Sprintf("%s; events after sequence %d were not sent", fault.GetMessage(), lastEvent)}
	}
	if _, err := w.pc.Send(&workerv1.WorkerEnvelope{Body: &workerv1.WorkerEnvelope_Fault{Fault: fault}}); err != nil {
		return err
	}
	if err := w.pc.Flush(); err != nil {
		return err
	}
	w.log.Debug("worker: fault sent", "code", fault.GetCode().String())
	return nil
}

// writeBatch writes the control messages, then the events, checking the
// control lane between events (wire held). n is how many queued messages
// it took, all of which leave the unsent count, written or not.
func (w *worker) writeBatch(ctl []*workerv1.WorkerEnvelope, evs []outEvent, lastEvent *uint64) (n int, err error) {
	o := w.out
	n = len(ctl) + len(evs)
	writeCtl := func(ctl []*workerv1.WorkerEnvelope) error {
		for i, env := range ctl {
			ctl[i] = nil
			if err := w.writeControl(env); err != nil {
				return err
			}
		}
		return nil
	}
	if err := writeCtl(ctl); err != nil {
		return n, err
	}
	if len(ctl) > 0 && len(evs) > 0 {
		// A reply or heartbeat does not wait for the events behind it.
		if err := w.pc.Flush(); err != nil {
			return n, err
		}
	}
	for i := range evs {
		if o.faulted.Load() {
			break
		}
		if o.ctlQueued.Load() > 0 {
			more := o.takeControl()
			n += len(more)
			if err := writeCtl(more); err != nil {
				return n, err
			}
			if err := w.pc.Flush(); err != nil {
				return n, err
			}
		}
		it := evs[i]
		evs[i] = outEvent{}
		// The sink encoded the event; only the envelope is added.
		if _, err := w.pc.SendEvent(it.ev); err != nil {
			return n, err
		}
		o.events.Add(-1)
		o.bytes.Add(-int64(len(it.ev)))
		*lastEvent = it.seq
	}
	return n, w.pc.Flush()
}
