package worker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/catalog"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/mxtypes"
	workerv1 "github.com/mxgateway/mxgateway/api/mxgateway/worker/v1"
	"github.com/mxgateway/mxgateway/internal/protocol"
	"github.com/mxgateway/mxgateway/internal/testutil"
)

const noHeartbeats = time.Hour

// Command builders.

func register() *mxgatewayv1.Command {
	return &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Register{Register: &mxgatewayv1.RegisterCommand{ClientName: "t"}}}
}

func addItem(sh int32, ref string) *mxgatewayv1.Command {
	return &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_AddItem{AddItem: &mxgatewayv1.AddItemCommand{ServerHandle: sh, ItemDefinition: ref}}}
}

func advise(sh, ih int32) *mxgatewayv1.Command {
	return &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Advise{Advise: &mxgatewayv1.AdviseCommand{ServerHandle: sh, ItemHandle: ih}}}
}

func unAdvise(sh, ih int32) *mxgatewayv1.Command {
	return &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_UnAdvise{UnAdvise: &mxgatewayv1.UnAdviseCommand{ServerHandle: sh, ItemHandle: ih}}}
}

func removeItem(sh, ih int32) *mxgatewayv1.Command {
	return &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_RemoveItem{RemoveItem: &mxgatewayv1.RemoveItemCommand{ServerHandle: sh, ItemHandle: ih}}}
}

func intValue(v int64) *mxgatewayv1.MxValue {
	return &mxgatewayv1.MxValue{Kind: &mxgatewayv1.MxValue_Int64Value{Int64Value: v}}
}

func write(sh, ih int32, v int64) *mxgatewayv1.Command {
	return &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Write{Write: &mxgatewayv1.WriteCommand{ServerHandle: sh, ItemHandle: ih, Value: intValue(v)}}}
}

func readBulk(sh int32, timeoutMs uint32, refs ...string) *mxgatewayv1.Command {
	return &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_ReadBulk{ReadBulk: &mxgatewayv1.ReadBulkCommand{ServerHandle: sh, ItemDefinitions: refs, TimeoutMs: timeoutMs}}}
}

// waitFor receives from ch or fails the test after 10 s.
func waitFor[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("timed out waiting for the backend")
		var zero T
		return zero
	}
}

func wantStatus(t testing.TB, what string, rep *mxgatewayv1.Reply, want mxgatewayv1.GatewayStatusCode) {
	t.Helper()
	if rep.GetStatus() != want {
		t.Fatalf("%s: status %v (%s), want %v", what, rep.GetStatus(), rep.GetMessage(), want)
	}
}

func TestHandshakeAndShutdown(t *testing.T) {
	be := newFake()
	h := start(t, be, harnessOpts{})
	ready := h.ready(noHeartbeats)
	if ready.GetBackend().GetKind() != "fake" || ready.GetBackend().GetWorkerVersion() == "" {
		t.Fatalf("WorkerReady backend = %v", ready.GetBackend())
	}
	ack := h.shutdown()
	if len(ack.GetTeardownWarnings()) != 1 || ack.GetTeardownWarnings()[0] != "fake: nothing to unregister" {
		t.Fatalf("teardown warnings = %q", ack.GetTeardownWarnings())
	}
	h.expectEOF()
	if code := h.exitCode(); code != protocol.ExitOK {
		t.Fatalf("exit code %d, want 0", code)
	}
	if calls := be.callLog(); len(calls) != 1 || calls[0] != "Close" {
		t.Fatalf("backend calls = %v, want [Close]", calls)
	}
	if strings.Contains(h.logs.String(), nonceLine()[:64]) {
		t.Fatal("the nonce appeared in the logs")
	}
}

func ptr(s string) *string { return &s }

func TestBootstrapFailures(t *testing.T) {
	cases := []struct {
		name  string
		stdin string
		cfg   func(*Config)
		want  int
	}{
		{"empty stdin", "", nil, protocol.ExitNoNonce},
		{"empty line", "\n", nil, protocol.ExitNoNonce},
		{"not hex", strings.Repeat("zz", 32) + "\n", nil, protocol.ExitNoNonce},
		{"upper case", strings.Repeat("AB", 32) + "\n", nil, protocol.ExitNoNonce},
		{"short", "abcd\n", nil, protocol.ExitNoNonce},
		{"cli protocol version", nonceLine(), func(c *Config) { c.ProtocolVersion = protocol.Version + 1 }, protocol.ExitVersionMismatch},
		{"no session id", nonceLine(), func(c *Config) { c.SessionID = "" }, protocol.ExitBadArguments},
		{"no backend", nonceLine(), func(c *Config) { c.Backend = nil }, protocol.ExitBadArguments},
		{"endpoint missing", nonceLine(), func(c *Config) { c.Endpoint += ".missing"; c.HandshakeTimeout = 200 * time.Millisecond }, protocol.ExitHandshakeFailed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			be := newFake()
			h := start(t, be, harnessOpts{stdin: ptr(tc.stdin), cfg: tc.cfg})
			if h.conn != nil {
				t.Fatal("the worker connected although it should have stopped first")
			}
			if code := h.exitCode(); code != tc.want {
				t.Fatalf("exit code %d, want %d", code, tc.want)
			}
		})
	}
}

