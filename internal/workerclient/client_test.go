package workerclient

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/prototext"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	workerv1 "github.com/mxgateway/mxgateway/api/mxgateway/worker/v1"
	"github.com/mxgateway/mxgateway/internal/frame"
	"github.com/mxgateway/mxgateway/internal/protocol"
	"github.com/mxgateway/mxgateway/internal/testutil"
)

// Seed: StartAsync_WithWorkerHelloAndReady_EntersReadyState.
func TestStartEntersReady(t *testing.T) {
	h := newHarness(t, noProcess)
	if h.c.State() != StateCreated {
		t.Fatalf("state before Start: %v", h.c.State())
	}
	if _, err := h.c.Invoke(context.Background(), registerCmd(), nil, time.Second); !errors.Is(err, ErrNotReady) {
		t.Fatalf("Invoke before Start: %v, want ErrNotReady", err)
	}
	h.start()
	if h.c.State() != StateReady {
		t.Fatalf("state %v, want ready", h.c.State())
	}
	if h.c.PID() != testPID {
		t.Errorf("PID %d, want %d (from WorkerHello)", h.c.PID(), testPID)
	}
	if b := h.c.Backend(); b.GetKind() != "sim" || b.GetModelName() != "fake" {
		t.Errorf("Backend %v", b)
	}
	if h.c.Err() != nil {
		t.Errorf("Err while ready: %v", h.c.Err())
	}
	select {
	case <-h.c.Done():
		t.Fatal("Done closed while ready")
	default:
	}
	if err := h.c.Start(context.Background()); err == nil {
		t.Fatal("second Start succeeded")
	}
}

func TestGatewayHelloAnnouncesOptions(t *testing.T) {
	h := newHarness(t, func(o *Options) {
		o.HeartbeatInterval = 1234 * time.Millisecond
		o.MaxFrameBytes = 1 << 20
		o.GatewayVersion = "gw-test"
	})
	errc := h.startAsync(context.Background())
	gh := h.w.read().GetGatewayHello()
	if gh.GetHeartbeatInterval().AsDuration() != 1234*time.Millisecond || gh.GetMaxFrameBytes() != 1<<20 || gh.GetGatewayVersion() != "gw-test" {
		t.Fatalf("GatewayHello %v", gh)
	}
	h.w.hello(testNonce)
	h.w.ready()
	if err := wait(t, errc); err != nil {
		t.Fatal(err)
	}
}

// Seed: InvokeAsync_WithMatchingReply_CompletesPendingCommand.
func TestInvokeMatchingReply(t *testing.T) {
	h := newHarness(t)
	h.start()
	res := h.invokeAsync(context.Background(), registerCmd(), waitFor)
	env := h.w.read()
	cmd := env.GetCommand()
	if cmd == nil || env.GetCorrelationId() == 0 {
		t.Fatalf("worker got %s with correlation %d", frame.BodyName(env), env.GetCorrelationId())
	}
	if cmd.GetCommand().GetRegister().GetClientName() != "t" || cmd.GetTimeout().AsDuration() != waitFor {
		t.Fatalf("command %v", cmd)
	}
	if env.GetSequence() != 2 || env.GetSessionId() != testSession || env.GetProtocolVersion() != protocol.Version {
		t.Fatalf("envelope header seq %d session %q version %d", env.GetSequence(), env.GetSessionId(), env.GetProtocolVersion())
	}
	h.w.reply(env.GetCorrelationId(), &mxgatewayv1.Reply{Hresult: 7, Result: &mxgatewayv1.Reply_Register{Register: &mxgatewayv1.RegisterResult{ServerHandle: 3}}})
	r := wait(t, res)
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.reply.GetHresult() != 7 || r.reply.GetRegister().GetServerHandle() != 3 {
		t.Fatalf("reply %v", r.reply)
	}
}

// Replies may come back in any order; each completes its own command.
func TestConcurrentInvokesOutOfOrderReplies(t *testing.T) {
	h := newHarness(t)
	h.start()
	const n = 20
	results := make([]<-chan invokeResult, n)
	for i := range n {
		cmd := &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Unregister{Unregister: &mxgatewayv1.UnregisterCommand{ServerHandle: int32(i)}}}
		results[i] = h.invokeAsync(context.Background(), cmd, waitFor)
	}
	type got struct {
		corr   uint64
		handle int32
	}
	var cmds []got
	for range n {
		env := h.w.readUntil(isCommand)
		cmds = append(cmds, got{env.GetCorrelationId(), env.GetCommand().GetCommand().GetUnregister().GetServerHandle()})
	}
	for i := len(cmds) - 1; i >= 0; i-- {
		h.w.reply(cmds[i].corr, &mxgatewayv1.Reply{Hresult: cmds[i].handle})
	}
	for i, ch := range results {
		r := wait(t, ch)
		if r.err != nil {
			t.Fatal(r.err)
		}
		if r.reply.GetHresult() != int32(i) {
			t.Errorf("command %d got the reply of %d", i, r.reply.GetHresult())
		}
	}
}

