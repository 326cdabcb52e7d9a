package itemtable

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/catalog"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/mxtypes"
)

const (
	ok      = mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK
	failure = mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_MXACCESS_FAILURE
)

func okReply() *mxgatewayv1.Reply { return &mxgatewayv1.Reply{Status: ok} }

func failed() *mxgatewayv1.Reply {
	return &mxgatewayv1.Reply{Status: failure, Hresult: mxtypes.E_INVALIDARG}
}

func handleReply(h int32) *mxgatewayv1.Reply {
	return &mxgatewayv1.Reply{Status: ok, Result: &mxgatewayv1.Reply_ItemHandle{ItemHandle: &mxgatewayv1.ItemHandleResult{ItemHandle: h}}}
}

func regReply(h int32) *mxgatewayv1.Reply {
	return &mxgatewayv1.Reply{Status: ok, Result: &mxgatewayv1.Reply_Register{Register: &mxgatewayv1.RegisterResult{ServerHandle: h}}}
}

func bulkReply(es ...*mxgatewayv1.BulkEntryResult) *mxgatewayv1.Reply {
	return &mxgatewayv1.Reply{Status: mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_BULK,
		Result: &mxgatewayv1.Reply_Bulk{Bulk: &mxgatewayv1.BulkResult{Entries: es}}}
}

func register() *mxgatewayv1.Command {
	return &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Register{Register: &mxgatewayv1.RegisterCommand{}}}
}

func addItem(sh int32, ref string) *mxgatewayv1.Command {
	return &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_AddItem{AddItem: &mxgatewayv1.AddItemCommand{ServerHandle: sh, ItemDefinition: ref}}}
}

func addBuffered(sh int32, ref string) *mxgatewayv1.Command {
	return &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_AddBufferedItem{AddBufferedItem: &mxgatewayv1.AddBufferedItemCommand{ServerHandle: sh, ItemDefinition: ref}}}
}

func removeItem(sh, ih int32) *mxgatewayv1.Command {
	return &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_RemoveItem{RemoveItem: &mxgatewayv1.RemoveItemCommand{ServerHandle: sh, ItemHandle: ih}}}
}

func advise(sh, ih int32) *mxgatewayv1.Command {
	return &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Advise{Advise: &mxgatewayv1.AdviseCommand{ServerHandle: sh, ItemHandle: ih}}}
}

func adviseSup(sh, ih int32) *mxgatewayv1.Command {
	return &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_AdviseSupervisory{AdviseSupervisory: &mxgatewayv1.AdviseSupervisoryCommand{ServerHandle: sh, ItemHandle: ih}}}
}

func suspend(sh, ih int32) *mxgatewayv1.Command {
	return &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Suspend{Suspend: &mxgatewayv1.SuspendCommand{ServerHandle: sh, ItemHandle: ih}}}
}

func unadvise(sh, ih int32) *mxgatewayv1.Command {
	return &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_UnAdvise{UnAdvise: &mxgatewayv1.UnAdviseCommand{ServerHandle: sh, ItemHandle: ih}}}
}

func unregister(sh int32) *mxgatewayv1.Command {
	return &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Unregister{Unregister: &mxgatewayv1.UnregisterCommand{ServerHandle: sh}}}
}

func write(sh, ih int32) *mxgatewayv1.Command {
	return &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Write{Write: &mxgatewayv1.WriteCommand{ServerHandle: sh, ItemHandle: ih}}}
}

type step struct {
	cmd   *mxgatewayv1.Command
	reply *mxgatewayv1.Reply
}