func TestHandshakeFailures(t *testing.T) {
	hello := func(mut func(env *workerv1.WorkerEnvelope)) func(h *harness) {
		return func(h *harness) {
			env := &workerv1.WorkerEnvelope{Body: &workerv1.WorkerEnvelope_GatewayHello{GatewayHello: &workerv1.GatewayHello{
				ProtocolVersion: protocol.Version, Nonce: testNonce, HeartbeatInterval: durationpb.New(noHeartbeats),
				EventCredit: 1, EventCreditBytes: 1,
			}}}
			mut(env)
			h.sendSeq++
			env.Sequence = h.sendSeq
			if env.ProtocolVersion == 0 {
				env.ProtocolVersion = protocol.Version
			}
			if env.SessionId == "" {
				env.SessionId = testSession
			}
			if err := h.w.Write(env); err != nil {
				h.t.Fatal(err)
			}
		}
	}
	cases := []struct {
		name      string
		gateway   func(h *harness)
		openErr   error
		wantFault workerv1.FaultCode
		want      int
	}{
		{"hello version", hello(func(e *workerv1.WorkerEnvelope) { e.GetGatewayHello().ProtocolVersion = protocol.Version + 1 }),
			nil, workerv1.FaultCode_FAULT_CODE_PROTOCOL, protocol.ExitVersionMismatch},
		{"envelope version", hello(func(e *workerv1.WorkerEnvelope) { e.ProtocolVersion = protocol.Version + 1 }),
			nil, workerv1.FaultCode_FAULT_CODE_PROTOCOL, protocol.ExitVersionMismatch},
		{"wrong session", hello(func(e *workerv1.WorkerEnvelope) { e.SessionId = "someone-else" }),
			nil, workerv1.FaultCode_FAULT_CODE_PROTOCOL, protocol.ExitProtocolError},
		{"wrong nonce", hello(func(e *workerv1.WorkerEnvelope) { e.GetGatewayHello().Nonce = make([]byte, protocol.NonceBytes) }),
			nil, workerv1.FaultCode_FAULT_CODE_PROTOCOL, protocol.ExitHandshakeFailed},
		{"no event credit", hello(func(e *workerv1.WorkerEnvelope) { e.GetGatewayHello().EventCredit = 0 }),
			nil, workerv1.FaultCode_FAULT_CODE_PROTOCOL, protocol.ExitProtocolError},
		{"no event byte credit", hello(func(e *workerv1.WorkerEnvelope) { e.GetGatewayHello().EventCreditBytes = 0 }),
			nil, workerv1.FaultCode_FAULT_CODE_PROTOCOL, protocol.ExitProtocolError},
		{"not a hello", func(h *harness) { h.command(1, register()) },
			nil, workerv1.FaultCode_FAULT_CODE_PROTOCOL, protocol.ExitProtocolError},
		{"gateway hangs up", func(h *harness) { h.conn.Close() },
			nil, 0, protocol.ExitHandshakeFailed},
		{"backend init", func(h *harness) { h.hello(noHeartbeats) },
			errors.New("com: class not registered"), workerv1.FaultCode_FAULT_CODE_BACKEND_INIT, protocol.ExitBackendInit},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			be := newFake()
			be.openErr = tc.openErr
			h := start(t, be, harnessOpts{})
			tc.gateway(h)
			if tc.wantFault != 0 {
				var fault *workerv1.Fault
				for fault == nil {
					env := h.recv()
					if wh := env.GetWorkerHello(); wh != nil && tc.openErr == nil {
						t.Fatal("WorkerHello sent although the hello was refused")
					}
					fault = env.GetFault()
				}
				if fault.GetCode() != tc.wantFault {
					t.Fatalf("fault %v (%s), want %v", fault.GetCode(), fault.GetMessage(), tc.wantFault)
				}
				if tc.openErr != nil && !strings.Contains(fault.GetMessage(), tc.openErr.Error()) {
					t.Fatalf("fault message %q does not name the cause", fault.GetMessage())
				}
			}
			if code := h.exitCode(); code != tc.want {
				t.Fatalf("exit code %d, want %d", code, tc.want)
			}
			for _, c := range be.callLog() {
				if c != "Close" {
					t.Fatalf("backend called %s after a failed handshake", c)
				}
			}
		})
	}
}

