package sim

// One test per behaviour of the simulator contract, MXACCESS.md §7.1.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/mxtypes"
	"github.com/mxgateway/mxgateway/internal/backend"
	"github.com/mxgateway/mxgateway/internal/itemtable"
	"google.golang.org/protobuf/proto"
)

func TestContract01_RegisterReturnsPositiveHandlesWithOwnHandleSpaces(t *testing.T) {
	e := newEnv(t, envOpt{})
	h1, h2 := e.reg(), e.reg()
	if h1 == h2 {
		t.Fatalf("two registrations share handle %d", h1)
	}
	for _, h := range []int32{h1, h2} {
		if hi := e.add(h, "Obj.PV"); hi != 1 {
			t.Fatalf("first item handle in registration %d = %d, want 1", h, hi)
		}
	}
	// Both registrations work side by side in one backend.
	e.b.Advise(h1, 1)
	e.b.Advise(h2, 1)
	e.advance(time.Second)
	got := map[int32]bool{}
	for _, dc := range dataChanges(e.rec.take()) {
		got[dc.GetServerHandle()] = true
	}
	if !got[h1] || !got[h2] {
		t.Fatalf("initial values for registrations %v, want both %d and %d", got, h1, h2)
	}
}

func TestContract02_InvalidHandlesReturnInvalidHandleHResult(t *testing.T) {
	for _, hr := range []int32{mxtypes.E_INVALIDARG, mxtypes.E_FAIL} {
		e := newEnv(t, envOpt{knobs: func(k *Knobs) { k.InvalidHandleHResult = hr }})
		h1, h2 := e.reg(), e.reg()
		e.add(h1, "Obj.PV")
		e.add(h1, "Obj.Int") // handle 2 exists in h1 only
		e.add(h2, "Obj.PV")
		v := mxtypes.IntegerValue(1)
		calls := map[string]func(h, hi int32) error{
			"Unregister":        func(h, hi int32) error { return e.b.Unregister(h) },
			"AddItem":           func(h, hi int32) error { _, err := e.b.AddItem(h, "Obj.PV"); return err },
			"AddItem2":          func(h, hi int32) error { _, err := e.b.AddItem2(h, "Obj.PV", ""); return err },
			"AddBufferedItem":   func(h, hi int32) error { _, err := e.b.AddBufferedItem(h, "Obj.PV"); return err },
			"RemoveItem":        e.b.RemoveItem,
			"Advise":            e.b.Advise,
			"AdviseSupervisory": e.b.AdviseSupervisory,
			"UnAdvise":          e.b.UnAdvise,
			"Suspend":           e.b.Suspend,
			"Activate":          e.b.Activate,
			"SetBufferedUpdateInterval": func(h, hi int32) error {
				return e.b.SetBufferedUpdateInterval(h, 100)
			},
			"Write":         func(h, hi int32) error { return e.b.Write(h, hi, v, 0) },
			"Write2":        func(h, hi int32) error { return e.b.Write2(h, hi, v, testStart, 0) },
			"WriteSecured":  func(h, hi int32) error { return e.b.WriteSecured(h, hi, 1, 1, v) },
			"WriteSecured2": func(h, hi int32) error { return e.b.WriteSecured2(h, hi, 1, 1, v, testStart) },
			"AuthenticateUser": func(h, hi int32) error {
				_, err := e.b.AuthenticateUser(h, "op", "op1")
				return err
			},
			"ArchestrAUserToId": func(h, hi int32) error { _, err := e.b.ArchestrAUserToId(h, "op"); return err },
		}
		itemMethods := []string{"RemoveItem", "Advise", "AdviseSupervisory", "UnAdvise", "Suspend", "Activate",
			"Write", "Write2", "WriteSecured", "WriteSecured2"}
		for name, call := range calls {
			err := call(99, 1)
			var ce *backend.CallError
			if !errors.As(err, &ce) || ce.HRESULT != hr {
				t.Errorf("%s with unknown hLMX: %v, want HRESULT 0x%08X", name, err, uint32(hr))
			}
		}
		for _, name := range itemMethods {
			// Handle 2 belongs to h1, not to h2; handle 7 to nobody.
			for _, hi := range []int32{2, 7} {
				if got := hresult(calls[name](h2, hi)); got != hr {
					t.Errorf("%s with foreign item handle %d: HRESULT 0x%08X, want 0x%08X", name, hi, uint32(got), uint32(hr))
				}
			}
		}
		e.b.Close()
	}
}

func TestContract03_ItemHandlesStartAtOneAndReuseLowestFreed(t *testing.T) {
	e := newEnv(t, envOpt{})
	h := e.reg()
	for want := int32(1); want <= 3; want++ {
		if got := e.add(h, "Obj.PV"); got != want {
			t.Fatalf("handle %d, want %d", got, want)
		}
	}
	if err := e.b.RemoveItem(h, 2); err != nil {
		t.Fatal(err)
	}
	if err := e.b.RemoveItem(h, 1); err != nil {
		t.Fatal(err)
	}
	for _, want := range []int32{1, 2, 4} {
		if got := e.add(h, "Obj.Int"); got != want {
			t.Fatalf("after removals: handle %d, want %d", got, want)
		}
	}

	m := newEnv(t, envOpt{knobs: func(k *Knobs) { k.HandleReuse = HandleReuseMonotonic }})
	h = m.reg()
	m.add(h, "Obj.PV")
	m.add(h, "Obj.PV")
	m.b.RemoveItem(h, 1)
	if got := m.add(h, "Obj.PV"); got != 3 {
		t.Fatalf("monotonic: handle %d, want 3", got)
	}
}

func TestContract04_UnknownReferenceFailsOnFirstDataChange(t *testing.T) {
	e := newEnv(t, envOpt{})
	h := e.reg()
	for _, ref := range []string{"Obj.Missing", "NoSuchObject.PV", "Obj.PV+1", strings.Repeat("x", 400)} {
		_, dc := e.sub(h, ref)
		if !dc.GetValue().GetIsNull() || dc.GetValue().GetVariantType() != uint32(mxtypes.VT_EMPTY) {
			t.Errorf("%.20q: value %v, want VT_EMPTY", ref, dc.GetValue())
		}
		if dc.GetQuality().GetRaw() != 0 {
			t.Errorf("%.20q: quality %d, want 0", ref, dc.GetQuality().GetRaw())
		}
		if len(dc.GetStatuses()) != 1 {
			t.Fatalf("%.20q: %d statuses, want 1", ref, len(dc.GetStatuses()))
		}
		st := dc.GetStatuses()[0]
		if st.GetSuccess() || st.GetSuccessRaw() != 0 || category(st) != catConfig || st.GetDetail() != 0 {
			t.Errorf("%.20q: status %v, want success 0, ConfigurationError, detail 0", ref, st)
		}
	}

	c := newEnv(t, envOpt{knobs: func(k *Knobs) {
		k.UnresolvedQuality, k.UnresolvedCategory, k.UnresolvedDetail = 4, catOperational, 77
	}})
	_, dc := c.sub(c.reg(), "Obj.Missing")
	st := dc.GetStatuses()[0]
	if dc.GetQuality().GetRaw() != 4 || category(st) != catOperational || st.GetDetail() != 77 {
		t.Fatalf("configured unresolved: quality %d status %v", dc.GetQuality().GetRaw(), st)
	}

	s := newEnv(t, envOpt{knobs: func(k *Knobs) { k.StrictAddItem = true }})
	h = s.reg()
	if _, err := s.b.AddItem(h, "Obj.PV+1"); hresult(err) != mxtypes.E_INVALIDARG {
		t.Fatalf("strictAddItem malformed: %v, want E_INVALIDARG", err)
	}
	if _, err := s.b.AddItem(h, "Obj.Missing"); err != nil {
		t.Fatalf("strictAddItem well-formed unknown: %v, want S_OK", err)
	}
}