func TestApply(t *testing.T) {
	sub := &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_SubscribeBulk{SubscribeBulk: &mxgatewayv1.SubscribeBulkCommand{
		ServerHandle: 1, ItemDefinitions: []string{"A.PV", "B.PV", "C.PV"}, Supervisory: true}}}
	unsub := &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_UnsubscribeBulk{UnsubscribeBulk: &mxgatewayv1.UnsubscribeBulkCommand{
		ServerHandle: 1, ItemHandles: []int32{1, 2, 3}}}}
	cases := []struct {
		name  string
		steps []step
		want  []Entry
		regs  []int32
	}{
		{"add, advise, suspend", []step{
			{register(), regReply(1)}, {addItem(1, "TIC101.SP"), handleReply(1)}, {adviseSup(1, 1), okReply()}, {suspend(1, 1), okReply()},
		}, []Entry{{Key{1, 1}, Item{Ref: "TIC101.SP", Advised: true, Supervisory: true, Suspended: true}}}, []int32{1}},
		{"a second advise keeps the first kind", []step{
			{addItem(1, "X"), handleReply(4)}, {advise(1, 4), okReply()}, {adviseSup(1, 4), okReply()},
		}, []Entry{{Key{1, 4}, Item{Ref: "X", Advised: true}}}, nil},
		{"refusals change nothing", []step{
			{addItem(1, "X"), failed()}, {addItem(1, "Y"), handleReply(2)}, {advise(1, 2), failed()}, {removeItem(1, 2), failed()}, {register(), failed()},
		}, []Entry{{Key{1, 2}, Item{Ref: "Y"}}}, nil},
		{"remove then add reuses the handle for the new reference", []step{
			{addItem(1, "TIC101.SP"), handleReply(1)}, {advise(1, 1), okReply()}, {removeItem(1, 1), okReply()}, {addItem(1, "TIC101.HiLimit"), handleReply(1)},
		}, []Entry{{Key{1, 1}, Item{Ref: "TIC101.HiLimit"}}}, nil},
		{"unregister drops its items only", []step{
			{register(), regReply(1)}, {register(), regReply(2)}, {addItem(1, "X"), handleReply(1)}, {addItem(2, "Y"), handleReply(1)}, {unregister(1), okReply()},
		}, []Entry{{Key{2, 1}, Item{Ref: "Y"}}}, []int32{2}},
		{"buffered, unadvise clears advise state, writes change nothing", []step{
			{addBuffered(1, "B"), handleReply(3)}, {advise(1, 3), okReply()}, {suspend(1, 3), okReply()}, {unadvise(1, 3), okReply()}, {write(1, 3), okReply()},
		}, []Entry{{Key{1, 3}, Item{Ref: "B", Buffered: true}}}, nil},
		{"subscribe bulk: denied, failed add, failed advise", []step{{sub, bulkReply(
			&mxgatewayv1.BulkEntryResult{ItemDefinition: "A.PV", Denial: &mxgatewayv1.EntryDenial{Reason: "REFERENCE_NOT_ALLOWED"}},
			&mxgatewayv1.BulkEntryResult{ItemDefinition: "B.PV", ItemHandle: 2, Status: failure, FailedMethod: "AdviseSupervisory",
				Calls: []*mxgatewayv1.BulkCall{{Method: "AddItem", Status: ok}, {Method: "AdviseSupervisory", Status: failure}}},
			&mxgatewayv1.BulkEntryResult{ItemDefinition: "C.PV", ItemHandle: 3, Status: ok},
		)}}, []Entry{{Key{1, 2}, Item{Ref: "B.PV"}}, {Key{1, 3}, Item{Ref: "C.PV", Advised: true, Supervisory: true}}}, nil},
		{"unsubscribe bulk is best effort: removed although UnAdvise failed", []step{
			{addItem(1, "A"), handleReply(1)}, {addItem(1, "B"), handleReply(2)}, {addItem(1, "C"), handleReply(3)},
			{advise(1, 1), okReply()}, {advise(1, 2), okReply()}, {advise(1, 3), okReply()},
			{unsub, bulkReply(
				&mxgatewayv1.BulkEntryResult{ItemHandle: 1, Status: failure, FailedMethod: "UnAdvise",
					Calls: []*mxgatewayv1.BulkCall{{Method: "UnAdvise", Status: failure}, {Method: "RemoveItem", Status: ok}}},
				&mxgatewayv1.BulkEntryResult{ItemHandle: 2, Status: failure, FailedMethod: "UnAdvise",
					Calls: []*mxgatewayv1.BulkCall{{Method: "UnAdvise", Status: failure}, {Method: "RemoveItem", Status: failure}}},
				&mxgatewayv1.BulkEntryResult{ItemHandle: 3, Status: ok},
			)},
		}, []Entry{{Key{1, 2}, Item{Ref: "B", Advised: true}}}, nil},
		{"a bulk reply that does not answer every input changes nothing", []step{
			{sub, &mxgatewayv1.Reply{Status: mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_NOT_SUPPORTED}},
		}, []Entry{}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tb := New()
			for _, s := range tc.steps {
				tb.Apply(s.cmd, s.reply)
			}
			if got := tb.Snapshot(); !slices.Equal(got, tc.want) {
				t.Fatalf("items %+v\nwant  %+v", got, tc.want)
			}
			if got := tb.Registrations(); !slices.Equal(got, tc.regs) && (len(got) != 0 || len(tc.regs) != 0) {
				t.Fatalf("registrations %v, want %v", got, tc.regs)
			}
		})
	}
}