func TestCommandReplies(t *testing.T) {
	be := newFake()
	h := start(t, be, harnessOpts{})
	h.ready(noHeartbeats)

	rep := h.call(1001, register(), nil)
	wantStatus(t, "Register", rep, mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK)
	sh := rep.GetRegister().GetServerHandle()
	if sh != 1 {
		t.Fatalf("server handle %d, want 1", sh)
	}
	rep = h.call(7, addItem(sh, "Value=5"), nil)
	ih := rep.GetItemHandle().GetItemHandle()
	if ih != 1 {
		t.Fatalf("item handle %d, want 1", ih)
	}

	// Write before advise: an MXAccess refusal is a normal reply.
	rep = h.call(8, write(sh, ih, 1), nil)
	wantStatus(t, "Write", rep, mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_MXACCESS_FAILURE)
	if rep.GetHresult() != mxtypes.E_INVALIDARG {
		t.Fatalf("hresult %#x, want E_INVALIDARG", uint32(rep.GetHresult()))
	}

	var events []*mxgatewayv1.Event
	wantStatus(t, "Advise", h.call(9, advise(sh, ih), &events), mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK)
	for len(events) < 1 {
		events = append(events, h.event())
	}
	if dc := events[0].GetDataChange(); dc.GetItemHandle() != ih || dc.GetValue().GetInt64Value() != 5 {
		t.Fatalf("first data change = %v", dc)
	}
	if events[0].GetSequence() != 1 || events[0].GetFamily() != mxgatewayv1.EventFamily_EVENT_FAMILY_ON_DATA_CHANGE || events[0].GetWorkerTime() == nil {
		t.Fatalf("event not stamped: seq %d family %v", events[0].GetSequence(), events[0].GetFamily())
	}

	rep = h.call(10, &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_AddItem2{AddItem2: &mxgatewayv1.AddItem2Command{ServerHandle: sh, ItemDefinition: "X"}}}, nil)
	wantStatus(t, "AddItem2", rep, mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_NOT_SUPPORTED)

	rep = h.call(11, &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_AuthenticateUser{AuthenticateUser: &mxgatewayv1.AuthenticateUserCommand{
		ServerHandle: sh, UserName: "op", Password: "secret"}}}, nil)
	if rep.GetUserId().GetUserId() != 7 {
		t.Fatalf("user id = %d, want 7", rep.GetUserId().GetUserId())
	}

	// RemoveItem while advised: tolerated, with a parity warning.
	rep = h.call(12, removeItem(sh, ih), nil)
	wantStatus(t, "RemoveItem", rep, mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK)
	if len(rep.GetParityWarnings()) != 1 {
		t.Fatalf("parity warnings = %q", rep.GetParityWarnings())
	}

	rep = h.call(13, &mxgatewayv1.Command{}, nil)
	wantStatus(t, "empty command", rep, mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_NOT_SUPPORTED)

	h.shutdown()
	if code := h.exitCode(); code != protocol.ExitOK {
		t.Fatalf("exit code %d", code)
	}
	if strings.Contains(h.logs.String(), "secret") {
		t.Fatal("the password appeared in the logs")
	}
}

// TestEventOrdering pipelines many commands while the backend emits events
// of its own: every reply arrives once with its correlation id, and event
// sequences are contiguous from 1.
func TestEventOrdering(t *testing.T) {
	be := newFake()
	h := start(t, be, harnessOpts{})
	h.ready(noHeartbeats)
	sh := h.call(1, register(), nil).GetRegister().GetServerHandle()
	ih := h.call(2, addItem(sh, "Value=0"), nil).GetItemHandle().GetItemHandle()
	var events []*mxgatewayv1.Event
	h.call(3, advise(sh, ih), &events)

	const writes, background = 200, 2000
	emitted := make(chan struct{})
	go func() {
		defer close(emitted)
		for i := 0; i < background; i++ {
			be.emit(dataChange(sh, 99, int64(i)))
		}
	}()
	for i := 0; i < writes; i++ {
		h.command(uint64(100+i), write(sh, ih, int64(i+1)))
	}
	replies := map[uint64]bool{}
	for len(replies) < writes {
		env := h.next()
		switch {
		case env.GetEvent() != nil:
			events = append(events, env.GetEvent().GetEvent())
		case env.GetCommandReply() != nil:
			c := env.GetCorrelationId()
			if replies[c] || c < 100 || c >= 100+writes {
				t.Fatalf("unexpected or duplicate reply %d", c)
			}
			replies[c] = true
			wantStatus(t, "Write", env.GetCommandReply().GetReply(), mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK)
		}
	}
	<-emitted
	// Each write produces a completion and a data change; the first advise
	// one; plus the background events.
	want := 1 + 2*writes + background
	for len(events) < want {
		events = append(events, h.event())
	}
	var written, other int64
	for i, ev := range events {
		if ev.GetSequence() != uint64(i+1) {
			t.Fatalf("event %d has sequence %d", i, ev.GetSequence())
		}
		// Per item, values arrive in the order the backend produced them.
		dc := ev.GetDataChange()
		switch {
		case dc == nil:
		case dc.GetItemHandle() == ih && i > 0:
			written++
			if dc.GetValue().GetInt64Value() != written {
				t.Fatalf("write echo %d out of order (want %d)", dc.GetValue().GetInt64Value(), written)
			}
		case dc.GetItemHandle() == 99:
			if dc.GetValue().GetInt64Value() != other {
				t.Fatalf("background event %d out of order (want %d)", dc.GetValue().GetInt64Value(), other)
			}
			other++
		}
	}
	if len(events) != want {
		t.Fatalf("%d events, want %d", len(events), want)
	}
	h.shutdown()
}