func TestContract05_ArrayWithoutBracketsFailsWithDetail1003(t *testing.T) {
	e := newEnv(t, envOpt{})
	_, dc := e.sub(e.reg(), "Obj.Arr")
	st := dc.GetStatuses()[0]
	if dc.GetQuality().GetRaw() != 0 || st.GetDetail() != 1003 || st.GetSuccess() ||
		category(st) != int32(mxgatewayv1.MxStatusCategory_MX_STATUS_CATEGORY_COMMUNICATION_ERROR) {
		t.Fatalf("Obj.Arr: quality %d status %v, want 0 / CommunicationError 1003", dc.GetQuality().GetRaw(), st)
	}
	c := newEnv(t, envOpt{knobs: func(k *Knobs) {
		k.ArrayWithoutBracketsCategory = catConfig
		k.EmitTimestampOnlyChanges = true
	}})
	h := c.reg()
	bare, dc := c.sub(h, "Obj.Arr")
	if st := dc.GetStatuses()[0]; category(st) != catConfig || st.GetDetail() != 1003 {
		t.Fatalf("configured category: %v", st)
	}
	// The failure is reported once; changes of the array do not repeat it.
	el, _ := c.sub(h, "Obj.Arr[1]")
	c.write(h, el, mxtypes.IntegerValue(11))
	c.advance(time.Second)
	for _, dc := range dataChanges(c.rec.take()) {
		if dc.GetItemHandle() == bare {
			t.Fatalf("bare array reference got another OnDataChange: %v", dc)
		}
	}
}

func TestContract06_ArrayIndexesAreOneBased(t *testing.T) {
	e := newEnv(t, envOpt{})
	h := e.reg()
	for ref, want := range map[string]int32{"Obj.Arr[1]": 1, "Obj.Arr[3]": 3} {
		_, dc := e.sub(h, ref)
		if v := dc.GetValue(); v.GetInt32Value() != want || v.GetVariantType() != uint32(mxtypes.VT_I4) {
			t.Errorf("%s = %v, want %d as VT_I4", ref, v, want)
		}
	}
	for _, ref := range []string{"Obj.Arr[0]", "Obj.Arr[4]", "Obj.PV[1]", "Obj.PV[]"} {
		_, dc := e.sub(h, ref)
		if dc.GetQuality().GetRaw() != 0 || category(dc.GetStatuses()[0]) != catConfig {
			t.Errorf("%s: quality %d status %v, want unresolved", ref, dc.GetQuality().GetRaw(), dc.GetStatuses()[0])
		}
	}
	for _, ref := range []string{"Obj.Arr[]", "Obj.Arr[-1]"} {
		_, dc := e.sub(h, ref)
		v := dc.GetValue()
		if v.GetVariantType() != uint32(mxtypes.VT_ARRAY|mxtypes.VT_I4) ||
			!slices.Equal(v.GetArrayValue().GetInt32S().GetValues(), []int32{1, 2, 3}) {
			t.Errorf("%s = %v, want SAFEARRAY of VT_I4 [1 2 3]", ref, v)
		}
	}
	_, dc := e.sub(h, "Obj.StrArr[]")
	if v := dc.GetValue(); v.GetVariantType() != uint32(mxtypes.VT_ARRAY|mxtypes.VT_BSTR) ||
		!slices.Equal(v.GetArrayValue().GetStrings().GetValues(), []string{"a", "b"}) {
		t.Errorf("Obj.StrArr[] = %v", v)
	}
}

func TestContract07_PropertiesBitFieldsDefaultPVAndAttributes(t *testing.T) {
	e := newEnv(t, envOpt{})
	h := e.reg()
	good := func(ref string) *mxgatewayv1.MxValue {
		t.Helper()
		_, dc := e.sub(h, ref)
		if !dc.GetStatuses()[0].GetSuccess() {
			t.Fatalf("%s: status %v, want success", ref, dc.GetStatuses()[0])
		}
		return dc.GetValue()
	}
	checks := []struct {
		ref  string
		want *mxgatewayv1.MxValue
	}{
		{"Obj", mxtypes.DoubleValue(1.5)},
		{"obj.pv", mxtypes.DoubleValue(1.5)},
		{"TestGalaxy:Obj.PV", mxtypes.DoubleValue(1.5)},
		{"Obj.PV.Value", mxtypes.DoubleValue(1.5)},
		{"Obj.Int.00", mxtypes.BoolValue(true)},
		{"Obj.Int.01", mxtypes.BoolValue(false)},
		{"Obj.Int.02", mxtypes.BoolValue(true)},
		{"Obj.Arr[2].01", mxtypes.BoolValue(true)},
		{"Obj.PV.Quality", mxtypes.Int32Value(tQual, 192)},
		{"Obj.Quality", mxtypes.Int32Value(tQual, 192)},
		{"Obj.PV.Type", mxtypes.Int32Value(tDTEnum, int32(tDouble))},
		{"Obj.Arr.Dimension1", mxtypes.IntegerValue(3)},
		{"Obj.Op.SecurityClassification", mxtypes.Int32Value(tSecEnum, int32(Operate))},
		{"Obj.Op.Locked", mxtypes.BoolValue(true)},
		{"Obj.Op.Category", mxtypes.IntegerValue(3)},
		{"Obj.Op.Name", mxtypes.StringValue("Op")},
		{"Obj.Op.Time", mxtypes.TimeValue(testStart)},
		{"Obj.Alarm.Quality", mxtypes.StringValue("attr")},
		{"Obj.Alarm.PROPERTY(quality)", mxtypes.Int32Value(tQual, 192)},
		{"Obj.Struct.Field", mxtypes.IntegerValue(7)},
		{"Obj.Nothing", mxtypes.NullValue(tNoData)},
	}
	for _, c := range checks {
		if got := good(c.ref); !proto.Equal(got, c.want) {
			t.Errorf("%s = %v, want %v", c.ref, got, c.want)
		}
	}
	names := good("Obj._Attributes").GetArrayValue().GetStrings().GetValues()
	if len(names) != 23 || names[0] != "PV" || !slices.Contains(names, "Struct.Field") {
		t.Errorf("Obj._Attributes = %v", names)
	}
	for _, ref := range []string{"Obj.Str.00", "Obj.Struct", "Elsewhere:Obj.PV", "Obj.Arr.01"} {
		_, dc := e.sub(h, ref)
		if dc.GetStatuses()[0].GetSuccess() {
			t.Errorf("%s resolved, want failure", ref)
		}
	}
	// The client's spelling is kept: the handle serves "obj.pv" as added.
	if e.b.Model().Object("obj") == nil {
		t.Error("case-insensitive object lookup failed")
	}
}