// Seed: InvokeAsync_WithLateReply_IgnoresLateReplyAndKeepsClientReady.
func TestLateReplyIgnoredAndClientStaysReady(t *testing.T) {
	h := newHarness(t)
	h.start()
	res := h.invokeAsync(context.Background(), registerCmd(), 50*time.Millisecond)
	timedOut := h.w.read()
	r := wait(t, res)
	if !errors.Is(r.err, ErrCommandTimeout) {
		t.Fatalf("err %v, want ErrCommandTimeout", r.err)
	}
	// The client asks the worker to drop the command.
	cancel := h.w.read().GetCancel()
	if cancel.GetTargetCorrelationId() != timedOut.GetCorrelationId() {
		t.Fatalf("cancel %v for correlation %d", cancel, timedOut.GetCorrelationId())
	}
	h.w.reply(timedOut.GetCorrelationId(), &mxgatewayv1.Reply{Message: "late"})

	// The pipe is ordered: the late reply is handled before this one.
	res = h.invokeAsync(context.Background(), unregisterCmd(), waitFor)
	second := h.w.readUntil(isCommand)
	h.w.reply(second.GetCorrelationId(), &mxgatewayv1.Reply{Message: "second"})
	r = wait(t, res)
	if r.err != nil || r.reply.GetMessage() != "second" {
		t.Fatalf("second invoke: %v %v", r.reply, r.err)
	}
	if h.c.State() != StateReady {
		t.Fatalf("state %v after a late reply", h.c.State())
	}
}

func TestInvokeContextCancelledKeepsClientReady(t *testing.T) {
	h := newHarness(t)
	h.start()
	ctx, cancel := context.WithCancel(context.Background())
	res := h.invokeAsync(ctx, registerCmd(), waitFor)
	h.w.read()
	cancel()
	r := wait(t, res)
	if !errors.Is(r.err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", r.err)
	}
	if h.c.State() != StateReady {
		t.Fatalf("state %v", h.c.State())
	}
}

func TestInvokeRejectsEmptyCommand(t *testing.T) {
	h := newHarness(t)
	h.start()
	if _, err := h.c.Invoke(context.Background(), &mxgatewayv1.Command{}, nil, time.Second); err == nil {
		t.Fatal("empty command accepted")
	}
	if _, err := h.c.Invoke(context.Background(), nil, nil, time.Second); err == nil {
		t.Fatal("nil command accepted")
	}
}

// Seed: ReadEventsAsync_WithWorkerEvents_YieldsEventsInPipeOrder.
func TestEventsInPipeOrder(t *testing.T) {
	h := newHarness(t)
	h.start()
	before := time.Now()
	h.w.event(mxgatewayv1.EventFamily_EVENT_FAMILY_ON_DATA_CHANGE)
	h.w.event(mxgatewayv1.EventFamily_EVENT_FAMILY_OPERATION_COMPLETE)
	h.w.event(mxgatewayv1.EventFamily_EVENT_FAMILY_ON_WRITE_COMPLETE)
	want := []mxgatewayv1.EventFamily{
		mxgatewayv1.EventFamily_EVENT_FAMILY_ON_DATA_CHANGE,
		mxgatewayv1.EventFamily_EVENT_FAMILY_OPERATION_COMPLETE,
		mxgatewayv1.EventFamily_EVENT_FAMILY_ON_WRITE_COMPLETE,
	}
	for i, fam := range want {
		ev := wait(t, h.events())
		if ev.GetSequence() != uint64(i+1) || ev.GetFamily() != fam {
			t.Fatalf("event %d: seq %d family %v", i, ev.GetSequence(), ev.GetFamily())
		}
		if gt := ev.GetGatewayTime().AsTime(); gt.Before(before.Add(-time.Second)) || ev.GetGatewayTime() == nil {
			t.Errorf("gateway time not stamped: %v", ev.GetGatewayTime())
		}
	}
}

func TestEventSequenceViolationsFault(t *testing.T) {
	for _, tc := range []struct {
		name string
		seqs []uint64
		want string
	}{
		{"gap", []uint64{1, 3}, "gap"},
		{"duplicate", []uint64{1, 2, 2}, "duplicate"},
		{"not starting at 1", []uint64{2}, "gap"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.start()
			for _, s := range tc.seqs {
				h.w.eventSeq(s, mxgatewayv1.EventFamily_EVENT_FAMILY_ON_DATA_CHANGE)
			}
			err := h.waitDone()
			if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want a protocol %s", err, tc.want)
			}
			// Events delivered before the violation are still readable.
			if got := h.drainEvents(); len(got) != len(tc.seqs)-1 {
				t.Fatalf("drained %d events, want %d", len(got), len(tc.seqs)-1)
			}
		})
	}
}

// Seed: ReadLoop_WhenPipeDisconnects_FaultsClient. Also: every pending
// command fails with the reason and Events ends.
func TestPipeDisconnectFaults(t *testing.T) {
	h := newHarness(t)
	h.start()
	res := h.invokeAsync(context.Background(), registerCmd(), waitFor)
	h.w.read()
	h.w.conn.Close()
	// The life ends with the process, which exits by itself: no kill.
	h.waitGoing(CausePipeEnded)
	h.exit()
	err := h.waitDone()
	if !errors.Is(err, ErrWorkerGone) {
		t.Fatalf("err %v, want ErrWorkerGone", err)
	}
	if h.c.State() != StateFaulted {
		t.Fatalf("state %v", h.c.State())
	}
	if r := wait(t, res); !errors.Is(r.err, ErrWorkerGone) {
		t.Fatalf("pending command: %v", r.err)
	}
	if len(h.drainEvents()) != 0 {
		t.Fatal("unexpected events")
	}
	if h.kills() != 0 {
		t.Fatalf("worker killed %d times; it exited by itself", h.kills())
	}
	if e := h.c.End(); e.Cause != CausePipeEnded || e.Exit == nil || e.Exit.Code != 42 {
		t.Fatalf("end %+v, want the pipe's end first, then exit 42", e)
	}
	if _, err := h.c.Invoke(context.Background(), registerCmd(), nil, time.Second); !errors.Is(err, ErrWorkerGone) {
		t.Fatalf("Invoke after the fault: %v, want the terminal reason", err)
	}
}