func TestHeartbeats(t *testing.T) {
	be := newFake()
	h := start(t, be, harnessOpts{})
	h.ready(5 * time.Millisecond)

	seen := 0
	for seen < 3 {
		if hb := h.recv().GetHeartbeat(); hb != nil {
			if !hb.GetBackendResponsive() || hb.GetSentAt() == nil || hb.GetCommandInFlight() != 0 {
				t.Fatalf("idle heartbeat = %v", hb)
			}
			seen++
		}
	}

	// A command in flight and one queued behind it show in the heartbeat.
	gate := be.gate("Register")
	h.command(41, register())
	h.command(42, register())
	waitFor(t, be.entered)
	for {
		hb := h.recv().GetHeartbeat()
		if hb == nil || hb.GetCommandInFlight() == 0 || hb.GetCommandQueueDepth() == 0 {
			continue
		}
		if hb.GetCommandInFlight() != 41 || hb.GetCommandInFlightKind() != "register" || hb.GetCommandQueueDepth() != 1 || hb.GetCommandRunningFor() == nil {
			t.Fatalf("busy heartbeat = %v", hb)
		}
		break
	}
	close(gate)
	h.shutdown()
}

// TestHungBackendStopsHeartbeats: while the backend's thread does not
// answer Ping, no heartbeat is sent; when it answers again they resume.
func TestHungBackendStopsHeartbeats(t *testing.T) {
	be := newFake()
	h := start(t, be, harnessOpts{})
	h.ready(5 * time.Millisecond)
	if h.recv().GetHeartbeat() == nil {
		t.Fatal("expected a heartbeat")
	}
	gate := make(chan struct{})
	be.mu.Lock()
	be.pingGate = gate
	be.mu.Unlock()
	waitFor(t, be.pinging) // the heartbeat goroutine is now stuck in Ping

	// Drain what was queued before the hang, then nothing may arrive while
	// Ping is blocked (40 intervals).
	for {
		env, ok := h.tryRecv(200 * time.Millisecond)
		if !ok {
			break
		}
		if env.GetHeartbeat() == nil {
			t.Fatalf("unexpected %s", bodyName(env))
		}
	}
	if env, ok := h.tryRecv(200 * time.Millisecond); ok {
		t.Fatalf("%s sent while the backend was hung", bodyName(env))
	}
	be.mu.Lock()
	be.pingGate = nil
	be.mu.Unlock()
	close(gate)
	if h.recv().GetHeartbeat() == nil {
		t.Fatal("heartbeats did not resume")
	}
	h.shutdown()
}

func TestCancelQueuedCommand(t *testing.T) {
	be := newFake()
	h := start(t, be, harnessOpts{})
	h.ready(noHeartbeats)
	gate := be.gate("Register")
	h.command(1, register()) // runs and blocks
	waitFor(t, be.entered)
	h.command(2, register()) // queued
	h.command(3, register()) // queued
	cancel := func(target uint64) {
		h.send(0, &workerv1.WorkerEnvelope{Body: &workerv1.WorkerEnvelope_Cancel{Cancel: &workerv1.Cancel{TargetCorrelationId: target}}})
	}
	cancel(2)
	cancel(1) // running: completes normally
	env := h.next()
	if env.GetCorrelationId() != 2 || env.GetCommandReply().GetReply().GetStatus() != mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_CANCELLED {
		t.Fatalf("want CANCELLED reply for 2, got %s %d", bodyName(env), env.GetCorrelationId())
	}
	be.mu.Lock()
	delete(be.gates, "Register")
	be.mu.Unlock()
	close(gate)
	for _, want := range []uint64{1, 3} {
		env := h.next()
		if env.GetCorrelationId() != want || env.GetCommandReply().GetReply().GetStatus() != mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK {
			t.Fatalf("want OK reply for %d, got %s %d %v", want, bodyName(env), env.GetCorrelationId(), env.GetCommandReply().GetReply().GetStatus())
		}
	}
	if n := strings.Count(strings.Join(be.callLog(), ","), "Register"); n != 2 {
		t.Fatalf("Register ran %d times, want 2", n)
	}
	h.shutdown()
}

