package worker

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/mxtypes"
	workerv1 "github.com/mxgateway/mxgateway/api/mxgateway/worker/v1"
)

// guarded sends cmd with an item guard approving refs (item handle →
// reference) in registration sh, and returns the reply and the worker's
// refusal.
func (h *harness) guarded(correlation uint64, cmd *mxgatewayv1.Command, sh int32, refs map[int32]string) (*mxgatewayv1.Reply, *mxgatewayv1.EntryDenial) {
	h.t.Helper()
	g := &workerv1.ItemGuard{}
	for ih, ref := range refs {
		g.Items = append(g.Items, &workerv1.GuardedItem{ServerHandle: sh, ItemHandle: ih, ItemDefinition: ref})
	}
	h.send(correlation, &workerv1.WorkerEnvelope{Body: &workerv1.WorkerEnvelope_Command{Command: &workerv1.WorkerCommand{
		Command: cmd, Timeout: durationpb.New(30 * time.Second), ItemGuard: g,
	}}})
	for {
		env := h.next()
		if r := env.GetCommandReply(); r != nil {
			if env.GetCorrelationId() != correlation {
				h.t.Fatalf("reply correlation %d, want %d", env.GetCorrelationId(), correlation)
			}
			return r.GetReply(), r.GetDenial()
		}
		if env.GetEvent() == nil {
			h.t.Fatalf("unexpected %s", bodyName(env))
		}
	}
}

func doubleValue(v float64) *mxgatewayv1.MxValue {
	return &mxgatewayv1.MxValue{DataType: mxgatewayv1.MxDataType_MX_DATA_TYPE_DOUBLE, Kind: &mxgatewayv1.MxValue_DoubleValue{DoubleValue: v}}
}

func writeValue(sh, ih int32, v *mxgatewayv1.MxValue) *mxgatewayv1.Command {
	return &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Write{Write: &mxgatewayv1.WriteCommand{ServerHandle: sh, ItemHandle: ih, Value: v}}}
}

func readValue(t *testing.T, h *harness, corr uint64, sh int32, ref string) float64 {
	t.Helper()
	r := h.call(corr, readBulk(sh, 5000, ref), nil).GetReadBulk().GetEntries()
	if len(r) != 1 || r[0].GetTimedOut() {
		t.Fatalf("ReadBulk %s = %v", ref, r)
	}
	return r[0].GetValue().GetDoubleValue()
}

// TestItemGuardRefusesAHandleThatChangedMeaning is the worker's half of the
// write-constraint bypass: the gateway approved a write to handle 1 as
// TIC101.SP, but a RemoveItem and an AddItem the gateway never saw the
// replies of made handle 1 TIC101.HiLimit. The worker's table decides.
func TestItemGuardRefusesAHandleThatChangedMeaning(t *testing.T) {
	h := startSim(t, make(chan int, 1))
	h.ready(noHeartbeats)
	sh, sp, _ := subscribe(h, 1, "TIC101.SP")
	approved := map[int32]string{sp: "TIC101.SP"}
	if rep, den := h.guarded(10, writeValue(sh, sp, doubleValue(70)), sh, approved); den != nil || rep.GetStatus() != statusOK {
		t.Fatalf("approved write: %v %v", rep, den)
	}
	wantStatus(t, "RemoveItem", h.call(11, removeItem(sh, sp), nil), statusOK)
	hi := h.call(12, addItem(sh, "TIC101.HiLimit"), nil).GetItemHandle().GetItemHandle()
	if hi != sp {
		t.Fatalf("AddItem after RemoveItem gave handle %d, the simulator reuses %d", hi, sp)
	}
	wantStatus(t, "Advise", h.call(13, advise(sh, hi), nil), statusOK)

	_, den := h.guarded(14, writeValue(sh, hi, doubleValue(150)), sh, approved)
	if den.GetReason() != mxgatewayv1.ReasonReferenceForbidden || !strings.Contains(den.GetMessage(), "TIC101.HiLimit") {
		t.Fatalf("stale approval: denial %v, want REFERENCE_NOT_ALLOWED naming TIC101.HiLimit", den)
	}
	if v := readValue(t, h, 15, sh, "TIC101.HiLimit"); v != 90 {
		t.Fatalf("TIC101.HiLimit = %v after a refused write, want 90", v)
	}
	// A handle the gateway approved nothing for is refused too.
	if _, den := h.guarded(16, writeValue(sh, hi, doubleValue(150)), sh, nil); den == nil {
		t.Fatal("a guarded write of an unapproved handle ran")
	}
	// Approved as what it is: it runs.
	if rep, den := h.guarded(17, writeValue(sh, hi, doubleValue(95)), sh, map[int32]string{hi: "TIC101.HiLimit"}); den != nil || rep.GetStatus() != statusOK {
		t.Fatalf("write approved as TIC101.HiLimit: %v %v", rep, den)
	}
	// A handle <= 0 names no item: approved as "", MXAccess answers it.
	rep, den := h.guarded(18, writeValue(sh, 0, doubleValue(1)), sh, map[int32]string{0: ""})
	if den != nil || rep.GetStatus() != statusFailure || rep.GetHresult() != mxtypes.E_INVALIDARG {
		t.Fatalf("write of handle 0: %v %v, want MXAccess's E_INVALIDARG", rep, den)
	}
	h.shutdown()
}