// Seed: HeartbeatMonitor_WhenHeartbeatExpires_FaultsClient.
func TestHeartbeatExpiryFaults(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.HeartbeatGrace = 80 * time.Millisecond })
	h.start()
	err := h.waitDone()
	if !errors.Is(err, ErrHeartbeatExpired) {
		t.Fatalf("err %v, want ErrHeartbeatExpired", err)
	}
	if h.kills() != 1 {
		t.Fatal("a silent worker must be killed")
	}
}

// checkHeartbeat is driven with explicit times so the grace/ceiling rules are
// tested without timing: the real monitor runs with an hour-long grace.
func TestHeartbeatGraceAndCeiling(t *testing.T) {
	const grace, ceiling = time.Minute, 10 * time.Minute
	long := func(o *Options) { o.HeartbeatGrace = grace; o.HeartbeatCeiling = ceiling }

	t.Run("heartbeat resets the clock", func(t *testing.T) {
		h := newHarness(t, long)
		h.start()
		h.w.heartbeat()
		h.w.event(mxgatewayv1.EventFamily_EVENT_FAMILY_ON_DATA_CHANGE)
		wait(t, h.events()) // the heartbeat before it has been handled
		h.c.checkHeartbeat(time.Now().Add(grace-time.Second), CauseNone)
		if h.c.State() != StateReady {
			t.Fatalf("faulted within the grace: %v", h.c.Err())
		}
		h.c.checkHeartbeat(time.Now().Add(grace+time.Second), CauseNone)
		if !errors.Is(h.waitDone(), ErrHeartbeatExpired) {
			t.Fatalf("err %v", h.c.Err())
		}
	})

	t.Run("pending command allows up to the ceiling", func(t *testing.T) {
		h := newHarness(t, long)
		h.start()
		res := h.invokeAsync(context.Background(), registerCmd(), time.Hour)
		h.w.read()
		now := time.Now()
		h.c.checkHeartbeat(now.Add(grace+time.Second), CauseNone)
		h.c.checkHeartbeat(now.Add(ceiling-time.Second), CauseNone)
		if h.c.State() != StateReady {
			t.Fatalf("faulted before the ceiling: %v", h.c.Err())
		}
		h.c.checkHeartbeat(now.Add(ceiling+time.Second), CauseNone)
		err := h.waitDone()
		if !errors.Is(err, ErrHeartbeatExpired) {
			t.Fatalf("err %v", err)
		}
		if r := wait(t, res); !errors.Is(r.err, ErrHeartbeatExpired) {
			t.Fatalf("pending command: %v", r.err)
		}
	})

	t.Run("no pending command: grace only", func(t *testing.T) {
		h := newHarness(t, long)
		h.start()
		h.c.checkHeartbeat(time.Now().Add(grace+time.Second), CauseNone)
		if !errors.Is(h.waitDone(), ErrHeartbeatExpired) {
			t.Fatalf("err %v", h.c.Err())
		}
	})
}

func TestNonceMismatch(t *testing.T) {
	h := newHarness(t)
	errc := h.startAsync(context.Background())
	h.w.read()
	h.w.hello([]byte("not the nonce"))
	err := wait(t, errc)
	if !errors.Is(err, ErrHandshake) || !errors.Is(err, ErrNonceMismatch) {
		t.Fatalf("err %v, want ErrHandshake+ErrNonceMismatch", err)
	}
	if strings.Contains(err.Error(), string(testNonce)) || strings.Contains(err.Error(), fmt.Sprintf("%x", testNonce)) {
		t.Fatal("the error leaks the nonce")
	}
	assertHandshakeFailed(t, h, err)
}

func assertHandshakeFailed(t *testing.T, h *harness, err error) {
	t.Helper()
	if h.c.State() != StateFaulted {
		t.Fatalf("state %v", h.c.State())
	}
	if !errors.Is(h.waitDone(), ErrHandshake) || h.c.Err() != err {
		t.Fatalf("Err %v, want the Start error", h.c.Err())
	}
	if h.kills() != 1 {
		t.Fatal("worker not killed after a failed handshake")
	}
	if len(h.drainEvents()) != 0 {
		t.Fatal("events after a failed handshake")
	}
}