// TestBulkAsWholeEqualsStepByStep: the worker applies each step it runs;
// the gateway applies the bulk command with the bulk reply. Both must end
// with the same table, for every bulk form of the catalogue.
func TestBulkAsWholeEqualsStepByStep(t *testing.T) {
	for _, k := range catalog.Kinds() {
		if !k.IsBulk() {
			continue
		}
		t.Run(k.Name(), func(t *testing.T) {
			for _, super := range []bool{false, true} {
				worker, mirror := New(), New()
				for _, tb := range []*Table{worker, mirror} {
					for i, ref := range []string{"A", "B", "C", "D"} {
						tb.Apply(addItem(1, ref), handleReply(int32(i+1)))
					}
				}
				cmd := bulkOf(k, super)
				// Entry i fails at step i%(steps+1): every mix of outcomes.
				var entries []*mxgatewayv1.BulkEntryResult
				for i := 0; i < k.Inputs(cmd); i++ {
					in := k.Input(cmd, i)
					e := &mxgatewayv1.BulkEntryResult{ItemDefinition: in.Ref, ItemHandle: in.Item, Status: ok}
					failAt := i % (len(k.Steps()) + 1)
					item := int32(0)
					for j := range k.Steps() {
						if j > 0 && e.Status != ok && !k.BestEffort() {
							break
						}
						sc := k.StepCommand(cmd, i, j, item)
						sk := catalog.Of(sc)
						r := okReply()
						if j == failAt {
							r = failed()
						} else if sk.Result() == mxgatewayv1.CommandResult_COMMAND_RESULT_ITEM_HANDLE {
							item = int32(10 + i)
							e.ItemHandle = item
							r = handleReply(item)
						}
						worker.Apply(sc, r)
						st := r.GetStatus()
						e.Calls = append(e.Calls, &mxgatewayv1.BulkCall{Method: sk.Method(), Status: st, Hresult: r.GetHresult()})
						if st != ok && e.Status == ok {
							e.Status, e.FailedMethod, e.Hresult = st, sk.Method(), r.GetHresult()
						}
					}
					if e.Status == ok {
						e.Calls = nil
					}
					entries = append(entries, e)
				}
				mirror.Apply(cmd, bulkReply(entries...))
				if w, m := worker.Snapshot(), mirror.Snapshot(); !slices.Equal(w, m) {
					t.Fatalf("supervisory=%v: worker %+v\nmirror %+v", super, w, m)
				}
			}
		})
	}
}