func TestContract08_FirstDataChangeAfterBindDelayNeverInsideAdvise(t *testing.T) {
	e := newEnv(t, envOpt{})
	h := e.reg()
	hi := e.add(h, "Obj.PV")
	if err := e.b.Advise(h, hi); err != nil {
		t.Fatal(err)
	}
	e.advance(299 * time.Millisecond)
	if n := e.rec.count(); n != 0 {
		t.Fatalf("%d events before firstBindDelay", n)
	}
	e.advance(time.Millisecond)
	if n := len(dataChanges(e.rec.take())); n != 1 {
		t.Fatalf("%d OnDataChange at firstBindDelay, want 1", n)
	}
	// A later bind of the same reference takes rebindDelay.
	hi2 := e.add(h, "obj.PV")
	e.b.Advise(h, hi2)
	e.advance(49 * time.Millisecond)
	if n := e.rec.count(); n != 0 {
		t.Fatalf("%d events before rebindDelay", n)
	}
	e.advance(time.Millisecond)
	if n := len(dataChanges(e.rec.take())); n != 1 {
		t.Fatalf("%d OnDataChange at rebindDelay, want 1", n)
	}

	// With zero delay the event still comes after Advise returned: the sink
	// waits for Advise to return, which would deadlock if it were called
	// from inside Advise.
	returned := make(chan struct{})
	insideAdvise := make(chan bool, 1)
	z := newEnv(t, envOpt{
		knobs: func(k *Knobs) { k.FirstBindDelay, k.RebindDelay, k.UpdateLatency = 0, 0, 0 },
		hook: func(ev *mxgatewayv1.Event) {
			select {
			case <-returned:
				insideAdvise <- false
			case <-time.After(5 * time.Second):
				insideAdvise <- true
			}
		},
	})
	h = z.reg()
	hi = z.add(h, "Obj.PV")
	if err := z.b.Advise(h, hi); err != nil {
		t.Fatal(err)
	}
	close(returned)
	z.settle()
	select {
	case inside := <-insideAdvise:
		if inside {
			t.Fatal("OnDataChange delivered inside Advise")
		}
	default:
		t.Fatal("no OnDataChange after a zero first-bind delay")
	}
}

func TestContract09_DataChangeOnlyOnValueOrQualityChange(t *testing.T) {
	e := newEnv(t, envOpt{})
	h := e.reg()
	_, first := e.sub(h, "Obj.Ramp")
	e.advance(700 * time.Millisecond) // ramp ticks at 1 s after Open
	dcs := dataChanges(e.rec.take())
	if len(dcs) != 1 || dcs[0].GetValue().GetInt32Value() != first.GetValue().GetInt32Value()+1 {
		t.Fatalf("ramp tick: %v", dcs)
	}
	// Quality-only changes fire; the script keeps its value.
	_, sc := e.sub(h, "Obj.Script")
	e.advance(time.Second)
	dcs = dataChanges(e.rec.take())
	var script []*mxgatewayv1.OnDataChange
	for _, dc := range dcs {
		if dc.GetItemHandle() == 2 {
			script = append(script, dc)
		}
	}
	if len(script) != 1 || script[0].GetQuality().GetRaw() != 8 || script[0].GetValue().GetDoubleValue() != sc.GetValue().GetDoubleValue() {
		t.Fatalf("script quality step: %v (initial %v)", script, sc)
	}
	// Timestamp-only changes do not fire (emitTimestampOnlyChanges=false).
	hi, _ := e.sub(h, "Obj.Int")
	if err := e.b.Write2(h, hi, mxtypes.IntegerValue(5), testStart.Add(time.Hour), 0); err != nil {
		t.Fatal(err)
	}
	e.advance(time.Millisecond * 20)
	for _, dc := range dataChanges(e.rec.take()) {
		if dc.GetItemHandle() == hi {
			t.Fatalf("timestamp-only change fired: %v", dc)
		}
	}

	o := newEnv(t, envOpt{knobs: func(k *Knobs) { k.EmitTimestampOnlyChanges = true }})
	h = o.reg()
	hi, _ = o.sub(h, "Obj.Int")
	o.b.Write2(h, hi, mxtypes.IntegerValue(5), testStart.Add(time.Hour), 0)
	o.advance(20 * time.Millisecond)
	if n := len(dataChanges(o.rec.take())); n != 1 {
		t.Fatalf("emitTimestampOnlyChanges: %d OnDataChange, want 1", n)
	}
}

func TestContract10_SecondAdviseSendsNothing(t *testing.T) {
	e := newEnv(t, envOpt{})
	h := e.reg()
	hi, _ := e.sub(h, "Obj.PV")
	if err := e.b.Advise(h, hi); err != nil {
		t.Fatalf("second Advise: %v", err)
	}
	if err := e.b.AdviseSupervisory(h, hi); err != nil {
		t.Fatalf("AdviseSupervisory after Advise: %v", err)
	}
	e.advance(time.Second)
	if n := e.rec.count(); n != 0 {
		t.Fatalf("second advise produced %d events", n)
	}
}

func TestContract11_NothingAfterUnAdvise(t *testing.T) {
	e := newEnv(t, envOpt{})
	h := e.reg()
	hi, _ := e.sub(h, "Obj.Ramp")
	if err := e.b.UnAdvise(h, hi); err != nil {
		t.Fatal(err)
	}
	// An advise whose first value is still pending is cancelled as well.
	hi2 := e.add(h, "Obj.PV")
	e.b.Advise(h, hi2)
	e.b.UnAdvise(h, hi2)
	e.advance(5 * time.Second)
	if n := e.rec.count(); n != 0 {
		t.Fatalf("%d events after UnAdvise", n)
	}

	// With the lateEventAfterUnadvise fault, exactly one more arrives.
	simH, _ := e.sub(h, "Sim.LateEventAfterUnadvise")
	e.write(h, simH, mxtypes.BoolValue(true))
	e.advance(20 * time.Millisecond)
	e.rec.take()
	hi3, _ := e.sub(h, "Obj.Int")
	e.b.UnAdvise(h, hi3)
	e.advance(5 * time.Second)
	late := dataChanges(e.rec.take())
	if len(late) != 1 || late[0].GetItemHandle() != hi3 {
		t.Fatalf("lateEventAfterUnadvise: %v, want one OnDataChange for %d", late, hi3)
	}
}