func TestVersionMismatch(t *testing.T) {
	t.Run("hello body", func(t *testing.T) {
		h := newHarness(t)
		errc := h.startAsync(context.Background())
		h.w.read()
		h.w.send(&workerv1.WorkerEnvelope{Body: &workerv1.WorkerEnvelope_WorkerHello{WorkerHello: &workerv1.WorkerHello{
			ProtocolVersion: protocol.Version + 1, Nonce: testNonce, Pid: testPID}}})
		err := wait(t, errc)
		if !errors.Is(err, ErrHandshake) || !errors.Is(err, ErrVersionMismatch) {
			t.Fatalf("err %v", err)
		}
		assertHandshakeFailed(t, h, err)
	})
	t.Run("envelope", func(t *testing.T) {
		h := newHarness(t)
		errc := h.startAsync(context.Background())
		h.w.read()
		h.w.send(&workerv1.WorkerEnvelope{ProtocolVersion: protocol.Version + 1, Body: &workerv1.WorkerEnvelope_WorkerHello{
			WorkerHello: &workerv1.WorkerHello{ProtocolVersion: protocol.Version + 1, Nonce: testNonce}}})
		err := wait(t, errc)
		if !errors.Is(err, ErrHandshake) || !errors.Is(err, ErrVersionMismatch) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("after ready", func(t *testing.T) {
		h := newHarness(t)
		h.start()
		h.w.send(&workerv1.WorkerEnvelope{ProtocolVersion: protocol.Version + 1, Body: &workerv1.WorkerEnvelope_Heartbeat{Heartbeat: &workerv1.Heartbeat{}}})
		err := h.waitDone()
		if !errors.Is(err, ErrProtocol) || !errors.Is(err, ErrVersionMismatch) {
			t.Fatalf("err %v", err)
		}
	})
}

func TestWrongSessionID(t *testing.T) {
	t.Run("handshake", func(t *testing.T) {
		h := newHarness(t)
		errc := h.startAsync(context.Background())
		h.w.read()
		h.w.send(&workerv1.WorkerEnvelope{SessionId: "other", Body: &workerv1.WorkerEnvelope_WorkerHello{
			WorkerHello: &workerv1.WorkerHello{ProtocolVersion: protocol.Version, Nonce: testNonce}}})
		err := wait(t, errc)
		if !errors.Is(err, ErrHandshake) || !errors.Is(err, ErrProtocol) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("after ready", func(t *testing.T) {
		h := newHarness(t)
		h.start()
		res := h.invokeAsync(context.Background(), registerCmd(), waitFor)
		env := h.w.read()
		h.w.send(&workerv1.WorkerEnvelope{SessionId: "other", CorrelationId: env.GetCorrelationId(),
			Body: &workerv1.WorkerEnvelope_CommandReply{CommandReply: &workerv1.WorkerCommandReply{Reply: &mxgatewayv1.Reply{}}}})
		err := h.waitDone()
		if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), "session") {
			t.Fatalf("err %v", err)
		}
		if r := wait(t, res); !errors.Is(r.err, ErrProtocol) {
			t.Fatalf("pending command: %v", r.err)
		}
	})
}

func TestOversizedFrame(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.MaxFrameBytes = 1024 })
	h.start()
	h.w.writeRaw(binary.LittleEndian.AppendUint32(nil, 1025))
	err := h.waitDone()
	if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), "oversized") {
		t.Fatalf("err %v", err)
	}
}

func TestUnexpectedBody(t *testing.T) {
	bodies := map[string]*workerv1.WorkerEnvelope{
		"gateway_hello": {Body: &workerv1.WorkerEnvelope_GatewayHello{GatewayHello: &workerv1.GatewayHello{}}},
		"worker_hello":  {Body: &workerv1.WorkerEnvelope_WorkerHello{WorkerHello: &workerv1.WorkerHello{}}},
		"worker_ready":  {Body: &workerv1.WorkerEnvelope_WorkerReady{WorkerReady: &workerv1.WorkerReady{}}},
		"command":       {Body: &workerv1.WorkerEnvelope_Command{Command: &workerv1.WorkerCommand{}}},
		"cancel":        {Body: &workerv1.WorkerEnvelope_Cancel{Cancel: &workerv1.Cancel{}}},
		"shutdown":      {Body: &workerv1.WorkerEnvelope_Shutdown{Shutdown: &workerv1.Shutdown{}}},
		"shutdown_ack":  {Body: &workerv1.WorkerEnvelope_ShutdownAck{ShutdownAck: &workerv1.ShutdownAck{}}},
	}
	for name, env := range bodies {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			h.start()
			h.w.send(env)
			err := h.waitDone()
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("err %v", err)
			}
		})
	}
	t.Run("during handshake", func(t *testing.T) {
		h := newHarness(t)
		errc := h.startAsync(context.Background())
		h.w.read()
		h.w.heartbeat()
		err := wait(t, errc)
		if !errors.Is(err, ErrHandshake) || !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), "heartbeat") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("event without event", func(t *testing.T) {
		h := newHarness(t)
		h.start()
		h.w.send(&workerv1.WorkerEnvelope{Body: &workerv1.WorkerEnvelope_Event{Event: &workerv1.WorkerEvent{}}})
		if err := h.waitDone(); !errors.Is(err, ErrProtocol) {
			t.Fatalf("err %v", err)
		}
	})
}

func TestReplyToUnissuedCorrelationFaults(t *testing.T) {
	for _, corr := range []uint64{0, 99} {
		t.Run(fmt.Sprint(corr), func(t *testing.T) {
			h := newHarness(t)
			h.start()
			h.w.reply(corr, &mxgatewayv1.Reply{})
			if err := h.waitDone(); !errors.Is(err, ErrProtocol) {
				t.Fatalf("err %v", err)
			}
		})
	}
}