// bulkOf builds a bulk command of kind k with four inputs on registration 1.
func bulkOf(k *catalog.Kind, super bool) *mxgatewayv1.Command {
	m := k.NewMessage()
	for _, f := range k.Fields() {
		switch f.Role {
		case mxgatewayv1.FieldRole_FIELD_ROLE_SERVER_HANDLE:
			m.Set(f.Desc, protoInt32(1))
		case mxgatewayv1.FieldRole_FIELD_ROLE_SUPERVISORY:
			m.Set(f.Desc, protoBool(super))
		}
	}
	l := m.Mutable(k.InputField()).List()
	for i := 1; i <= 4; i++ {
		switch {
		case k.InputField().Message() != nil:
			e := l.NewElement()
			ek := k.Steps()[0].Kind
			for _, f := range ek.Fields() {
				if f.Role == mxgatewayv1.FieldRole_FIELD_ROLE_ITEM_HANDLE {
					e.Message().Set(f.Desc, protoInt32(int32(i)))
				}
			}
			l.Append(e)
		case k.InputField().Kind() == protoreflect.StringKind:
			l.Append(protoString(fmt.Sprintf("R%d", i)))
		default:
			l.Append(protoInt32(int32(i)))
		}
	}
	return k.New(m.Interface())
}

func TestHolds(t *testing.T) {
	tb := New()
	tb.Apply(addItem(1, "TIC101.SP"), handleReply(1))
	tb.AddLeftover(Key{1, 9}, "TIC101.HiLimit", true)
	cases := []struct {
		key  Key
		ref  string
		want bool
	}{
		{Key{1, 1}, "TIC101.SP", true},
		{Key{1, 1}, "tic101.sp", false}, // exactly as added
		{Key{1, 1}, "", false},
		{Key{1, 2}, "", true},
		{Key{1, 2}, "TIC101.SP", false},
		{Key{2, 1}, "TIC101.SP", false},
		{Key{1, 9}, "TIC101.HiLimit", false}, // a leftover is never approved
		{Key{1, 9}, "", false},
	}
	for _, tc := range cases {
		if got := tb.Holds(tc.key, tc.ref); got != tc.want {
			t.Errorf("Holds(%v, %q) = %v, want %v", tc.key, tc.ref, got, tc.want)
		}
	}
}

type recorder struct {
	calls []string
	fail  map[string]bool
}

func (r *recorder) do(s string) error {
	r.calls = append(r.calls, s)
	if r.fail[s] {
		return errors.New("refused")
	}
	return nil
}
func (r *recorder) UnAdvise(sh, ih int32) error { return r.do(fmt.Sprintf("UnAdvise(%d,%d)", sh, ih)) }
func (r *recorder) RemoveItem(sh, ih int32) error {
	return r.do(fmt.Sprintf("RemoveItem(%d,%d)", sh, ih))
}
func (r *recorder) Unregister(sh int32) error { return r.do(fmt.Sprintf("Unregister(%d)", sh)) }

func TestTeardownInMXAccessOrder(t *testing.T) {
	tb := New()
	for _, s := range []step{
		{register(), regReply(2)}, {register(), regReply(1)},
		{addItem(2, "A"), handleReply(1)}, {addItem(1, "B"), handleReply(2)}, {addItem(1, "C"), handleReply(1)},
		{advise(2, 1), okReply()}, {advise(1, 2), okReply()},
	} {
		tb.Apply(s.cmd, s.reply)
	}
	tb.AddLeftover(Key{1, 7}, "D", false)
	r := &recorder{fail: map[string]bool{"UnAdvise(1,2)": true}}
	warns := Teardown(tb, r)
	want := []string{"UnAdvise(1,2)", "UnAdvise(2,1)", "RemoveItem(1,1)", "RemoveItem(1,2)", "RemoveItem(1,7)", "RemoveItem(2,1)", "Unregister(1)", "Unregister(2)"}
	if !slices.Equal(r.calls, want) {
		t.Fatalf("teardown %v\nwant     %v", r.calls, want)
	}
	if len(warns) != 1 {
		t.Fatalf("warnings %v, want one for the refused UnAdvise", warns)
	}
	if tb.Len() != 0 || len(tb.Registrations()) != 0 {
		t.Fatal("the table is not empty after teardown")
	}
}

func protoInt32(v int32) protoreflect.Value   { return protoreflect.ValueOfInt32(v) }
func protoBool(v bool) protoreflect.Value     { return protoreflect.ValueOfBool(v) }
func protoString(v string) protoreflect.Value { return protoreflect.ValueOfString(v) }