func TestContract12_WriteBeforeAdviseIsInvalidArg(t *testing.T) {
	e := newEnv(t, envOpt{})
	h := e.reg()
	hi := e.add(h, "Obj.Int")
	for name, err := range map[string]error{
		"Write":        e.b.Write(h, hi, mxtypes.IntegerValue(1), 0),
		"Write2":       e.b.Write2(h, hi, mxtypes.IntegerValue(1), testStart, 0),
		"WriteSecured": e.b.WriteSecured(h, hi, 0, 0, mxtypes.IntegerValue(1)),
	} {
		if hresult(err) != mxtypes.E_INVALIDARG {
			t.Errorf("%s before advise: %v, want E_INVALIDARG", name, err)
		}
	}
	e.advance(time.Second)
	if n := e.rec.count(); n != 0 {
		t.Fatalf("%d events after refused writes", n)
	}
}

func TestContract13_UnacceptableVariantIsInvalidArg(t *testing.T) {
	e := newEnv(t, envOpt{})
	h := e.reg()
	intH, _ := e.sub(h, "Obj.Int")
	fltH, _ := e.sub(h, "Obj.Flt")
	arrH, _ := e.sub(h, "Obj.Arr[]")
	missH, _ := e.sub(h, "Obj.Missing")
	propH, _ := e.sub(h, "Obj.Int.Quality")
	for _, c := range []struct {
		hi   int32
		v    *mxgatewayv1.MxValue
		good bool
	}{
		{intH, mxtypes.IntegerValue(3), true},
		{intH, mxtypes.StringValue(" 12 "), true},
		{intH, mxtypes.DoubleValue(4), true},
		{intH, mxtypes.DoubleValue(1.5), false},
		{intH, mxtypes.StringValue("abc"), false},
		{intH, mxtypes.BoolValue(true), false},
		{intH, mxtypes.NullValue(tInt), false},
		{fltH, mxtypes.DoubleValue(2.25), true},
		{fltH, mxtypes.DoubleValue(0.1), false}, // not lossless in float32
		{fltH, mxtypes.StringValue("0.1"), true},
		{arrH, buildArray(tInt, []*mxgatewayv1.MxValue{mxtypes.IntegerValue(1), mxtypes.IntegerValue(2), mxtypes.IntegerValue(9)}), true},
		{arrH, buildArray(tInt, []*mxgatewayv1.MxValue{mxtypes.IntegerValue(1)}), false},
		{arrH, mxtypes.IntegerValue(1), false},
		{missH, mxtypes.IntegerValue(1), false},
		{propH, mxtypes.IntegerValue(1), false},
	} {
		err := e.b.Write(h, c.hi, c.v, 0)
		if c.good && err != nil {
			t.Errorf("write %v to %d: %v, want S_OK", c.v, c.hi, err)
		}
		if !c.good && hresult(err) != mxtypes.E_INVALIDARG {
			t.Errorf("write %v to %d: %v, want E_INVALIDARG", c.v, c.hi, err)
		}
	}
	e.advance(time.Second)
	if n := len(writeCompletes(e.rec.take())); n != 6 {
		t.Fatalf("%d write completions, want 6 (one per accepted write)", n)
	}

	s := newEnv(t, envOpt{knobs: func(k *Knobs) { k.WriteCoercion = WriteCoercionStrict }})
	h = s.reg()
	intH, _ = s.sub(h, "Obj.Int")
	if err := s.b.Write(h, intH, mxtypes.StringValue("12"), 0); hresult(err) != mxtypes.E_INVALIDARG {
		t.Errorf("strict: string to MxInteger: %v", err)
	}
	if err := s.b.Write(h, intH, mxtypes.DoubleValue(12), 0); hresult(err) != mxtypes.E_INVALIDARG {
		t.Errorf("strict: double to MxInteger: %v", err)
	}
	if err := s.b.Write(h, intH, mxtypes.IntegerValue(12), 0); err != nil {
		t.Errorf("strict: VT_I4 to MxInteger: %v", err)
	}
}

func TestContract14_AcceptedWriteCompletesLaterThenEchoes(t *testing.T) {
	for _, order := range []string{EchoCompletionFirst, EchoDataFirst} {
		e := newEnv(t, envOpt{knobs: func(k *Knobs) { k.WriteEchoOrder = order }})
		h := e.reg()
		hi, _ := e.sub(h, "Obj.Int")
		e.write(h, hi, mxtypes.IntegerValue(42))
		e.advance(19 * time.Millisecond)
		if n := e.rec.count(); n != 0 {
			t.Fatalf("%s: %d events before updateLatency", order, n)
		}
		e.advance(time.Millisecond)
		evs := e.rec.take()
		want := []mxgatewayv1.EventFamily{mxgatewayv1.EventFamily_EVENT_FAMILY_ON_WRITE_COMPLETE, mxgatewayv1.EventFamily_EVENT_FAMILY_ON_DATA_CHANGE}
		if order == EchoDataFirst {
			slices.Reverse(want)
		}
		if !slices.Equal(families(evs), want) {
			t.Fatalf("%s: events %v, want %v", order, families(evs), want)
		}
		wc := writeCompletes(evs)[0]
		if wc.GetItemHandle() != hi || !wc.GetStatuses()[0].GetSuccess() || category(wc.GetStatuses()[0]) != catOk {
			t.Fatalf("%s: completion %v", order, wc)
		}
		if dataChanges(evs)[0].GetValue().GetInt32Value() != 42 {
			t.Fatalf("%s: echo %v", order, dataChanges(evs)[0])
		}
		// Writing the current value completes without OnDataChange.
		e.write(h, hi, mxtypes.IntegerValue(42))
		e.advance(time.Second)
		if f := families(e.rec.take()); !slices.Equal(f, want[:0:0]) && !slices.Equal(f, []mxgatewayv1.EventFamily{mxgatewayv1.EventFamily_EVENT_FAMILY_ON_WRITE_COMPLETE}) {
			t.Fatalf("%s: same-value write gave %v", order, f)
		}
		e.b.Close()
	}

	p := newEnv(t, envOpt{knobs: func(k *Knobs) { k.WritePendingFirst = true }})
	h := p.reg()
	hi, _ := p.sub(h, "Obj.Int")
	p.write(h, hi, mxtypes.IntegerValue(7))
	p.advance(time.Second)
	wcs := writeCompletes(p.rec.take())
	if len(wcs) != 2 || category(wcs[0].GetStatuses()[0]) != catPending || !wcs[0].GetStatuses()[0].GetSuccess() ||
		category(wcs[1].GetStatuses()[0]) != catOk {
		t.Fatalf("writePendingFirst: %v", wcs)
	}
}