func TestEnvelopeSequenceGapFaults(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.w.seq++ // skip one
	h.w.heartbeat()
	err := h.waitDone()
	if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), "sequence") {
		t.Fatalf("err %v", err)
	}
}

func TestWorkerFault(t *testing.T) {
	t.Run("after ready", func(t *testing.T) {
		h := newHarness(t)
		h.start()
		res := h.invokeAsync(context.Background(), registerCmd(), waitFor)
		h.w.read()
		h.w.send(&workerv1.WorkerEnvelope{Body: &workerv1.WorkerEnvelope_Fault{Fault: &workerv1.Fault{
			Code: workerv1.FaultCode_FAULT_CODE_EVENT_OVERFLOW, Message: "queue full"}}})
		err := h.waitDone()
		var fe *FaultError
		if !errors.Is(err, ErrWorkerFault) || !errors.As(err, &fe) || fe.Code != workerv1.FaultCode_FAULT_CODE_EVENT_OVERFLOW || fe.Message != "queue full" {
			t.Fatalf("err %v, want a FaultError with the worker's code and message", err)
		}
		if r := wait(t, res); !errors.Is(r.err, ErrWorkerFault) {
			t.Fatalf("pending command: %v", r.err)
		}
	})
	t.Run("instead of ready", func(t *testing.T) {
		h := newHarness(t)
		errc := h.startAsync(context.Background())
		h.w.read()
		h.w.hello(testNonce)
		h.w.send(&workerv1.WorkerEnvelope{Body: &workerv1.WorkerEnvelope_Fault{Fault: &workerv1.Fault{
			Code: workerv1.FaultCode_FAULT_CODE_BACKEND_INIT, Message: "no COM"}}})
		err := wait(t, errc)
		var fe *FaultError
		if !errors.Is(err, ErrHandshake) || !errors.As(err, &fe) || fe.Code != workerv1.FaultCode_FAULT_CODE_BACKEND_INIT || fe.Message != "no COM" {
			t.Fatalf("err %v, want a handshake error carrying the worker's BACKEND_INIT fault", err)
		}
		assertHandshakeFailed(t, h, err)
	})
}

func TestHandshakeWorkerGone(t *testing.T) {
	h := newHarness(t, noProcess)
	errc := h.startAsync(context.Background())
	h.w.read()
	h.w.conn.Close()
	err := wait(t, errc)
	if !errors.Is(err, ErrHandshake) || !errors.Is(err, ErrWorkerGone) {
		t.Fatalf("err %v", err)
	}
}

// A worker whose pipe ends during the handshake is leaving by itself: Start
// waits for its exit rather than kill it, so the End says how it exited.
func TestHandshakeWorkerGoneWaitsForExit(t *testing.T) {
	h := newHarness(t)
	errc := h.startAsync(context.Background())
	h.w.read()
	h.w.conn.Close()
	// Had Start killed the worker, the exit below would not count: the
	// End would say "killed".
	h.exit()
	err := wait(t, errc)
	if !errors.Is(err, ErrHandshake) || !errors.Is(err, ErrWorkerGone) {
		t.Fatalf("err %v", err)
	}
	h.waitDone()
	if e := h.c.End(); e.Cause != CauseHandshake || e.Exit == nil || e.Exit.Code != 42 || e.Exit.Killed {
		t.Fatalf("end %+v", e)
	}
	if h.kills() != 0 {
		t.Fatalf("killed %d times", h.kills())
	}
}

func TestHandshakeTimeout(t *testing.T) {
	h := newHarness(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	errc := h.startAsync(ctx)
	h.w.read() // and never answer
	err := wait(t, errc)
	if !errors.Is(err, ErrHandshake) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v", err)
	}
	assertHandshakeFailed(t, h, err)
}

func TestHandshakeCancelled(t *testing.T) {
	h := newHarness(t)
	ctx, cancel := context.WithCancel(context.Background())
	errc := h.startAsync(ctx)
	h.w.read()
	cancel()
	err := wait(t, errc)
	if !errors.Is(err, ErrHandshake) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
}

func TestHandshakePIDMismatch(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Process = newFakeProcess(testPID + 1) })
	errc := h.startAsync(context.Background())
	h.w.read()
	h.w.hello(testNonce)
	err := wait(t, errc)
	if !errors.Is(err, ErrHandshake) || !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), "pid") {
		t.Fatalf("err %v", err)
	}
}

func TestProcessExitMidCommand(t *testing.T) {
	h := newHarness(t)
	h.start()
	res := h.invokeAsync(context.Background(), registerCmd(), waitFor)
	h.w.read()
	// The process dies; its end of the pipe closes with it.
	h.exit()
	h.w.conn.Close()
	r := wait(t, res)
	if !errors.Is(r.err, ErrWorkerGone) {
		t.Fatalf("pending command: %v, want ErrWorkerGone", r.err)
	}
	err := h.waitDone()
	if !errors.Is(err, ErrWorkerGone) || !strings.Contains(err.Error(), "exit status 42") {
		t.Fatalf("err %v, want ErrWorkerGone with the exit status", err)
	}
}