// TestShutdownOrder: the running command completes, queued ones are
// answered CANCELLED, the backend is torn down, then ShutdownAck, then exit 0.
func TestShutdownOrder(t *testing.T) {
	be := newFake()
	h := start(t, be, harnessOpts{})
	h.ready(noHeartbeats)
	gate := be.gate("Register")
	h.command(1, register())
	waitFor(t, be.entered)
	h.command(2, register())
	h.send(0, &workerv1.WorkerEnvelope{Body: &workerv1.WorkerEnvelope_Shutdown{Shutdown: &workerv1.Shutdown{Timeout: durationpb.New(5 * time.Second), Reason: "test"}}})
	env := h.next()
	if env.GetCorrelationId() != 2 || env.GetCommandReply().GetReply().GetStatus() != mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_CANCELLED {
		t.Fatalf("want CANCELLED for the queued command, got %s %d", bodyName(env), env.GetCorrelationId())
	}
	// A command sent after Shutdown is refused the same way.
	h.command(3, register())
	if env := h.next(); env.GetCorrelationId() != 3 || env.GetCommandReply().GetReply().GetStatus() != mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_CANCELLED {
		t.Fatalf("want CANCELLED for 3, got %s %d", bodyName(env), env.GetCorrelationId())
	}
	close(gate)
	if env := h.next(); env.GetCorrelationId() != 1 || env.GetCommandReply() == nil {
		t.Fatalf("want the running command's reply, got %s", bodyName(env))
	}
	if env := h.next(); env.GetShutdownAck() == nil {
		t.Fatalf("want ShutdownAck, got %s", bodyName(env))
	}
	h.expectEOF()
	if code := h.exitCode(); code != protocol.ExitOK {
		t.Fatalf("exit code %d", code)
	}
	// The teardown runs over the worker's item table: the registration the
	// running command made is unregistered before the backend is released.
	if calls := be.callLog(); !slices.Equal(calls, []string{"Register", "Unregister", "Close"}) {
		t.Fatalf("backend calls = %v, want [Register Unregister Close]", calls)
	}
}

func TestEventQueueOverflow(t *testing.T) {
	be := newFake()
	h := start(t, be, harnessOpts{cfg: func(c *Config) { c.EventQueueSize = 100; c.CloseTimeout = 30 * time.Second }})
	h.ready(noHeartbeats)
	// The harness stops reading while its channel is full, so the storm
	// fills the socket, then the worker's queue.
	be.storm <- 50000
	waitFor(t, be.stormDone)
	var last uint64
	var fault *workerv1.Fault
	for fault == nil {
		env := h.recv()
		switch {
		case env.GetEvent() != nil:
			seq := env.GetEvent().GetEvent().GetSequence()
			if seq != last+1 {
				t.Fatalf("event sequence %d after %d", seq, last)
			}
			last = seq
		case env.GetFault() != nil:
			fault = env.GetFault()
		default:
			t.Fatalf("unexpected %s", bodyName(env))
		}
	}
	if fault.GetCode() != workerv1.FaultCode_FAULT_CODE_EVENT_OVERFLOW || !strings.Contains(fault.GetMessage(), "did not keep up: 100 events (") {
		t.Fatalf("fault = %v %q", fault.GetCode(), fault.GetMessage())
	}
	// The fault names exactly the last event delivered.
	if want := fmt.Sprintf("events after sequence %d were not sent", last); !strings.HasSuffix(fault.GetMessage(), want) {
		t.Fatalf("fault %q, want it to end with %q", fault.GetMessage(), want)
	}
	// Whatever was written before the fault is contiguous from 1 (checked
	// above); the rest was never sent, and the fault says so.
	if last >= 50000 {
		t.Fatalf("%d events delivered before the fault", last)
	}
	h.expectEOF()
	if code := h.exitCode(); code != protocol.ExitEventOverflow {
		t.Fatalf("exit code %d, want %d", code, protocol.ExitEventOverflow)
	}
}