func TestContract15_OutstandingWritesCompleteFIFO(t *testing.T) {
	e := newEnv(t, envOpt{knobs: func(k *Knobs) { k.SecurityMode = SecurityGalaxy }})
	h := e.reg()
	hi, _ := e.sub(h, "Obj.Op")
	op, _ := e.b.AuthenticateUser(h, "op", "op1")
	// Refused, accepted, accepted: completions come back in that order.
	e.b.Write(h, hi, mxtypes.IntegerValue(1), 0)
	e.b.Write(h, hi, mxtypes.IntegerValue(2), op)
	e.b.Write(h, hi, mxtypes.IntegerValue(3), op)
	e.advance(time.Second)
	evs := e.rec.take()
	wcs := writeCompletes(evs)
	if len(wcs) != 3 || category(wcs[0].GetStatuses()[0]) != catSecurity ||
		category(wcs[1].GetStatuses()[0]) != catOk || category(wcs[2].GetStatuses()[0]) != catOk {
		t.Fatalf("completions %v", wcs)
	}
	var vals []int32
	for _, dc := range dataChanges(evs) {
		vals = append(vals, dc.GetValue().GetInt32Value())
	}
	if !slices.Equal(vals, []int32{2, 3}) {
		t.Fatalf("echo values %v, want [2 3]", vals)
	}
}

func TestContract16_Write2AppliesTimestamp(t *testing.T) {
	e := newEnv(t, envOpt{})
	h := e.reg()
	hi, _ := e.sub(h, "Obj.Int")
	zone := time.FixedZone("X", 5*3600)
	ts := time.Date(2024, 2, 29, 23, 59, 58, 123_456_789, zone)
	if err := e.b.Write2(h, hi, mxtypes.IntegerValue(6), ts, 0); err != nil {
		t.Fatal(err)
	}
	e.advance(time.Second)
	dcs := dataChanges(e.rec.take())
	if len(dcs) != 1 {
		t.Fatalf("%d OnDataChange", len(dcs))
	}
	want := ts.UTC().Truncate(time.Millisecond)
	if got := dcs[0].GetTimestamp().AsTime(); !got.Equal(want) {
		t.Fatalf("timestamp %v, want %v", got, want)
	}
}

func TestContract17_SecurityRefusalsCompleteWithSecurityError(t *testing.T) {
	e := newEnv(t, envOpt{knobs: func(k *Knobs) { k.SecurityMode = SecurityGalaxy }})
	h := e.reg()
	ids := map[string]int32{}
	for _, u := range []struct{ n, p string }{{"op", "op1"}, {"op2", "op2"}, {"sup", "sup1"}, {"eng", "eng1"}} {
		id, err := e.b.AuthenticateUser(h, u.n, u.p)
		if err != nil || id <= 0 {
			t.Fatalf("AuthenticateUser(%s) = %d, %v", u.n, id, err)
		}
		ids[u.n] = id
	}
	handles := map[string]int32{}
	for _, a := range []string{"Free", "Op", "Sec", "Ver", "Tun", "Cfg", "RO"} {
		handles[a], _ = e.sub(h, "Obj."+a)
	}
	cases := []struct {
		attr           string
		secured        bool
		user, verifier string
		ok             bool
	}{
		{"Free", false, "", "", true},
		{"Op", false, "", "", false},
		{"Op", false, "op", "", true},
		{"RO", false, "eng", "", false},
		{"RO", true, "eng", "sup", false},
		{"Sec", false, "op", "", false},
		{"Sec", true, "op", "op", true},
		{"Ver", true, "op", "op", false},
		{"Ver", true, "op", "op2", false}, // op2 may not verify
		{"Ver", true, "op", "sup", true},
		{"Tun", false, "op", "", false},
		{"Tun", false, "sup", "", true},
		{"Cfg", false, "sup", "", false},
		{"Cfg", true, "eng", "eng", true},
	}
	for i, c := range cases {
		hi := handles[c.attr]
		v := mxtypes.IntegerValue(int32(100 + i))
		var err error
		if c.secured {
			err = e.b.WriteSecured(h, hi, ids[c.user], ids[c.verifier], v)
		} else {
			err = e.b.Write(h, hi, v, ids[c.user])
		}
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		e.advance(time.Second)
		evs := e.rec.take()
		wcs := writeCompletes(evs)
		if len(wcs) != 1 {
			t.Fatalf("case %d: %d completions", i, len(wcs))
		}
		st := wcs[0].GetStatuses()[0]
		changed := len(dataChanges(evs)) == 1
		if c.ok && (category(st) != catOk || !changed) {
			t.Errorf("case %d %+v: status %v changed %v, want success", i, c, st, changed)
		}
		if !c.ok && (category(st) != catSecurity || st.GetSuccess() || changed) {
			t.Errorf("case %d %+v: status %v changed %v, want MxCategorySecurityError and no change", i, c, st, changed)
		}
	}

	// ViewOnly refuses even with security off.
	n := newEnv(t, envOpt{})
	h = n.reg()
	hi, _ := n.sub(h, "Obj.RO")
	n.write(h, hi, mxtypes.IntegerValue(1))
	n.advance(time.Second)
	if wcs := writeCompletes(n.rec.take()); len(wcs) != 1 || category(wcs[0].GetStatuses()[0]) != catSecurity {
		t.Fatalf("ViewOnly with security none: %v", wcs)
	}
}

