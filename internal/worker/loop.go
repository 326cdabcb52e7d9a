package worker

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mxgateway/mxgateway/api/mxgateway/v1/catalog"
	workerv1 "github.com/mxgateway/mxgateway/api/mxgateway/worker/v1"
	"github.com/mxgateway/mxgateway/internal/backend"
	"github.com/mxgateway/mxgateway/internal/frame"
	"github.com/mxgateway/mxgateway/internal/itemtable"
	"github.com/mxgateway/mxgateway/internal/logging"
	"github.com/mxgateway/mxgateway/internal/protocol"
)

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
			if c := w.cmds.cancel(target); c != nil {
				w.log.Debug("worker: cancelled queued command", logging.KeyCorrelation, target)
				w.replyNotRun(c, "worker: cancelled before it ran")
			}
		case *workerv1.WorkerEnvelope_EventCredit:
			if err := w.out.addCredit(b.EventCredit.GetEvents(), b.EventCredit.GetBytes()); err != nil {
				w.fatal(protocol.ExitProtocolError, workerv1.FaultCode_FAULT_CODE_PROTOCOL, err.Error())
				return
			}
		case *workerv1.WorkerEnvelope_AlarmConsumerRequest:
			w.onAlarmRequest(env.GetCorrelationId(), b.AlarmConsumerRequest)
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
	w.enqueue(&queuedCmd{correlation: correlation, cmd: cmd, received: time.Now()})
}

// enqueue queues a command or an alarm consumer request for the command
// loop; one that comes after shutdown is answered at once.
func (w *worker) enqueue(c *queuedCmd) {
	err := w.cmds.push(c)
	switch {
	case err == nil:
	case errors.Is(err, errQueueClosed):
		w.replyNotRun(c, "worker: shutting down")
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
	if ac, ok := w.be.(backend.AlarmConsumer); ok {
		if err := ac.CloseAlarmConsumer(); err != nil {
			warnings = append(warnings, "close the alarm consumer: "+err.Error())
		}
	}
	warnings = append(warnings, itemtable.Teardown(w.table, w.be)...)
	w.be.TakeParityWarnings()
	return append(warnings, w.be.Close()...)
}

func (w *worker) runCommand(c *queuedCmd) (ok bool) {
	if c.alarm != nil {
		return w.runAlarm(c)
	}
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
	w.sendControl(env)
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
		w.sendControl(&workerv1.WorkerEnvelope{Body: &workerv1.WorkerEnvelope_Heartbeat{Heartbeat: w.heartbeatBody(err == nil)}})
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
	// alarm, instead of cmd, is a gateway-internal alarm consumer request
	// (alarms.go).
	alarm    *workerv1.AlarmConsumerRequest
	received time.Time
}

// kind names c for logs and heartbeats.
func (c *queuedCmd) kind() string {
	if c.alarm != nil {
		return alarmKind
	}
	return catalog.Of(c.cmd.GetCommand()).Name()
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

// cancel removes a queued command and returns it; nil when it was no
// longer queued.
func (q *cmdQueue) cancel(correlation uint64) *queuedCmd {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, c := range q.items {
		if c.correlation == correlation {
			q.items = append(q.items[:i], q.items[i+1:]...)
			return c
		}
	}
	return nil
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
			q.kind = c.kind()
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
