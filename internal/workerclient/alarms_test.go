package workerclient

import (
	"context"
	"errors"
	"testing"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	workerv1 "github.com/mxgateway/mxgateway/api/mxgateway/worker/v1"
	"github.com/mxgateway/mxgateway/internal/frame"
)

type alarmResult struct {
	reply *workerv1.AlarmConsumerReply
	err   error
}

func (h *harness) alarmAsync(ctx context.Context, timeout time.Duration) <-chan alarmResult {
	ch := make(chan alarmResult, 1)
	go func() {
		r, err := h.c.AlarmConsumer(ctx, &workerv1.AlarmConsumerRequest{Op: &workerv1.AlarmConsumerRequest_Poll{Poll: &workerv1.AlarmConsumerPoll{}}}, timeout)
		ch <- alarmResult{r, err}
	}()
	return ch
}

func (f *fakeWorker) alarmReply(corr uint64, rep *workerv1.AlarmConsumerReply) {
	f.send(&workerv1.WorkerEnvelope{CorrelationId: corr, Body: &workerv1.WorkerEnvelope_AlarmConsumerReply{AlarmConsumerReply: rep}})
}

// TestAlarmConsumerRoundTrip: WorkerReady's alarm_consumer is reported,
// a request travels under its own correlation id and its reply, refusal
// included, comes back as the result, between commands.
func TestAlarmConsumerRoundTrip(t *testing.T) {
	h := newHarness(t)
	if h.c.HasAlarmConsumer() {
		t.Fatal("HasAlarmConsumer before Ready")
	}
	h.w.alarmConsumer = true
	h.start()
	if !h.c.HasAlarmConsumer() {
		t.Fatal("HasAlarmConsumer false after a WorkerReady that reports one")
	}
	res := h.alarmAsync(context.Background(), waitFor)
	env := h.w.read()
	if env.GetAlarmConsumerRequest().GetPoll() == nil || env.GetCorrelationId() == 0 {
		t.Fatalf("worker got %s with correlation %d", frame.BodyName(env), env.GetCorrelationId())
	}
	cmd := h.invokeAsync(context.Background(), registerCmd(), waitFor)
	cenv := h.w.read()
	// Answered out of order: each goes to its own caller.
	h.w.reply(cenv.GetCorrelationId(), &mxgatewayv1.Reply{Result: &mxgatewayv1.Reply_Register{Register: &mxgatewayv1.RegisterResult{ServerHandle: 3}}})
	h.w.alarmReply(env.GetCorrelationId(), &workerv1.AlarmConsumerReply{Status: mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK, Document: "<ALARMS/>"})
	if r := wait(t, cmd); r.err != nil || r.reply.GetRegister().GetServerHandle() != 3 {
		t.Fatalf("command: %v %v", r.reply, r.err)
	}
	if r := wait(t, res); r.err != nil || r.reply.GetDocument() != "<ALARMS/>" {
		t.Fatalf("alarm request: %v %v", r.reply, r.err)
	}

	res = h.alarmAsync(context.Background(), waitFor)
	env = h.w.read()
	h.w.alarmReply(env.GetCorrelationId(), &workerv1.AlarmConsumerReply{Status: mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_MXACCESS_FAILURE, Hresult: -1})
	if r := wait(t, res); r.err != nil || r.reply.GetStatus() != mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_MXACCESS_FAILURE {
		t.Fatalf("refused alarm request: %v %v", r.reply, r.err)
	}
	if h.c.State() != StateReady {
		t.Fatalf("state %v after a refusal", h.c.State())
	}
}

// TestAlarmConsumerCancelled: a caller that stops waiting gets its
// context's error, the worker is told to drop the request, a late reply is
// dropped and the client stays ready.
func TestAlarmConsumerCancelled(t *testing.T) {
	h := newHarness(t)
	h.start()
	ctx, cancel := context.WithCancel(context.Background())
	res := h.alarmAsync(ctx, waitFor)
	env := h.w.read()
	cancel()
	if r := wait(t, res); !errors.Is(r.err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", r.err)
	}
	if c := h.w.read().GetCancel(); c.GetTargetCorrelationId() != env.GetCorrelationId() {
		t.Fatalf("cancel %v, want target %d", c, env.GetCorrelationId())
	}
	h.w.alarmReply(env.GetCorrelationId(), &workerv1.AlarmConsumerReply{Status: mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_CANCELLED})
	cmd := h.invokeAsync(context.Background(), registerCmd(), waitFor)
	cenv := h.w.read()
	h.w.reply(cenv.GetCorrelationId(), &mxgatewayv1.Reply{})
	if r := wait(t, cmd); r.err != nil {
		t.Fatalf("command after the late alarm reply: %v", r.err)
	}
}

// TestAlarmConsumerWrongReplyKindFaults: a CommandReply to an alarm
// request, or an AlarmConsumerReply to a command, is a protocol violation.
func TestAlarmConsumerWrongReplyKindFaults(t *testing.T) {
	t.Run("command reply to an alarm request", func(t *testing.T) {
		h := newHarness(t)
		h.start()
		res := h.alarmAsync(context.Background(), waitFor)
		env := h.w.read()
		h.w.reply(env.GetCorrelationId(), &mxgatewayv1.Reply{})
		if err := h.waitDone(); !errors.Is(err, ErrProtocol) {
			t.Fatalf("err %v, want ErrProtocol", err)
		}
		if r := wait(t, res); !errors.Is(r.err, ErrProtocol) {
			t.Fatalf("caller's err %v, want ErrProtocol", r.err)
		}
	})
	t.Run("alarm reply to a command", func(t *testing.T) {
		h := newHarness(t)
		h.start()
		res := h.invokeAsync(context.Background(), registerCmd(), waitFor)
		env := h.w.read()
		h.w.alarmReply(env.GetCorrelationId(), &workerv1.AlarmConsumerReply{})
		if err := h.waitDone(); !errors.Is(err, ErrProtocol) {
			t.Fatalf("err %v, want ErrProtocol", err)
		}
		if r := wait(t, res); !errors.Is(r.err, ErrProtocol) {
			t.Fatalf("caller's err %v, want ErrProtocol", r.err)
		}
	})
	t.Run("alarm reply never issued", func(t *testing.T) {
		h := newHarness(t)
		h.start()
		h.w.alarmReply(77, &workerv1.AlarmConsumerReply{})
		if err := h.waitDone(); !errors.Is(err, ErrProtocol) {
			t.Fatalf("err %v, want ErrProtocol", err)
		}
	})
}