func TestContract18_AuthenticateUserIdsAndFailures(t *testing.T) {
	e := newEnv(t, envOpt{knobs: func(k *Knobs) { k.SecurityMode = SecurityGalaxy }})
	h1, h2 := e.reg(), e.reg()
	id, err := e.b.AuthenticateUser(h1, "OP", "op1")
	if err != nil || id <= 0 {
		t.Fatalf("AuthenticateUser = %d, %v", id, err)
	}
	// The id is valid in h1 only: a write in h2 with it is refused.
	hi, _ := e.sub(h2, "Obj.Op")
	e.b.Write(h2, hi, mxtypes.IntegerValue(1), id)
	e.advance(time.Second)
	if wcs := writeCompletes(e.rec.take()); len(wcs) != 1 || category(wcs[0].GetStatuses()[0]) != catSecurity {
		t.Fatalf("foreign user id: %v", wcs)
	}
	for _, mode := range []string{SecurityNone, SecurityGalaxy} {
		m := newEnv(t, envOpt{knobs: func(k *Knobs) { k.SecurityMode = mode }})
		id, err := m.b.AuthenticateUser(m.reg(), "op", "wrong")
		if id != 0 || err != nil {
			t.Errorf("mode %s bad credentials: %d, %v; want 0, S_OK", mode, id, err)
		}
	}
	o := newEnv(t, envOpt{knobs: func(k *Knobs) { k.SecurityMode = SecurityOSUser }})
	if _, err := o.b.AuthenticateUser(o.reg(), "nobody", "x"); hresult(err) != mxtypes.E_INVALIDARG {
		t.Errorf("osUser bad credentials: %v, want E_INVALIDARG", err)
	}
	uid, err := o.b.ArchestrAUserToId(1, `PLANT\sup`)
	if err != nil || uid <= 0 {
		t.Errorf("ArchestrAUserToId = %d, %v", uid, err)
	}
	// Under OS-user security AuthenticateUser takes DOMAIN\user as
	// ArchestrAUserToId does; under Galaxy security the name is the name.
	if id, err := o.b.AuthenticateUser(1, `PLANT\op`, "op1"); err != nil || id <= 0 {
		t.Errorf(`osUser AuthenticateUser(PLANT\op) = %d, %v`, id, err)
	}
	g := newEnv(t, envOpt{knobs: func(k *Knobs) { k.SecurityMode = SecurityGalaxy }})
	if id, err := g.b.AuthenticateUser(g.reg(), `PLANT\op`, "op1"); err != nil || id != 0 {
		t.Errorf(`galaxy AuthenticateUser(PLANT\op) = %d, %v; want 0`, id, err)
	}
}

func TestContract19_ConnectionKindAndAttributionRecorded(t *testing.T) {
	e := newEnv(t, envOpt{knobs: func(k *Knobs) { k.SecurityMode = SecurityGalaxy }})
	h := e.reg()
	sup := e.add(h, "Obj.Op")
	e.b.AdviseSupervisory(h, sup)
	usr := e.add(h, "Obj.Op")
	e.b.Advise(h, usr)
	e.advance(time.Second)
	id, _ := e.b.AuthenticateUser(h, "op", "op1")
	e.b.Write(h, sup, mxtypes.IntegerValue(1), 0)  // supervisory, no user: the client
	e.b.Write(h, usr, mxtypes.IntegerValue(2), id) // user connection: the user
	e.b.Write(h, usr, mxtypes.IntegerValue(3), 0)  // user connection, no user: refused
	e.advance(time.Second)
	audit := e.b.WriteAudit()
	if len(audit) != 3 {
		t.Fatalf("%d audit records", len(audit))
	}
	if a := audit[0]; !a.Supervisory || a.Attribution != "test-client" || a.User != "" || !a.Accepted {
		t.Errorf("supervisory write: %+v", a)
	}
	if a := audit[1]; a.Supervisory || a.Attribution != "op" || a.User != "op" || !a.Accepted {
		t.Errorf("user write: %+v", a)
	}
	if a := audit[2]; a.Supervisory || a.Accepted {
		t.Errorf("user connection without user: %+v", a)
	}
}

func TestContract20_RemoveWhileAdvisedAndUnregisterCleanUpWithWarning(t *testing.T) {
	e := newEnv(t, envOpt{})
	h := e.reg()
	hi, _ := e.sub(h, "Obj.Ramp")
	e.b.TakeParityWarnings()
	if err := e.b.RemoveItem(h, hi); err != nil {
		t.Fatalf("RemoveItem while advised: %v", err)
	}
	if w := e.b.TakeParityWarnings(); len(w) != 1 || !strings.Contains(w[0], "RemoveItem") {
		t.Fatalf("warnings %v", w)
	}
	if w := e.b.TakeParityWarnings(); len(w) != 0 {
		t.Fatalf("warnings not cleared: %v", w)
	}
	e.advance(3 * time.Second)
	if n := e.rec.count(); n != 0 {
		t.Fatalf("%d events after RemoveItem", n)
	}

	e.sub(h, "Obj.Ramp")
	if err := e.b.Unregister(h); err != nil {
		t.Fatalf("Unregister with live items: %v", err)
	}
	if w := e.b.TakeParityWarnings(); len(w) != 1 || !strings.Contains(w[0], "Unregister") {
		t.Fatalf("warnings %v", w)
	}
	e.advance(3 * time.Second)
	if n := e.rec.count(); n != 0 {
		t.Fatalf("%d events after Unregister", n)
	}
	if err := e.b.Advise(h, 1); hresult(err) != mxtypes.E_INVALIDARG {
		t.Fatalf("item handle after Unregister: %v", err)
	}

	// User ids die with their registration.
	s := newEnv(t, envOpt{knobs: func(k *Knobs) { k.SecurityMode = SecurityGalaxy }})
	h = s.reg()
	id, _ := s.b.AuthenticateUser(h, "op", "op1")
	s.b.Unregister(h)
	h2 := s.reg()
	hi2, _ := s.sub(h2, "Obj.Op")
	s.b.Write(h2, hi2, mxtypes.IntegerValue(5), id)
	s.advance(time.Second)
	if wcs := writeCompletes(s.rec.take()); len(wcs) != 1 || category(wcs[0].GetStatuses()[0]) != catSecurity {
		t.Fatalf("user id of an unregistered registration: %v", wcs)
	}
}

func TestContract21_StatusSuccessValueAndArrayLength(t *testing.T) {
	for _, c := range []struct {
		success int16
		length  int
	}{{-1, 1}, {1, 1}, {1, 3}} {
		e := newEnv(t, envOpt{knobs: func(k *Knobs) { k.StatusSuccessValue, k.StatusArrayLength = c.success, c.length }})
		h := e.reg()
		hi, dc := e.sub(h, "Obj.Int")
		_, bad := e.sub(h, "Obj.Missing")
		e.write(h, hi, mxtypes.IntegerValue(9))
		e.advance(time.Second)
		wcs := writeCompletes(e.rec.take())
		for _, sts := range [][]*mxgatewayv1.MxStatus{dc.GetStatuses(), wcs[0].GetStatuses()} {
			if len(sts) != c.length {
				t.Fatalf("%d statuses, want %d", len(sts), c.length)
			}
			for _, st := range sts {
				if st.GetSuccessRaw() != int32(c.success) {
					t.Fatalf("success %d, want %d", st.GetSuccessRaw(), c.success)
				}
			}
		}
		if len(bad.GetStatuses()) != c.length || bad.GetStatuses()[0].GetSuccessRaw() != 0 {
			t.Fatalf("failure statuses %v", bad.GetStatuses())
		}
		e.b.Close()
	}
}