// TestItemGuardPerBulkEntry: a guarded bulk refuses only the entries whose
// handle does not name the approved reference, in place.
func TestItemGuardPerBulkEntry(t *testing.T) {
	h := startSim(t, make(chan int, 1))
	h.ready(noHeartbeats)
	sh := h.call(1, register(), nil).GetRegister().GetServerHandle()
	sub := h.call(2, &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_SubscribeBulk{SubscribeBulk: &mxgatewayv1.SubscribeBulkCommand{
		ServerHandle: sh, ItemDefinitions: []string{"TIC101.SP", "TIC101.HiLimit"}}}}, nil).GetBulk().GetEntries()
	sp, hi := sub[0].GetItemHandle(), sub[1].GetItemHandle()
	wb := &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_WriteBulk{WriteBulk: &mxgatewayv1.WriteBulkCommand{
		ServerHandle: sh, Entries: []*mxgatewayv1.WriteCommand{
			{ItemHandle: sp, Value: doubleValue(66)},
			{ItemHandle: hi, Value: doubleValue(150)},
			{ItemHandle: 0, Value: doubleValue(1)},
			{ItemHandle: 77, Value: doubleValue(1)},
		}}}}
	rep, den := h.guarded(3, wb, sh, map[int32]string{sp: "TIC101.SP", hi: "TIC101.SP", 0: ""})
	if den != nil {
		t.Fatalf("a bulk is never refused as a whole: %v", den)
	}
	es := rep.GetBulk().GetEntries()
	if len(es) != 4 {
		t.Fatalf("%d entries", len(es))
	}
	if es[0].GetStatus() != statusOK || es[0].GetDenial() != nil {
		t.Fatalf("entry 0 (approved as what it is) = %v", es[0])
	}
	for _, i := range []int{1, 3} {
		if es[i].GetDenial().GetReason() != mxgatewayv1.ReasonReferenceForbidden || len(es[i].GetCalls()) != 0 {
			t.Fatalf("entry %d = %v, want refused before any call", i, es[i])
		}
	}
	if es[2].GetStatus() != statusFailure || es[2].GetHresult() != mxtypes.E_INVALIDARG || es[2].GetDenial() != nil {
		t.Fatalf("entry 2 (handle 0) = %v, want MXAccess's E_INVALIDARG", es[2])
	}
	if es[1].GetItemHandle() != hi || es[3].GetItemHandle() != 77 {
		t.Fatalf("refused entries do not echo their handles: %v", es)
	}
	if v := readValue(t, h, 4, sh, "TIC101.HiLimit"); v != 90 {
		t.Fatalf("TIC101.HiLimit = %v, want 90", v)
	}
	h.shutdown()
}

// TestTransientLeftoverIsTornDown: a ReadBulk transient item MXAccess
// would not remove is kept in the item table, refused to guarded writes,
// and removed by the teardown.
func TestTransientLeftoverIsTornDown(t *testing.T) {
	h := startSim(t, make(chan int, 1))
	h.ready(noHeartbeats)
	sh, fm, _ := subscribe(h, 1, "Sim.FailMethod")
	str := func(s string) *mxgatewayv1.MxValue {
		return &mxgatewayv1.MxValue{DataType: mxgatewayv1.MxDataType_MX_DATA_TYPE_STRING, Kind: &mxgatewayv1.MxValue_StringValue{StringValue: s}}
	}
	// The simulator applies the write on its STA before the next call it
	// takes: the failure is armed for the ReadBulk.
	wantStatus(t, "Write Sim.FailMethod", h.call(10, writeValue(sh, fm, str("RemoveItem")), nil), statusOK)
	r := h.call(11, readBulk(sh, 5000, "Pump1.StartCount"), nil).GetReadBulk().GetEntries()
	if len(r) != 1 || r[0].GetValue().GetInt32Value() != 17 {
		t.Fatalf("transient read = %v", r)
	}
	wantStatus(t, "Write Sim.FailMethod", h.call(12, writeValue(sh, fm, str("")), nil), statusOK)
	leftover := fm + 1
	_, den := h.guarded(13, writeValue(sh, leftover, int32Value(1)), sh, map[int32]string{leftover: "Pump1.StartCount"})
	if den == nil || !strings.Contains(den.GetMessage(), `"Pump1.StartCount"`) {
		t.Fatalf("guarded write to the leftover transient item: denial %v, want one naming the leftover", den)
	}
	ack := h.shutdown()
	if len(ack.GetTeardownWarnings()) != 0 {
		t.Fatalf("teardown warnings %v: the leftover was not removed in order", ack.GetTeardownWarnings())
	}
}