// TestEventQueueBoundsFromGateway: the bounds the gateway announces in
// GatewayHello replace the worker's own, and the byte bound gives first when
// it is the tighter one.
func TestEventQueueBoundsFromGateway(t *testing.T) {
	be := newFake()
	h := start(t, be, harnessOpts{cfg: func(c *Config) { c.CloseTimeout = 30 * time.Second }})
	// A data change of the fake encodes in well under 100 bytes: 2,000
	// bytes hold fewer than 1,000 events.
	h.ready(noHeartbeats, func(gh *workerv1.GatewayHello) {
		gh.MaxQueuedEvents = 1000
		gh.MaxQueuedEventBytes = 2000
	})
	be.storm <- 50000
	waitFor(t, be.stormDone)
	var last uint64
	for {
		env := h.recv()
		if ev := env.GetEvent(); ev != nil {
			if seq := ev.GetEvent().GetSequence(); seq != last+1 {
				t.Fatalf("event sequence %d after %d", seq, last)
			}
			last++
			continue
		}
		f := env.GetFault()
		if f.GetCode() != workerv1.FaultCode_FAULT_CODE_EVENT_OVERFLOW || !strings.Contains(f.GetMessage(), "limits 1000 events, 2000 bytes") {
			t.Fatalf("want an event overflow naming the gateway's limits, got %s %v", bodyName(env), f)
		}
		break
	}
	h.expectEOF()
	if code := h.exitCode(); code != protocol.ExitEventOverflow {
		t.Fatalf("exit code %d, want %d", code, protocol.ExitEventOverflow)
	}
}

func TestReadBulk(t *testing.T) {
	be := newFake()
	h := start(t, be, harnessOpts{})
	h.ready(noHeartbeats)
	sh := h.call(1, register(), nil).GetRegister().GetServerHandle()
	advised := h.call(2, addItem(sh, "Value=5"), nil).GetItemHandle().GetItemHandle()
	var events []*mxgatewayv1.Event
	h.call(3, advise(sh, advised), &events)
	for len(events) < 1 {
		events = append(events, h.event())
	}
	notAdvised := h.call(4, addItem(sh, "Value=7"), nil).GetItemHandle().GetItemHandle()
	callsBefore := len(be.callLog())

	rep := h.call(5, readBulk(sh, 100, "value=5", "Value=7", "Value=9", "Bad.Ref", "NoValue"), &events)
	wantStatus(t, "ReadBulk", rep, mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_BULK)
	if len(events) != 1 {
		t.Fatalf("%d events forwarded during the read, want none", len(events)-1)
	}
	got := rep.GetReadBulk().GetEntries()
	if len(got) != 5 {
		t.Fatalf("%d entries", len(got))
	}
	check := func(i int, cached, timedOut bool, value int64, failed string) {
		t.Helper()
		r := got[i]
		if r.GetWasCached() != cached || r.GetTimedOut() != timedOut || r.GetFailedMethod() != failed || r.GetValue().GetInt64Value() != value {
			t.Fatalf("entry %d (%s) = cached %v timed out %v failed %q value %d", i, r.GetItemDefinition(),
				r.GetWasCached(), r.GetTimedOut(), r.GetFailedMethod(), r.GetValue().GetInt64Value())
		}
	}
	check(0, true, false, 5, "")
	check(1, false, false, 7, "") // added but not advised: still transient
	check(2, false, false, 9, "")
	check(3, false, false, 0, "AddItem")
	check(4, false, true, 0, "")
	if got[3].GetHresult() != mxtypes.E_ACCESSDENIED || got[0].GetQuality().GetRaw() != uint32(mxtypes.QualityGood) {
		t.Fatalf("entry hresult %#x quality %v", uint32(got[3].GetHresult()), got[0].GetQuality())
	}
	calls := strings.Join(be.callLog()[callsBefore:], ",")
	wantCalls := "AddItem,Advise,UnAdvise,RemoveItem,AddItem,Advise,UnAdvise,RemoveItem,AddItem,AddItem,Advise,UnAdvise,RemoveItem"
	if calls != wantCalls {
		t.Fatalf("backend calls\n got %s\nwant %s", calls, wantCalls)
	}
	be.mu.Lock()
	left, clientItem := len(be.items[sh]), be.items[sh][notAdvised]
	be.mu.Unlock()
	if left != 2 || clientItem.advised {
		t.Fatalf("transient items left behind (%d items) or client item changed", left)
	}

	// A write updates the cache.
	h.call(6, write(sh, advised, 42), &events)
	for len(events) < 3 {
		events = append(events, h.event())
	}
	rep = h.call(7, readBulk(sh, 0, "Value=5"), nil)
	if r := rep.GetReadBulk().GetEntries()[0]; !r.GetWasCached() || r.GetValue().GetInt64Value() != 42 {
		t.Fatalf("after write: cached %v value %d", r.GetWasCached(), r.GetValue().GetInt64Value())
	}

	// After UnAdvise the cache is gone: a transient item answers with the
	// backend's value for a fresh item (the fake's is parsed from the ref).
	h.call(8, unAdvise(sh, advised), nil)
	rep = h.call(9, readBulk(sh, 0, "Value=5"), nil)
	if r := rep.GetReadBulk().GetEntries()[0]; r.GetWasCached() || r.GetValue().GetInt64Value() != 5 {
		t.Fatalf("after unadvise: cached %v value %d", r.GetWasCached(), r.GetValue().GetInt64Value())
	}
	// Advised again the cache answers; RemoveItem (even while advised)
	// clears it, since the handle value may be reused.
	h.call(10, advise(sh, advised), nil)
	testutil.Eventually(t, 5*time.Second, func() error {
		r := h.call(11, readBulk(sh, 0, "Value=5"), nil).GetReadBulk().GetEntries()[0]
		if !r.GetWasCached() {
			return errors.New("not cached after re-advise")
		}
		return nil
	})
	h.call(12, removeItem(sh, advised), nil)
	rep = h.call(13, readBulk(sh, 0, "Value=5"), nil)
	if r := rep.GetReadBulk().GetEntries()[0]; r.GetWasCached() {
		t.Fatal("cache survived RemoveItem")
	}
	h.shutdown()
}

