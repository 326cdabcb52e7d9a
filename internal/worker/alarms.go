package worker

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/mxgateway/mxgateway/api/mxgateway/v1/mxtypes"
	workerv1 "github.com/mxgateway/mxgateway/api/mxgateway/worker/v1"
	"github.com/mxgateway/mxgateway/internal/backend"
	"github.com/mxgateway/mxgateway/internal/frame"
	"github.com/mxgateway/mxgateway/internal/logging"
	"github.com/mxgateway/mxgateway/internal/protocol"
)

// The gateway-internal alarm consumer requests (AlarmConsumerRequest):
// the native alarm provider's calls, queued and run by the command loop
// like commands (the backend is called from one goroutine), answered with
// an AlarmConsumerReply under the request's correlation id. A backend
// without backend.AlarmConsumer answers NOT_SUPPORTED.

// alarmKind names the requests in logs and heartbeats.
const alarmKind = "alarm_consumer"

// alarmReplyOverhead is what an AlarmConsumerReply envelope adds to its
// document, besides the frame's own overhead (status, hresult, message
// and the fields' tags and lengths), generously.
const alarmReplyOverhead = 1024

func (w *worker) hasAlarmConsumer() bool {
	ac, ok := w.be.(backend.AlarmConsumer)
	return ok && ac.HasAlarmConsumer()
}

func (w *worker) onAlarmRequest(correlation uint64, req *workerv1.AlarmConsumerRequest) {
	w.enqueue(&queuedCmd{correlation: correlation, alarm: req, received: time.Now()})
}

// replyNotRun answers a queued command or alarm request that never ran.
func (w *worker) replyNotRun(c *queuedCmd, msg string) {
	if c.alarm == nil {
		w.replyCancelled(c.correlation, msg)
		return
	}
	w.out.push(&workerv1.WorkerEnvelope{CorrelationId: c.correlation, Body: &workerv1.WorkerEnvelope_AlarmConsumerReply{
		AlarmConsumerReply: &workerv1.AlarmConsumerReply{Status: statusCancelled, Message: msg}}})
}

// maxAlarmDocument bounds a polled document so that its reply fits one
// frame.
func (w *worker) maxAlarmDocument() int {
	return max(w.maxFrame-frame.EventOverhead(len(w.cfg.SessionID))-alarmReplyOverhead, 0)
}

// runAlarm runs one alarm consumer request on the command loop.
func (w *worker) runAlarm(c *queuedCmd) bool {
	defer w.cmds.done()
	rep, err := w.alarmCall(c.alarm)
	if err != nil {
		w.log.Error("worker: backend failed", logging.KeyCommand, alarmKind, logging.KeyCorrelation, c.correlation, logging.KeyErr, err)
		w.fatal(protocol.ExitInternal, workerv1.FaultCode_FAULT_CODE_INTERNAL, fmt.Sprintf("worker: backend failed in %s: %v", alarmKind, err))
		return false
	}
	env := &workerv1.WorkerEnvelope{CorrelationId: c.correlation,
		Body: &workerv1.WorkerEnvelope_AlarmConsumerReply{AlarmConsumerReply: rep}}
	if size := proto.Size(env) + frame.EventOverhead(len(w.cfg.SessionID)); size > w.maxFrame {
		rep.Document = ""
		rep.Status, rep.Hresult = statusFailure, mxtypes.E_FAIL
		rep.Message = fmt.Sprintf("worker: the alarm consumer's reply (%d bytes) exceeds the frame limit of %d bytes", size, w.maxFrame)
	}
	w.sendControl(env)
	return true
}

// alarmCall makes the backend call; a non-nil error means the backend is
// broken (as for commands).
func (w *worker) alarmCall(req *workerv1.AlarmConsumerRequest) (*workerv1.AlarmConsumerReply, error) {
	ac, ok := w.be.(backend.AlarmConsumer)
	if !ok {
		return &workerv1.AlarmConsumerReply{Status: statusNotSupported, Hresult: mxtypes.E_NOTIMPL,
			Message: "worker: this backend has no native alarm consumer"}, nil
	}
	var (
		doc string
		err error
	)
	switch op := req.GetOp().(type) {
	case *workerv1.AlarmConsumerRequest_Open:
		err = ac.OpenAlarmConsumer(op.Open.GetQuery())
	case *workerv1.AlarmConsumerRequest_Poll:
		doc, err = ac.PollAlarmConsumer(w.maxAlarmDocument())
	case *workerv1.AlarmConsumerRequest_Ack:
		err = ac.AckAlarm(op.Ack.GetGuid(), op.Ack.GetComment(), op.Ack.GetUser())
	case *workerv1.AlarmConsumerRequest_Close:
		err = ac.CloseAlarmConsumer()
	default:
		return &workerv1.AlarmConsumerReply{Status: statusNotSupported, Hresult: mxtypes.E_NOTIMPL,
			Message: "worker: alarm consumer request without a known operation"}, nil
	}
	o, fatal := outcomeOf(err)
	if fatal != nil {
		return nil, fatal
	}
	return &workerv1.AlarmConsumerReply{Status: o.status, Hresult: o.hresult, Message: o.message, Document: doc}, nil
}
