package worker

import (
	"strings"
	"testing"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	workerv1 "github.com/mxgateway/mxgateway/api/mxgateway/worker/v1"
	"github.com/mxgateway/mxgateway/internal/backend/sim"
	"github.com/mxgateway/mxgateway/internal/protocol"
)

// These tests drive the real Galaxy simulator (test profile: no delays)
// through the worker over a real socket.

func int32Value(v int32) *mxgatewayv1.MxValue {
	return &mxgatewayv1.MxValue{DataType: mxgatewayv1.MxDataType_MX_DATA_TYPE_INTEGER, Kind: &mxgatewayv1.MxValue_Int32Value{Int32Value: v}}
}

// startSim runs a worker on a fresh simulator whose crash fault goes
// through an Exiter into exits.
func startSim(t *testing.T, exits chan<- int) *harness {
	t.Helper()
	exiter := NewExiter(func(code int) { exits <- code })
	b, err := sim.New(sim.Options{Profile: "test", Seed: 1, Exit: exiter.Exit})
	if err != nil {
		t.Fatal(err)
	}
	return start(t, b, harnessOpts{cfg: func(c *Config) { c.Exiter = exiter }})
}

// subscribe registers, adds and advises ref, returning the handles and the
// first data change.
func subscribe(h *harness, corr uint64, ref string) (sh, ih int32, first *mxgatewayv1.OnDataChange) {
	h.t.Helper()
	sh = h.call(corr, register(), nil).GetRegister().GetServerHandle()
	ih = h.call(corr+1, addItem(sh, ref), nil).GetItemHandle().GetItemHandle()
	var events []*mxgatewayv1.Event
	wantStatus(h.t, "Advise", h.call(corr+2, advise(sh, ih), &events), mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK)
	for len(events) == 0 {
		events = append(events, h.event())
	}
	return sh, ih, events[0].GetDataChange()
}

func TestSimSessionAndCrash(t *testing.T) {
	exits := make(chan int, 1)
	h := startSim(t, exits)
	ready := h.ready(noHeartbeats)
	if !ready.GetBackend().GetSimulated() || ready.GetBackend().GetKind() != "sim" {
		t.Fatalf("ready backend = %v", ready.GetBackend())
	}
	sh, ih, first := subscribe(h, 1, "Pump1.StartCount")
	if first.GetItemHandle() != ih || first.GetValue().GetInt32Value() != 17 {
		t.Fatalf("first value = %v", first)
	}

	// The cached read and a transient one.
	rep := h.call(10, readBulk(sh, 2000, "Pump1.StartCount", "Pump2.FaultCode", "NoSuchObject.PV"), nil)
	got := rep.GetReadBulk().GetEntries()
	if !got[0].GetWasCached() || got[0].GetValue().GetInt32Value() != 17 {
		t.Fatalf("cached entry = %v", got[0])
	}
	if got[1].GetWasCached() || got[1].GetTimedOut() || got[1].GetQuality().GetRaw() != 192 {
		t.Fatalf("transient entry = %v", got[1])
	}
	if got[2].GetTimedOut() || got[2].GetQuality().GetRaw() != 0 || len(got[2].GetStatuses()) == 0 || got[2].GetStatuses()[0].GetSuccess() {
		t.Fatalf("unresolved entry = %v", got[2])
	}

	// Sim.Crash: the write is answered, then the process would exit with
	// the chosen code.
	crash := h.call(20, addItem(sh, "Sim.Crash"), nil).GetItemHandle().GetItemHandle()
	var events []*mxgatewayv1.Event
	h.call(21, advise(sh, crash), &events)
	rep = h.call(22, &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Write{Write: &mxgatewayv1.WriteCommand{
		ServerHandle: sh, ItemHandle: crash, Value: int32Value(7)}}}, nil)
	wantStatus(t, "Write Sim.Crash", rep, mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK)
	if code := waitFor(t, exits); code != 7 {
		t.Fatalf("crash exit code %d, want 7", code)
	}
	// In a test the exit returns: the backend is dead and the worker faults
	// on its next call instead of answering it.
	h.command(23, register())
	if f := h.expectFault(); f.GetCode() != workerv1.FaultCode_FAULT_CODE_INTERNAL {
		t.Fatalf("fault after crash = %v %q", f.GetCode(), f.GetMessage())
	}
	if code := h.exitCode(); code != protocol.ExitInternal {
		t.Fatalf("exit code %d", code)
	}
}

// TestSimHangStopsHeartbeats: Sim.HangMs stops the simulator's STA, so the
// heartbeat's Ping round trip stalls and heartbeats stop, then resume.
func TestSimHangStopsHeartbeats(t *testing.T) {
	h := startSim(t, make(chan int, 1))
	h.ready(5 * time.Millisecond)
	sh := h.call(1, register(), nil).GetRegister().GetServerHandle()
	hang := h.call(2, addItem(sh, "Sim.HangMs"), nil).GetItemHandle().GetItemHandle()
	h.call(3, advise(sh, hang), nil)
	wantStatus(t, "Write Sim.HangMs", h.call(4, &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Write{Write: &mxgatewayv1.WriteCommand{
		ServerHandle: sh, ItemHandle: hang, Value: int32Value(1500)}}}, nil), mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK)

	// Heartbeats are due every 5 ms; while the STA hangs, none arrive for
	// far longer than that. Then they resume.
	gap := false
	deadline := time.Now().Add(10 * time.Second)
	for !gap && time.Now().Before(deadline) {
		if _, ok := h.tryRecv(300 * time.Millisecond); !ok {
			gap = true
		}
	}
	if !gap {
		t.Fatal("heartbeats never stopped while the simulator hung")
	}
	for {
		env := h.recv()
		if hb := env.GetHeartbeat(); hb != nil && hb.GetBackendResponsive() {
			break
		}
	}
	h.shutdown()
}

func TestSimBackendInitFailure(t *testing.T) {
	_, err := sim.New(sim.Options{ModelPath: "testdata/does-not-exist.yaml"})
	if err == nil {
		t.Fatal("expected a model error")
	}
	// Main turns a backend that cannot be built into a BACKEND_INIT fault.
	be := failedBackend{err: err}
	h := start(t, be, harnessOpts{})
	h.hello(noHeartbeats)
	if h.next().GetWorkerHello() == nil {
		t.Fatal("no WorkerHello")
	}
	f := h.expectFault()
	if f.GetCode() != workerv1.FaultCode_FAULT_CODE_BACKEND_INIT || !strings.Contains(f.GetMessage(), "does-not-exist.yaml") {
		t.Fatalf("fault = %v %q", f.GetCode(), f.GetMessage())
	}
	if code := h.exitCode(); code != protocol.ExitBackendInit {
		t.Fatalf("exit code %d", code)
	}
}