func TestContract22_TimestampsUTCMillisecond(t *testing.T) {
	e := newEnv(t, envOpt{})
	e.clk.Advance(123_456_789 * time.Nanosecond)
	h := e.reg()
	e.sub(h, "Obj.Ramp")
	hi, _ := e.sub(h, "Obj.Stamp")
	e.write(h, hi, mxtypes.TimeValue(time.Date(2025, 1, 2, 3, 4, 5, 678_901_234, time.FixedZone("Y", -3600))))
	e.advance(3*time.Second + 7*time.Microsecond)
	evs := e.rec.take()
	if len(evs) < 3 {
		t.Fatalf("only %d events", len(evs))
	}
	fine := 0
	for _, ev := range evs {
		// worker_time is the gateway's field, not an MXAccess timestamp:
		// the clock's full resolution, as the MXAccess backend stamps it.
		if wt := ev.GetWorkerTime().AsTime(); wt.Nanosecond()%int(time.Millisecond) != 0 {
			fine++
		}
		for _, ts := range []interface{ AsTime() time.Time }{ev.GetDataChange().GetTimestamp(), ev.GetDataChange().GetValue().GetTimestampValue()} {
			if ts == nil || ts.AsTime().Equal(time.Unix(0, 0)) {
				continue
			}
			tt := ts.AsTime()
			if tt.Nanosecond()%int(time.Millisecond) != 0 || tt.Location() != time.UTC {
				t.Fatalf("timestamp %v is not UTC with millisecond precision", tt)
			}
		}
	}
	if fine == 0 {
		t.Fatalf("no worker_time of %d events below the millisecond: truncated like an MXAccess timestamp", len(evs))
	}
}