// A process exit reported while the pipe stays open (a grandchild holds the
// handle) still faults the client.
func TestProcessExitWithPipeOpen(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.exit()
	err := h.waitDone()
	if !errors.Is(err, ErrWorkerGone) || !strings.Contains(err.Error(), "exit status 42") {
		t.Fatalf("err %v", err)
	}
}

func TestShutdownClean(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.w.event(mxgatewayv1.EventFamily_EVENT_FAMILY_ON_DATA_CHANGE)
	type res struct {
		warnings []string
		err      error
	}
	done := make(chan res, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		w, err := h.c.Shutdown(ctx)
		done <- res{w, err}
	}()
	sd := h.w.readUntil(func(e *workerv1.WorkerEnvelope) bool { return e.GetShutdown() != nil }).GetShutdown()
	if sd.GetTimeout().AsDuration() <= 0 || sd.GetTimeout().AsDuration() > waitFor {
		t.Fatalf("shutdown timeout %v", sd.GetTimeout().AsDuration())
	}
	testutil.Eventually(t, waitFor, func() error {
		if st := h.c.State(); st != StateClosing {
			return fmt.Errorf("state %v", st)
		}
		return nil
	})
	if _, err := h.c.Invoke(context.Background(), registerCmd(), nil, time.Second); !errors.Is(err, ErrNotReady) {
		t.Fatalf("Invoke while closing: %v", err)
	}
	h.w.send(&workerv1.WorkerEnvelope{Body: &workerv1.WorkerEnvelope_ShutdownAck{ShutdownAck: &workerv1.ShutdownAck{
		TeardownWarnings: []string{"unadvise 1 failed"}}}})
	h.w.conn.Close()
	h.exit()
	r := wait(t, done)
	if r.err != nil {
		t.Fatal(r.err)
	}
	if len(r.warnings) != 1 || r.warnings[0] != "unadvise 1 failed" {
		t.Fatalf("warnings %v", r.warnings)
	}
	if h.c.State() != StateClosed || h.c.Err() != nil {
		t.Fatalf("state %v err %v", h.c.State(), h.c.Err())
	}
	if h.kills() != 0 {
		t.Fatal("a clean shutdown killed the worker")
	}
	if got := h.drainEvents(); len(got) != 1 {
		t.Fatalf("events before shutdown lost: %d", len(got))
	}
	// Idempotent.
	if w, err := h.c.Shutdown(context.Background()); err != nil || len(w) != 1 {
		t.Fatalf("second Shutdown: %v %v", w, err)
	}
	if _, err := h.c.Invoke(context.Background(), registerCmd(), nil, time.Second); !errors.Is(err, ErrClosed) {
		t.Fatalf("Invoke after close: %v", err)
	}
}

// Without an exit report the pipe's end after the ack completes the close;
// the exit may also be seen before the ack is read.
func TestShutdownOrderings(t *testing.T) {
	t.Run("no exit channel", func(t *testing.T) {
		h := newHarness(t, noProcess)
		h.start()
		done := make(chan error, 1)
		go func() { _, err := h.c.Shutdown(context.Background()); done <- err }()
		h.w.readUntil(func(e *workerv1.WorkerEnvelope) bool { return e.GetShutdown() != nil })
		h.w.send(&workerv1.WorkerEnvelope{Body: &workerv1.WorkerEnvelope_ShutdownAck{ShutdownAck: &workerv1.ShutdownAck{}}})
		h.w.conn.Close()
		if err := wait(t, done); err != nil {
			t.Fatal(err)
		}
		if h.c.State() != StateClosed {
			t.Fatalf("state %v", h.c.State())
		}
	})
	t.Run("exit before ack is read", func(t *testing.T) {
		h := newHarness(t)
		h.start()
		done := make(chan error, 1)
		go func() { _, err := h.c.Shutdown(context.Background()); done <- err }()
		h.w.readUntil(func(e *workerv1.WorkerEnvelope) bool { return e.GetShutdown() != nil })
		h.exit()
		h.w.send(&workerv1.WorkerEnvelope{Body: &workerv1.WorkerEnvelope_ShutdownAck{ShutdownAck: &workerv1.ShutdownAck{}}})
		h.w.conn.Close()
		if err := wait(t, done); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("exit without ack", func(t *testing.T) {
		h := newHarness(t)
		h.start()
		done := make(chan error, 1)
		go func() { _, err := h.c.Shutdown(context.Background()); done <- err }()
		h.w.readUntil(func(e *workerv1.WorkerEnvelope) bool { return e.GetShutdown() != nil })
		h.exit()
		h.w.conn.Close()
		if err := wait(t, done); !errors.Is(err, ErrWorkerGone) {
			t.Fatalf("err %v, want ErrWorkerGone", err)
		}
	})
}

func TestShutdownTimeoutKills(t *testing.T) {
	h := newHarness(t)
	h.start()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { _, err := h.c.Shutdown(ctx); done <- err }()
	h.w.readUntil(func(e *workerv1.WorkerEnvelope) bool { return e.GetShutdown() != nil })
	// Never acknowledge.
	err := wait(t, done)
	if !errors.Is(err, ErrShutdownTimeout) {
		t.Fatalf("err %v, want ErrShutdownTimeout", err)
	}
	if h.kills() != 1 {
		t.Fatal("worker not killed after the shutdown deadline")
	}
	if h.c.State() != StateFaulted || !errors.Is(h.c.Err(), ErrShutdownTimeout) {
		t.Fatalf("state %v err %v", h.c.State(), h.c.Err())
	}
}

func TestShutdownBeforeStart(t *testing.T) {
	h := newHarness(t)
	if _, err := h.c.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !h.c.State().terminal() {
		t.Fatalf("state %v", h.c.State())
	}
	if h.kills() != 1 {
		t.Fatal("an unstarted worker must be killed")
	}
	if err := h.c.Start(context.Background()); err == nil {
		t.Fatal("Start after Shutdown succeeded")
	}
}

func TestKill(t *testing.T) {
	h := newHarness(t)
	h.start()
	res := h.invokeAsync(context.Background(), registerCmd(), waitFor)
	h.w.read()
	h.c.Kill(protocol.KillGateway)
	h.c.Kill(protocol.KillAfterFault)
	err := h.waitDone()
	var ke *KillError
	if !errors.Is(err, ErrKilled) || !errors.As(err, &ke) || ke.Reason != protocol.KillGateway {
		t.Fatalf("err %v, want the first kill's typed reason", err)
	}
	if r := wait(t, res); !errors.Is(r.err, ErrKilled) {
		t.Fatalf("pending: %v", r.err)
	}
	if h.kills() != 1 {
		t.Fatalf("kill func called %d times", h.kills())
	}
	if _, err := h.c.Shutdown(context.Background()); !errors.Is(err, ErrKilled) {
		t.Fatalf("Shutdown of a killed client: %v", err)
	}
}

func TestKillDuringHandshake(t *testing.T) {
	h := newHarness(t)
	errc := h.startAsync(context.Background())
	h.w.read()
	h.c.Kill("abort")
	err := wait(t, errc)
	if !errors.Is(err, ErrKilled) {
		t.Fatalf("err %v", err)
	}
}

// TestEventBeyondCreditFaults: the worker's credit is the queue's room;
// an event past it is a protocol violation, and what was queued is still
// handed out.
func TestEventBeyondCreditFaults(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.EventBuffer = 2 })
	h.start()
	for range 3 {
		h.w.event(mxgatewayv1.EventFamily_EVENT_FAMILY_ON_DATA_CHANGE)
	}
	err := h.waitDone()
	if !errors.Is(err, ErrProtocol) || !errors.Is(err, errOverCredit) {
		t.Fatalf("err %v, want ErrProtocol (beyond the credit)", err)
	}
	if got := h.drainEvents(); len(got) != 2 {
		t.Fatalf("drained %d events, want the 2 buffered", len(got))
	}
}

