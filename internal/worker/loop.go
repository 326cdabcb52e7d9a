package worker

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mxgateway/mxgateway/api/mxgateway/v1/catalog"
	workerv1 "github.com/mxgateway/mxgateway/api/mxgateway/worker/v1"
	"github.com/mxgateway/mxgateway/internal/frame"
	"github.com/mxgateway/mxgateway/internal/itemtable"
	"github.com/mxgateway/mxgateway/internal/logging"
	"github.com/mxgateway/mxgateway/internal/protocol"
)

// outItem is one queued outbound message: a control envelope (reply,
// heartbeat, ack) or an event. The writer stamps version, session and
// sequence.
type outItem struct {
	env *workerv1.WorkerEnvelope
	ev  []byte // an encoded mxgateway.v1.Event
	seq uint64 // its event sequence
}

// outbox is the single FIFO the writer drains. Events and control messages
// share it, so a reply never overtakes an event the backend produced before
// it. Only events are bounded, by count and by encoded bytes (control
// messages are bounded by the command queue and the heartbeat cadence); a
// fault jumps the queue and ends it.
type outbox struct {
	mu         sync.Mutex
	items      []outItem
	limit      int
	limitBytes int64
	fault      *workerv1.Fault
	faultTaken bool
	final      bool
	wake       chan struct{}

	// events counts events queued or in the writer's hands; it is only
	// increased under mu.
	events  atomic.Int64
	bytes   atomic.Int64 // encoded bytes of those events
	faulted atomic.Bool
	// unsent counts items queued or written but not yet flushed to the
	// connection (Exiter waits for it to reach zero).
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

func (o *outbox) signal() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// push queues a control envelope. After a fault or finish it is dropped:
// nothing follows a Fault, and nothing follows the ShutdownAck.
func (o *outbox) push(env *workerv1.WorkerEnvelope) {
	o.mu.Lock()
	if o.fault != nil || o.final {
		o.mu.Unlock()
		return
	}
	o.items = append(o.items, outItem{env: env})
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
	if o.fault != nil || o.final {
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
	o.items = append(o.items, outItem{ev: ev, seq: seq})
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

// finish lets the writer end once everything queued is written.
func (o *outbox) finish() {
	o.mu.Lock()
	o.final = true
	o.mu.Unlock()
	o.signal()
}

// take blocks until there is something to write. It returns the queued
// items (swapping in buf as the new queue), or the fault, or done.
func (o *outbox) take(buf []outItem) (items []outItem, fault *workerv1.Fault, done bool) {
	o.mu.Lock()
	for {
		if o.fault != nil && !o.faultTaken {
			o.faultTaken = true
			f := o.fault
			o.mu.Unlock()
			return nil, f, false
		}
		if o.faultTaken {
			o.mu.Unlock()
			return nil, nil, true
		}
		if len(o.items) > 0 {
			items = o.items
			o.items = buf[:0]
			o.mu.Unlock()
			return items, nil, false
		}
		if o.final {
			o.mu.Unlock()
			return nil, nil, true
		}
		o.mu.Unlock()
		<-o.wake
		o.mu.Lock()
	}
}

// writeLoop is the only user of the frame.Writer after the handshake.
func (w *worker) writeLoop() (err error) {
	defer func() {
		if r := recover(); r != nil {
			w.log.Error("worker: panic in writer", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = fmt.Errorf("worker: panic in writer: %v", r)
			w.terminate(ending{code: protocol.ExitInternal, reason: err.Error()})
		}
		if err != nil {
			w.terminate(ending{code: protocol.ExitConnectionLost, reason: "worker: write to gateway failed: " + err.Error()})
		}
	}()
	var lastEvent uint64 // the sequence of the last event written
	var spare []outItem
	for {
		items, fault, done := w.out.take(spare)
		if done {
			return nil
		}
		if fault != nil {
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
			continue // take reports done next
		}
		for i := range items {
			if w.out.faulted.Load() {
				break
			}
			it := items[i]
			items[i] = outItem{}
			var err error
			if it.ev != nil {
				// The sink encoded the event; only the envelope is added.
				_, err = w.pc.SendEvent(it.ev)
			} else {
				_, err = w.pc.Send(it.env)
			}
			if err != nil {
				if frame.CodeOf(err) == frame.CodeOversized {
					// Nothing was sent (the sink and the reply check
					// make this unreachable).
					w.fatal(protocol.ExitInternal, workerv1.FaultCode_FAULT_CODE_INTERNAL,
						"worker: outbound message exceeds the frame limit: "+err.Error())
					break
				}
				return err
			}
			if it.ev != nil {
				w.out.events.Add(-1)
				w.out.bytes.Add(-int64(len(it.ev)))
				lastEvent = it.seq
			}
		}
		clear(items)
		spare = items[:0]
		if err := w.pc.Flush(); err != nil {
			return err
		}
		w.out.unsent.Add(-int64(len(items)))
	}
}

// readLoop reads the gateway's frames until the connection ends.
func (w *worker) readLoop() {
	defer func() {
		if rec := recover(); rec != nil {
			w.log.Error("worker: panic in reader", "panic", fmt.Sprint(rec), "stack", string(debug.Stack()))
			w.fatal(protocol.ExitInternal, workerv1.FaultCode_FAULT_CODE_INTERNAL, fmt.Sprintf("worker: panic in reader: %v", rec))
		}
	}()
	for {
		env, _, err := w.pc.Recv()
		if err != nil {
			w.readFailed(err)
			return
		}
		switch b := env.GetBody().(type) {
		case *workerv1.WorkerEnvelope_Command:
			w.onCommand(env.GetCorrelationId(), b.Command)
		case *workerv1.WorkerEnvelope_Cancel:
			target := b.Cancel.GetTargetCorrelationId()
			if w.cmds.cancel(target) {
				w.log.Debug("worker: cancelled queued command", logging.KeyCorrelation, target)
				w.replyCancelled(target, "worker: cancelled before it ran")
			}
		case *workerv1.WorkerEnvelope_Shutdown:
			w.log.Info("worker: shutdown requested", "reason", b.Shutdown.GetReason())
			w.terminate(ending{code: protocol.ExitOK, reason: "shutdown: " + b.Shutdown.GetReason(), shutdown: b.Shutdown})
		default:
			w.fatal(protocol.ExitProtocolError, workerv1.FaultCode_FAULT_CODE_PROTOCOL,
				fmt.Sprintf("worker: unexpected %s from the gateway", bodyName(env)))
			return
		}
	}
}

func bodyName(env *workerv1.WorkerEnvelope) string {
	m := env.ProtoReflect()
	if fd := m.WhichOneof(m.Descriptor().Oneofs().ByName("body")); fd != nil {
		return string(fd.Name())
	}
	return "empty body"
}

func (w *worker) readFailed(err error) {
	if w.ending() != nil {
		return // we are stopping; the connection ending is expected
	}
	switch frame.CodeOf(err) {
	case 0, frame.CodeEndOfStream, frame.CodeTruncated:
		w.terminate(ending{code: protocol.ExitConnectionLost, reason: "worker: gateway connection lost: " + err.Error()})
	default:
		w.fatal(protocol.ExitProtocolError, workerv1.FaultCode_FAULT_CODE_PROTOCOL, "worker: bad frame from the gateway: "+err.Error())
	}
}

func (w *worker) onCommand(correlation uint64, cmd *workerv1.WorkerCommand) {
	err := w.cmds.push(&queuedCmd{correlation: correlation, cmd: cmd, received: time.Now()})
	switch {
	case err == nil:
	case errors.Is(err, errQueueClosed):
		w.replyCancelled(correlation, "worker: shutting down")
	default:
		w.fatal(protocol.ExitProtocolError, workerv1.FaultCode_FAULT_CODE_PROTOCOL, err.Error())
	}
}

// commandLoop runs commands one at a time and, when told to stop, closes the
// backend on the same goroutine that made every other backend call.
func (w *worker) commandLoop(closed chan<- []string) {
	defer func() { closed <- w.teardown() }()
	for {
		c, ok := w.cmds.next()
		if !ok {
			return
		}
		if !w.runCommand(c) {
			return
		}
	}
}

// teardown runs the MXAccess teardown over the authoritative item table
// (unadvise all, remove all, unregister all), then releases the backend.
func (w *worker) teardown() (warnings []string) {
	defer func() {
		if r := recover(); r != nil {
			w.log.Error("worker: panic in backend teardown", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			warnings = append(warnings, fmt.Sprintf("panic in backend teardown: %v", r))
		}
	}()
	warnings = itemtable.Teardown(w.table, w.be)
	w.be.TakeParityWarnings()
	return append(warnings, w.be.Close()...)
}

func (w *worker) runCommand(c *queuedCmd) (ok bool) {
	kind := catalog.Of(c.cmd.GetCommand()).Name()
	defer w.cmds.done()
	defer func() {
		if r := recover(); r != nil {
			w.log.Error("worker: panic running command", logging.KeyCommand, kind,
				logging.KeyCorrelation, c.correlation, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			w.fatal(protocol.ExitInternal, workerv1.FaultCode_FAULT_CODE_INTERNAL, fmt.Sprintf("worker: panic running %s: %v", kind, r))
			ok = false
		}
	}()
	start := time.Now()
	d, err := w.execute(c)
	took := time.Since(start)
	if err != nil {
		w.log.Error("worker: backend failed", logging.KeyCommand, kind, logging.KeyCorrelation, c.correlation, logging.KeyErr, err)
		w.fatal(protocol.ExitInternal, workerv1.FaultCode_FAULT_CODE_INTERNAL, fmt.Sprintf("worker: backend failed in %s: %v", kind, err))
		return false
	}
	w.log.Debug("worker: command done", logging.KeyCommand, kind, logging.KeyCorrelation, c.correlation,
		"status", d.reply.GetStatus().String(), "hresult", d.reply.GetHresult(), "took", took.String(),
		"refused", d.denial != nil)
	body := &workerv1.WorkerCommandReply{
		Reply:    d.reply,
		Duration: durationpb.New(took),
		Denial:   d.denial,
	}
	env := &workerv1.WorkerEnvelope{
		CorrelationId: c.correlation,
		Body:          &workerv1.WorkerEnvelope_CommandReply{CommandReply: body},
	}
	// A reply that would not fit a frame must not reach the writer, whose
	// oversized frame would end the worker: the call fails alone.
	if size := proto.Size(env) + frame.EventOverhead(len(w.cfg.SessionID)); size > w.maxFrame {
		if catalog.Of(c.cmd.GetCommand()).Changes() {
			// The gateway's mirror of the item table could not follow.
			w.fatal(protocol.ExitInternal, workerv1.FaultCode_FAULT_CODE_INTERNAL,
				fmt.Sprintf("worker: the reply of %s (%d bytes) exceeds the frame limit of %d bytes", kind, size, w.maxFrame))
			return false
		}
		w.log.Warn("worker: reply exceeds the frame limit; the call fails alone", logging.KeyCommand, kind,
			logging.KeyCorrelation, c.correlation, "bytes", size, "max_frame_bytes", w.maxFrame)
		body.Reply, body.Denial = nil, nil
		body.OversizedReplyBytes = uint64(size)
	}
	w.out.push(env)
	return true
}

// heartbeatLoop sends a heartbeat every interval, each after a round trip
// through the backend's thread: a wedged backend stops heartbeats.
func (w *worker) heartbeatLoop(ctx context.Context) {
	defer func() {
		if r := recover(); r != nil {
			w.log.Error("worker: panic in heartbeat", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			w.fatal(protocol.ExitInternal, workerv1.FaultCode_FAULT_CODE_INTERNAL, fmt.Sprintf("worker: panic in heartbeat: %v", r))
		}
	}()
	t := time.NewTicker(w.heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := w.be.Ping(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			w.log.Warn("worker: backend liveness probe failed", logging.KeyErr, err)
		}
		w.out.push(&workerv1.WorkerEnvelope{Body: &workerv1.WorkerEnvelope_Heartbeat{Heartbeat: w.heartbeatBody(err == nil)}})
	}
}

func (w *worker) heartbeatBody(responsive bool) *workerv1.Heartbeat {
	depth, running, kind, since := w.cmds.snapshot()
	w.mu.Lock()
	last := w.eventSeq
	w.mu.Unlock()
	hb := &workerv1.Heartbeat{
		SentAt:              timestamppb.Now(),
		EventQueueDepth:     uint32(max(w.out.events.Load(), 0)),
		EventQueueBytes:     uint64(max(w.out.bytes.Load(), 0)),
		CommandQueueDepth:   uint32(depth),
		CommandInFlight:     running,
		CommandInFlightKind: kind,
		LastEventSequence:   last,
		BackendResponsive:   responsive,
	}
	if running != 0 {
		hb.CommandRunningFor = durationpb.New(time.Since(since))
	}
	return hb
}

// queuedCmd is a command waiting for the command goroutine.
type queuedCmd struct {
	correlation uint64
	cmd         *workerv1.WorkerCommand
	received    time.Time
}

var (
	errQueueClosed = errors.New("worker: command queue closed")
	errQueueFull   = errors.New("worker: command queue full")
)

// cmdQueue is the bounded FIFO of commands behind the running one.
type cmdQueue struct {
	mu     sync.Mutex
	items  []*queuedCmd
	limit  int
	closed bool
	wake   chan struct{}

	running uint64
	kind    string
	started time.Time
}

func newCmdQueue(limit int) *cmdQueue {
	return &cmdQueue{limit: limit, wake: make(chan struct{}, 1)}
}

func (q *cmdQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *cmdQueue) push(c *queuedCmd) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return errQueueClosed
	}
	if len(q.items) >= q.limit {
		return fmt.Errorf("%w: %d commands queued", errQueueFull, len(q.items))
	}
	q.items = append(q.items, c)
	q.signal()
	return nil
}

// cancel removes a queued command; it reports whether it was still queued.
func (q *cmdQueue) cancel(correlation uint64) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, c := range q.items {
		if c.correlation == correlation {
			q.items = append(q.items[:i], q.items[i+1:]...)
			return true
		}
	}
	return false
}

// next blocks for the next command; false once the queue is closed.
func (q *cmdQueue) next() (*queuedCmd, bool) {
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return nil, false
		}
		if len(q.items) > 0 {
			c := q.items[0]
			q.items[0] = nil
			q.items = q.items[1:]
			q.running = c.correlation
			q.kind = catalog.Of(c.cmd.GetCommand()).Name()
			q.started = time.Now()
			q.mu.Unlock()
			return c, true
		}
		q.mu.Unlock()
		<-q.wake
	}
}

// done clears the command in flight.
func (q *cmdQueue) done() {
	q.mu.Lock()
	q.running, q.kind = 0, ""
	q.mu.Unlock()
}

// close stops the queue and returns the commands that will never run.
func (q *cmdQueue) close() []*queuedCmd {
	q.mu.Lock()
	defer q.mu.Unlock()
	left := q.items
	q.items = nil
	q.closed = true
	q.signal()
	return left
}

func (q *cmdQueue) snapshot() (depth int, running uint64, kind string, started time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items), q.running, q.kind, q.started
}