func TestContract23_EventsComeFromOneSTAInOneOrder(t *testing.T) {
	e := newEnv(t, envOpt{knobs: func(k *Knobs) { k.FirstBindDelay, k.RebindDelay, k.UpdateLatency = 0, 0, 0 }})
	h1, h2 := e.reg(), e.reg()
	e.sub(h1, "Obj.Ramp")
	e.sub(h2, "Obj.Ramp")
	e.sub(h1, "Sim.StormValue")
	e.sub(h2, "Sim.StormValue")
	storm, _ := e.sub(h1, "Sim.Storm")
	e.write(h1, storm, mxtypes.IntegerValue(3000))
	// Calls interleave with the storm from another goroutine.
	done := make(chan error, 1)
	go func() {
		for i := 0; i < 50; i++ {
			if _, err := e.b.AddItem(h2, "Obj.PV"); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	e.advance(5 * time.Second)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	e.settle()
	if e.rec.concurrent.Load() {
		t.Fatal("sink called concurrently")
	}
	last := map[[2]int32]int32{}
	n := 0
	for _, dc := range dataChanges(e.rec.take()) {
		k := [2]int32{dc.GetServerHandle(), dc.GetItemHandle()}
		v := dc.GetValue().GetInt32Value()
		if prev, ok := last[k]; ok && v != prev+1 {
			t.Fatalf("item %v: %d after %d", k, v, prev)
		}
		last[k] = v
		n++
	}
	if n < 6000 {
		t.Fatalf("only %d OnDataChange", n)
	}
}

func TestContract24_SuspendAndActivate(t *testing.T) {
	e := newEnv(t, envOpt{})
	h := e.reg()
	hi, _ := e.sub(h, "Obj.Ramp")
	if err := e.b.Suspend(h, hi); err != nil {
		t.Fatal(err)
	}
	e.advance(3 * time.Second)
	if n := e.rec.count(); n != 0 {
		t.Fatalf("%d events while suspended", n)
	}
	if err := e.b.Activate(h, hi); err != nil {
		t.Fatal(err)
	}
	e.advance(20 * time.Millisecond)
	evs := e.rec.take()
	if dcs := dataChanges(evs); len(dcs) != 1 || len(evs) != 1 {
		t.Fatalf("after Activate: %v, want exactly one OnDataChange (no OperationComplete)", families(evs))
	}
	// Activate with no change meanwhile sends nothing.
	hp, _ := e.sub(h, "Obj.PV")
	e.b.Suspend(h, hp)
	e.b.Activate(h, hp)
	e.advance(100 * time.Millisecond)
	for _, dc := range dataChanges(e.rec.take()) {
		if dc.GetItemHandle() == hp {
			t.Fatal("Activate without a change sent a value")
		}
	}

	o := newEnv(t, envOpt{knobs: func(k *Knobs) { k.EmitOperationComplete = true }})
	h = o.reg()
	hi, _ = o.sub(h, "Obj.PV")
	o.b.Suspend(h, hi)
	o.b.Activate(h, hi)
	o.advance(time.Millisecond * 100)
	var ops int
	for _, ev := range o.rec.take() {
		if oc := ev.GetOperationComplete(); oc != nil && oc.GetItemHandle() == hi && oc.GetStatuses()[0].GetSuccess() {
			ops++
		}
	}
	if ops != 2 {
		t.Fatalf("%d OperationComplete, want 2", ops)
	}
}

func TestContract25_BufferedItemsDeliverEveryChangePerInterval(t *testing.T) {
	e := newEnv(t, envOpt{})
	h := e.reg()
	hi, err := e.b.AddBufferedItem(h, "Obj.Ramp")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.b.SetBufferedUpdateInterval(h, 0); hresult(err) != mxtypes.E_INVALIDARG {
		t.Fatalf("interval 0: %v", err)
	}
	if err := e.b.SetBufferedUpdateInterval(h, 5000); err != nil {
		t.Fatal(err)
	}
	// Not advised: nothing.
	e.advance(6 * time.Second)
	if n := e.rec.count(); n != 0 {
		t.Fatalf("%d events for an unadvised buffered item", n)
	}
	e.b.Advise(h, hi)
	e.advance(300 * time.Millisecond) // first bind: the initial sample
	e.advance(5 * time.Second)        // one interval: 5 ramp ticks
	evs := e.rec.take()
	if len(evs) != 1 || evs[0].GetBufferedDataChange() == nil {
		t.Fatalf("events %v, want one OnBufferedDataChange", families(evs))
	}
	bd := evs[0].GetBufferedDataChange()
	var vals []int32
	for _, s := range bd.GetSamples() {
		vals = append(vals, s.GetValue().GetInt32Value())
	}
	if len(vals) != 6 {
		t.Fatalf("samples %v, want initial + 5 changes", vals)
	}
	for i := 1; i < len(vals); i++ {
		if vals[i] != vals[i-1]+1 {
			t.Fatalf("samples out of order: %v", vals)
		}
	}
	if bd.GetItemHandle() != hi || bd.GetServerHandle() != h || !bd.GetStatuses()[0].GetSuccess() {
		t.Fatalf("buffered event %v", bd)
	}

	// An unchanged buffered item gets no event.
	pv, _ := e.b.AddBufferedItem(h, "Obj.PV")
	e.b.Advise(h, pv)
	e.advance(5300 * time.Millisecond)
	e.rec.take()
	e.advance(5 * time.Second)
	for _, ev := range e.rec.take() {
		if ev.GetBufferedDataChange().GetItemHandle() == pv {
			t.Fatal("unchanged buffered item got an event")
		}
	}
}

func TestContract26_InterfaceLevelLimitsMethods(t *testing.T) {
	v := mxtypes.IntegerValue(1)
	cases := map[int][]func(b *Backend) error{
		1: {func(b *Backend) error { _, err := b.ArchestrAUserToId(1, "op"); return err }},
		2: {func(b *Backend) error { _, err := b.AddItem2(1, "Obj.PV", ""); return err }},
		3: {
			func(b *Backend) error { return b.AdviseSupervisory(1, 1) },
			func(b *Backend) error { return b.Write2(1, 1, v, testStart, 0) },
			func(b *Backend) error { return b.WriteSecured2(1, 1, 0, 0, v, testStart) },
			func(b *Backend) error { return b.Suspend(1, 1) },
			func(b *Backend) error { return b.Activate(1, 1) },
		},
		4: {
			func(b *Backend) error { _, err := b.AddBufferedItem(1, "Obj.PV"); return err },
			func(b *Backend) error { return b.SetBufferedUpdateInterval(1, 100) },
		},
	}
	for level := 1; level <= 5; level++ {
		e := newEnv(t, envOpt{knobs: func(k *Knobs) { k.MaxInterfaceLevel = level }})
		e.add(e.reg(), "Obj.PV")
		if e.info.GetInterfaceLevel() != int32(level) {
			t.Fatalf("BackendInfo level %d, want %d", e.info.GetInterfaceLevel(), level)
		}
		for below, calls := range cases {
			for i, call := range calls {
				err := call(e.b)
				if unsupported := isNotSupported(err); unsupported != (level <= below) {
					t.Errorf("level %d, method group %d#%d: %v", level, below, i, err)
				}
			}
		}
		e.b.Close()
	}
}

// recordingTeardown passes the teardown's calls to the simulator and
// records them.
type recordingTeardown struct {
	b     *Backend
	calls []string
}

func (r *recordingTeardown) UnAdvise(h, hi int32) error {
	r.calls = append(r.calls, fmt.Sprintf("UnAdvise(%d,%d)", h, hi))
	return r.b.UnAdvise(h, hi)
}

func (r *recordingTeardown) RemoveItem(h, hi int32) error {
	r.calls = append(r.calls, fmt.Sprintf("RemoveItem(%d,%d)", h, hi))
	return r.b.RemoveItem(h, hi)
}

func (r *recordingTeardown) Unregister(h int32) error {
	r.calls = append(r.calls, fmt.Sprintf("Unregister(%d)", h))
	return r.b.Unregister(h)
}

// TestContract27_GracefulShutdownTearsDownInOrderDespiteFailures: the
// worker's teardown (itemtable.Teardown over what it added) reaches the
// simulator in MXAccess order, a refused step is a warning and the rest
// still runs, and Close then has nothing left to release.
func TestContract27_GracefulShutdownTearsDownInOrderDespiteFailures(t *testing.T) {
	model := testModelYAML + `
faults:
  - {kind: hresult, method: UnAdvise, hresult: 0x80004005, calls: 1}
`
	e := newEnv(t, envOpt{model: model})
	h1, h2 := e.reg(), e.reg()
	e.sub(h1, "Obj.Ramp")
	e.sub(h2, "Obj.Ramp")
	e.add(h2, "Obj.PV")
	rec := &recordingTeardown{b: e.b}
	warns := itemtable.Teardown(e.table, rec)
	if len(warns) != 1 || !strings.Contains(warns[0], "UnAdvise") || !strings.Contains(warns[0], "0x80004005") {
		t.Fatalf("warnings %v, want one failed UnAdvise", warns)
	}
	want := []string{"UnAdvise(1,1)", "UnAdvise(2,1)", "RemoveItem(1,1)", "RemoveItem(2,1)", "RemoveItem(2,2)",
		"Unregister(1)", "Unregister(2)"}
	if !slices.Equal(rec.calls, want) {
		t.Fatalf("teardown %v, want %v", rec.calls, want)
	}
	// The item whose UnAdvise was refused was removed while advised.
	if pw := e.b.TakeParityWarnings(); len(pw) != 1 || !strings.Contains(pw[0], "RemoveItem(1, 1) while advised") {
		t.Fatalf("parity warnings %v", pw)
	}
	if w := e.b.Close(); len(w) != 0 {
		t.Fatalf("Close after the teardown: %v, want nothing left to release", w)
	}
	e.rec.take()
	e.clk.Advance(10 * time.Second)
	if n := e.rec.count(); n != 0 {
		t.Fatalf("%d events after Close", n)
	}
	if _, err := e.b.Register("x"); !errors.Is(err, backend.ErrClosed) {
		t.Fatalf("Register after Close: %v", err)
	}
	if err := e.b.Ping(context.Background()); !errors.Is(err, backend.ErrClosed) {
		t.Fatalf("Ping after Close: %v", err)
	}
}

// TestCloseReleasesWhatTheTeardownLeft: Close without the teardown still
// releases everything, with one warning and no events.
func TestCloseReleasesWhatTheTeardownLeft(t *testing.T) {
	e := newEnv(t, envOpt{})
	h := e.reg()
	e.sub(h, "Obj.Ramp")
	e.rec.take()
	warns := e.b.Close()
	if len(warns) != 1 || !strings.Contains(warns[0], "1 registrations and 1 items") {
		t.Fatalf("warnings %v", warns)
	}
	e.clk.Advance(10 * time.Second)
	if n := e.rec.count(); n != 0 {
		t.Fatalf("%d events after Close", n)
	}
	if w := e.b.Close(); !slices.Equal(w, warns) {
		t.Fatalf("second Close: %v", w)
	}
}

func TestContract28_ReadyInfoNamesTheSimulator(t *testing.T) {
	e := newEnv(t, envOpt{})
	i := e.info
	if i.GetKind() != "sim" || !i.GetSimulated() || i.GetProgId() != "LMXProxy.LMXProxyServer.1" ||
		i.GetClsid() != "{C30B52F5-2CB5-4760-AF0A-3A344A7EB5DC}" || i.GetInterfaceLevel() != 5 ||
		i.GetModelName() != "TestGalaxy" || !strings.Contains(i.GetDescription(), "simulator") {
		t.Fatalf("BackendInfo %v", i)
	}
}