// TestEventCreditGranted: with room for one event, each event the session
// takes is granted back, and a worker that sends only within its credit
// delivers everything, in order.
func TestEventCreditGranted(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.EventBuffer = 1 })
	hello := h.startHello()
	if hello.GetEventCredit() != 1 || hello.GetEventCreditBytes() != uint64(DefaultEventBufferBytes) {
		t.Fatalf("GatewayHello grants %d events, %d bytes; want 1 and %d", hello.GetEventCredit(), hello.GetEventCreditBytes(), DefaultEventBufferBytes)
	}
	const n = 50
	done := make(chan error, 1)
	go func() {
		for i := range n {
			h.w.event(mxgatewayv1.EventFamily_EVENT_FAMILY_ON_DATA_CHANGE)
			if i == n-1 {
				break
			}
			g := h.w.readUntil(func(env *workerv1.WorkerEnvelope) bool { return env.GetEventCredit() != nil }).GetEventCredit()
			if g.GetEvents() != 1 || g.GetBytes() == 0 {
				done <- fmt.Errorf("grant %v, want one event and its bytes", g)
				return
			}
		}
		done <- nil
	}()
	for i := range n {
		if ev := wait(t, h.events()); ev.GetSequence() != uint64(i+1) {
			t.Fatalf("event %d has sequence %d", i, ev.GetSequence())
		}
	}
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
	if h.c.State() != StateReady {
		t.Fatalf("state %v: %v", h.c.State(), h.c.Err())
	}
}

// TestEventCreditGrantedAtHalf: while the worker has ample credit left, a
// drained queue grants nothing (no frame each way per event of a quiet
// session); the grant comes once half of the credit was taken, for all of
// it, and the worker can always send meanwhile.
func TestEventCreditGrantedAtHalf(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.EventBuffer = 8 })
	h.start()
	evs := h.events()
	for i := range 3 {
		h.w.event(mxgatewayv1.EventFamily_EVENT_FAMILY_ON_DATA_CHANGE)
		if ev := wait(t, evs); ev.GetSequence() != uint64(i+1) {
			t.Fatalf("event %d has sequence %d", i, ev.GetSequence())
		}
	}
	// Frames reach the worker in the order written: a command written now
	// comes after any grant of the three takes.
	res := h.invokeAsync(context.Background(), registerCmd(), waitFor)
	env := h.w.read()
	if env.GetCommand() == nil {
		t.Fatalf("after three of eight events taken the worker read %s, want the command (no grant yet)", prototext.Format(env))
	}
	h.w.reply(env.GetCorrelationId(), &mxgatewayv1.Reply{Result: &mxgatewayv1.Reply_Register{Register: &mxgatewayv1.RegisterResult{ServerHandle: 1}}})
	if r := wait(t, res); r.err != nil {
		t.Fatal(r.err)
	}
	h.w.event(mxgatewayv1.EventFamily_EVENT_FAMILY_ON_DATA_CHANGE)
	wait(t, evs)
	g := h.w.readUntil(func(env *workerv1.WorkerEnvelope) bool { return env.GetEventCredit() != nil }).GetEventCredit()
	if g.GetEvents() != 4 || g.GetBytes() == 0 {
		t.Fatalf("grant %v, want the four events taken and their bytes", g)
	}
}