func TestBulkPerEntryFailures(t *testing.T) {
	be := newFake()
	h := start(t, be, harnessOpts{})
	h.ready(noHeartbeats)
	sh := h.call(1, register(), nil).GetRegister().GetServerHandle()

	entries := func(rep *mxgatewayv1.Reply) []*mxgatewayv1.BulkEntryResult {
		t.Helper()
		wantStatus(t, "bulk", rep, mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_BULK)
		return rep.GetBulk().GetEntries()
	}
	var events []*mxgatewayv1.Event
	got := entries(h.call(2, &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_SubscribeBulk{SubscribeBulk: &mxgatewayv1.SubscribeBulkCommand{
		ServerHandle: sh, ItemDefinitions: []string{"Value=1", "Bad.Ref", "Value=3"}}}}, &events))
	ok := mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK
	fail := mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_MXACCESS_FAILURE
	if len(got) != 3 ||
		got[0].GetStatus() != ok || got[0].GetItemHandle() != 1 || got[0].GetItemDefinition() != "Value=1" ||
		got[1].GetStatus() != fail || got[1].GetFailedMethod() != "AddItem" || got[1].GetHresult() != mxtypes.E_ACCESSDENIED ||
		got[2].GetStatus() != ok || got[2].GetItemHandle() != 2 {
		t.Fatalf("SubscribeBulk entries = %v", got)
	}
	for len(events) < 2 {
		events = append(events, h.event())
	}

	got = entries(h.call(3, &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_WriteBulk{WriteBulk: &mxgatewayv1.WriteBulkCommand{
		ServerHandle: sh, Entries: []*mxgatewayv1.WriteCommand{
			{ItemHandle: 1, Value: intValue(10)}, {ItemHandle: 99, Value: intValue(11)}, {ItemHandle: 2, Value: intValue(12)},
		}}}}, nil))
	if got[0].GetStatus() != ok || got[1].GetStatus() != fail || got[1].GetFailedMethod() != "Write" || got[2].GetStatus() != ok {
		t.Fatalf("WriteBulk entries = %v", got)
	}

	got = entries(h.call(4, &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_UnsubscribeBulk{UnsubscribeBulk: &mxgatewayv1.UnsubscribeBulkCommand{
		ServerHandle: sh, ItemHandles: []int32{1, 99, 2}}}}, nil))
	if got[0].GetStatus() != ok || got[1].GetStatus() != fail || got[1].GetFailedMethod() != "UnAdvise" || got[2].GetStatus() != ok {
		t.Fatalf("UnsubscribeBulk entries = %v", got)
	}
	// UnsubscribeBulk is best effort: the failed entry lists both calls it
	// made; successful entries list none.
	if c := got[1].GetCalls(); len(c) != 2 || c[0].GetMethod() != "UnAdvise" || c[1].GetMethod() != "RemoveItem" ||
		c[0].GetStatus() != fail || c[1].GetStatus() != fail || len(got[0].GetCalls()) != 0 {
		t.Fatalf("UnsubscribeBulk calls = %v / %v", got[1].GetCalls(), got[0].GetCalls())
	}
	be.mu.Lock()
	left := len(be.items[sh])
	be.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d items left after UnsubscribeBulk", left)
	}
	h.shutdown()
}

func TestBrokenBackendFaults(t *testing.T) {
	be := newFake()
	be.broken["Register"] = errors.New("com: STA thread died")
	h := start(t, be, harnessOpts{})
	h.ready(noHeartbeats)
	h.command(1, register())
	f := h.expectFault()
	if f.GetCode() != workerv1.FaultCode_FAULT_CODE_INTERNAL || !strings.Contains(f.GetMessage(), "STA thread died") {
		t.Fatalf("fault = %v %q", f.GetCode(), f.GetMessage())
	}
	h.expectEOF()
	if code := h.exitCode(); code != protocol.ExitInternal {
		t.Fatalf("exit code %d", code)
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		if calls := be.callLog(); calls[len(calls)-1] != "Close" {
			return fmt.Errorf("backend not closed: %v", calls)
		}
		return nil
	})
}