// TestEventCreditGrantedWhenShort: when what the worker may still send
// would not cover a frame of the largest size, a drained queue grants at
// once: the worker may be holding such an event.
func TestEventCreditGrantedWhenShort(t *testing.T) {
	h := newHarness(t, func(o *Options) {
		o.EventBuffer = 1000
		o.MaxFrameBytes = 1 << 20
		o.EventBufferBytes = 1 << 20
	})
	h.start()
	h.w.event(mxgatewayv1.EventFamily_EVENT_FAMILY_ON_DATA_CHANGE)
	wait(t, h.events())
	g := h.w.readUntil(func(env *workerv1.WorkerEnvelope) bool { return env.GetEventCredit() != nil }).GetEventCredit()
	if g.GetEvents() != 1 || g.GetBytes() == 0 {
		t.Fatalf("grant %v, want the one event taken and its bytes", g)
	}
}

// TestRepliesNotHeldBehindEvents: with the event queue full and nobody
// taking events, the read loop still reads: a command's reply and
// heartbeats arrive, and the client stays ready.
func TestRepliesNotHeldBehindEvents(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.EventBuffer = 1 })
	h.start()
	h.w.event(mxgatewayv1.EventFamily_EVENT_FAMILY_ON_DATA_CHANGE)
	res := h.invokeAsync(context.Background(), registerCmd(), waitFor)
	env := h.w.readUntil(func(env *workerv1.WorkerEnvelope) bool { return env.GetCommand() != nil })
	h.w.heartbeat()
	h.w.reply(env.GetCorrelationId(), &mxgatewayv1.Reply{Result: &mxgatewayv1.Reply_Register{Register: &mxgatewayv1.RegisterResult{ServerHandle: 3}}})
	if r := wait(t, res); r.err != nil || r.reply.GetRegister().GetServerHandle() != 3 {
		t.Fatalf("reply %v %v", r.reply, r.err)
	}
	if q, _ := h.c.QueuedEvents(); q != 1 || h.c.State() != StateReady {
		t.Fatalf("%d events queued, state %v", q, h.c.State())
	}
}

func TestNewValidates(t *testing.T) {
	g, _ := connPair(t)
	if _, err := New(nil, "", nil, Options{}); err == nil {
		t.Fatal("New accepted nothing")
	}
	if _, err := New(g, testSession, nil, Options{}); err == nil {
		t.Fatal("New accepted an empty nonce")
	}
}

func TestStateString(t *testing.T) {
	for s, want := range map[State]string{StateCreated: "created", StateReady: "ready", StateFaulted: "faulted", State(42): "state(42)"} {
		if s.String() != want {
			t.Errorf("%d: %q", int(s), s.String())
		}
	}
}

// TestFlowControlByBytes: with a byte bound smaller than any event, the
// worker may send one event at a time (all of its credit), and a second
// one before the first is taken is beyond the credit.
func TestFlowControlByBytes(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.EventBufferBytes = 1 })
	hello := h.startHello()
	if hello.GetEventCreditBytes() != 1 {
		t.Fatalf("GatewayHello grants %d bytes, want 1", hello.GetEventCreditBytes())
	}
	h.w.event(mxgatewayv1.EventFamily_EVENT_FAMILY_ON_DATA_CHANGE)
	if ev := wait(t, h.events()); ev.GetSequence() != 1 {
		t.Fatalf("event sequence %d", ev.GetSequence())
	}
	g := h.w.readUntil(func(env *workerv1.WorkerEnvelope) bool { return env.GetEventCredit() != nil }).GetEventCredit()
	if g.GetEvents() != 1 || g.GetBytes() < 2 {
		t.Fatalf("grant %v, want the event and its bytes back", g)
	}
	h.w.event(mxgatewayv1.EventFamily_EVENT_FAMILY_ON_DATA_CHANGE)
	if ev := wait(t, h.events()); ev.GetSequence() != 2 {
		t.Fatalf("event sequence %d", ev.GetSequence())
	}
	h.w.readUntil(func(env *workerv1.WorkerEnvelope) bool { return env.GetEventCredit() != nil })

	// Nobody takes events here: two in a row, and the second is beyond
	// the credit (the first spent all of it).
	h2 := newHarness(t, func(o *Options) { o.EventBufferBytes = 1 })
	h2.start()
	h2.w.event(mxgatewayv1.EventFamily_EVENT_FAMILY_ON_DATA_CHANGE)
	h2.w.event(mxgatewayv1.EventFamily_EVENT_FAMILY_ON_DATA_CHANGE)
	if err := h2.waitDone(); !errors.Is(err, errOverCredit) {
		t.Fatalf("err %v, want beyond the credit", err)
	}
	if got := h2.drainEvents(); len(got) != 1 {
		t.Fatalf("drained %d events, want the first", len(got))
	}
}