func TestConnectionLost(t *testing.T) {
	be := newFake()
	h := start(t, be, harnessOpts{})
	h.ready(noHeartbeats)
	h.conn.Close()
	if code := h.exitCode(); code != protocol.ExitConnectionLost {
		t.Fatalf("exit code %d, want %d", code, protocol.ExitConnectionLost)
	}
	if calls := be.callLog(); len(calls) != 1 || calls[0] != "Close" {
		t.Fatalf("backend calls = %v, want [Close]", calls)
	}
}

func TestContextCancelled(t *testing.T) {
	be := newFake()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := start(t, be, harnessOpts{ctx: ctx})
	h.ready(noHeartbeats)
	cancel()
	h.expectEOF()
	if code := h.exitCode(); code != protocol.ExitConnectionLost {
		t.Fatalf("exit code %d", code)
	}
	if calls := be.callLog(); len(calls) != 1 || calls[0] != "Close" {
		t.Fatalf("backend calls = %v, want [Close]", calls)
	}
}

func TestProtocolErrorAfterReady(t *testing.T) {
	cases := []struct {
		name string
		env  *workerv1.WorkerEnvelope
	}{
		{"wrong session", &workerv1.WorkerEnvelope{SessionId: "other", Body: &workerv1.WorkerEnvelope_Cancel{Cancel: &workerv1.Cancel{}}}},
		{"worker body", &workerv1.WorkerEnvelope{Body: &workerv1.WorkerEnvelope_Heartbeat{Heartbeat: &workerv1.Heartbeat{}}}},
		{"second hello", &workerv1.WorkerEnvelope{Body: &workerv1.WorkerEnvelope_GatewayHello{GatewayHello: &workerv1.GatewayHello{}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			be := newFake()
			h := start(t, be, harnessOpts{})
			h.ready(noHeartbeats)
			h.send(0, tc.env)
			if f := h.expectFault(); f.GetCode() != workerv1.FaultCode_FAULT_CODE_PROTOCOL {
				t.Fatalf("fault %v", f.GetCode())
			}
			if code := h.exitCode(); code != protocol.ExitProtocolError {
				t.Fatalf("exit code %d", code)
			}
		})
	}
}

func TestPanicInBackend(t *testing.T) {
	be := &panicky{fakeBackend: newFake()}
	h := start(t, be, harnessOpts{})
	h.ready(noHeartbeats)
	h.command(1, register())
	if f := h.expectFault(); f.GetCode() != workerv1.FaultCode_FAULT_CODE_INTERNAL || !strings.Contains(f.GetMessage(), "panic") {
		t.Fatalf("fault = %v %q", f.GetCode(), f.GetMessage())
	}
	if code := h.exitCode(); code != protocol.ExitInternal {
		t.Fatalf("exit code %d", code)
	}
}

type panicky struct{ *fakeBackend }

func (p *panicky) Register(string) (int32, error) { panic("boom") }

func TestReadNonce(t *testing.T) {
	good := strings.Repeat("0f", protocol.NonceBytes)
	cases := []struct {
		in   string
		want error
	}{
		{good + "\n", nil},
		{good + "\r\n", nil},
		{good, nil},
		{"", ErrNoNonce},
		{"\n", ErrNoNonce},
		{good[:62] + "\n", ErrBadNonce},
		{good + "00\n", ErrBadNonce},
		{strings.ToUpper(good) + "\n", ErrBadNonce},
		{"0x" + good[2:] + "\n", ErrBadNonce},
	}
	for _, tc := range cases {
		in := tc.in
		if strings.HasSuffix(in, "\n") {
			in += "rest"
		}
		r := strings.NewReader(in)
		n, err := ReadNonce(r)
		if !errors.Is(err, tc.want) {
			t.Fatalf("ReadNonce(%q) error %v, want %v", tc.in, err, tc.want)
		}
		if err == nil && (len(n) != protocol.NonceBytes || n[0] != 0x0f) {
			t.Fatalf("ReadNonce(%q) = %x", tc.in, n)
		}
		if err == nil && strings.HasSuffix(tc.in, "\n") && r.Len() != len("rest") {
			t.Fatalf("ReadNonce(%q) read past the line", tc.in)
		}
	}
}

// TestEveryCatalogueCommandIsDispatched: every single command of the
// catalogue reaches its Backend method (call has a case for it).
func TestEveryCatalogueCommandIsDispatched(t *testing.T) {
	w := &worker{be: newFake(), cfg: Config{SessionID: "s"}}
	for _, k := range catalog.Kinds() {
		if !k.IsSingle() {
			continue
		}
		if _, err := w.call(k.New(k.NewMessage().Interface())); errors.Is(err, errNoBinding) {
			t.Errorf("%s: %v", k, err)
		}
	}
	if _, err := w.call(&mxgatewayv1.Command{}); !errors.Is(err, errNoBinding) {
		t.Fatalf("a command without a kind: %v", err)
	}
}
