package client

import (
	"testing"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
)

func okReply(r *mxgatewayv1.Reply) *mxgatewayv1.Reply {
	r.Status = mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK
	return r
}

// TestJournalRenumbering drives the journal as a recovering session does:
// commands with the application's handles, a replay that renumbers, then
// commands, replies and events translated both ways, and a new item that
// must not take a number the application holds.
func TestJournalRenumbering(t *testing.T) {
	rc := newRecovery()
	reg := &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Register{Register: &mxgatewayv1.RegisterCommand{ClientName: "app"}}}
	rc.record(reg, okReply(&mxgatewayv1.Reply{Result: &mxgatewayv1.Reply_Register{Register: &mxgatewayv1.RegisterResult{ServerHandle: 1}}}))
	add := func(ref string, h int32) {
		cmd := &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_AddItem{AddItem: &mxgatewayv1.AddItemCommand{ServerHandle: 1, ItemDefinition: ref}}}
		rc.record(cmd, okReply(&mxgatewayv1.Reply{Result: &mxgatewayv1.Reply_ItemHandle{ItemHandle: &mxgatewayv1.ItemHandleResult{ItemHandle: h}}}))
	}
	add("A", 1)
	add("B", 2)
	add("C", 3)
	rc.record(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_RemoveItem{RemoveItem: &mxgatewayv1.RemoveItemCommand{ServerHandle: 1, ItemHandle: 1}}},
		okReply(&mxgatewayv1.Reply{}))
	rc.record(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_AdviseBulk{AdviseBulk: &mxgatewayv1.AdviseBulkCommand{ServerHandle: 1, ItemHandles: []int32{2, 3}, Supervisory: true}}},
		&mxgatewayv1.Reply{Status: mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_BULK, Result: &mxgatewayv1.Reply_Bulk{Bulk: &mxgatewayv1.BulkResult{
			Entries: []*mxgatewayv1.BulkEntryResult{{ItemHandle: 2, Status: mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK}, {ItemHandle: 3, Status: mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_MXACCESS_FAILURE, Hresult: -1}}}}})
	if len(rc.regs) != 1 || len(rc.regs[0].items) != 2 {
		t.Fatalf("journal: %d registrations, %d items", len(rc.regs), len(rc.regs[0].items))
	}
	g := rc.regs[0]
	if g.byV[2].advise != advisedSupervisory || g.byV[3].advise != notAdvised {
		t.Fatal("only the successful bulk entry is advised")
	}
	// Before any recovery nothing is copied.
	cmd := &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Write{Write: &mxgatewayv1.WriteCommand{ServerHandle: 1, ItemHandle: 3}}}
	if rc.toReal(cmd) != cmd {
		t.Fatal("identity mapping copied the command")
	}
	// The replay renumbered: registration 1 → 7, B 2 → 1, C 3 → 2.
	g.r, g.byV[2].r, g.byV[3].r = 7, 1, 2
	rc.byR = map[int32]*jreg{7: g}
	g.byR = map[int32]*jitem{1: g.byV[2], 2: g.byV[3]}

	wb := &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_WriteBulk{WriteBulk: &mxgatewayv1.WriteBulkCommand{ServerHandle: 1,
		Entries: []*mxgatewayv1.WriteCommand{{ServerHandle: 1, ItemHandle: 2}, {ServerHandle: 1, ItemHandle: 3}}}}}
	real := rc.toReal(wb).GetWriteBulk()
	if real.GetServerHandle() != 7 || real.GetEntries()[0].GetServerHandle() != 7 || real.GetEntries()[0].GetItemHandle() != 1 || real.GetEntries()[1].GetItemHandle() != 2 {
		t.Fatalf("WriteBulk to the new session: %v", real)
	}
	if wb.GetWriteBulk().GetEntries()[0].GetItemHandle() != 2 {
		t.Fatal("toReal modified the application's command")
	}
	ub := rc.toReal(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_UnAdviseBulk{UnAdviseBulk: &mxgatewayv1.UnAdviseBulkCommand{ServerHandle: 1, ItemHandles: []int32{3, 2}}}})
	if got := ub.GetUnAdviseBulk().GetItemHandles(); got[0] != 2 || got[1] != 1 {
		t.Fatalf("UnAdviseBulk handles %v, want [2 1]", got)
	}
	ev := &mxgatewayv1.Event{Body: &mxgatewayv1.Event_DataChange{DataChange: &mxgatewayv1.OnDataChange{ServerHandle: 7, ItemHandle: 2}}}
	if v := rc.toVirtualEvent(ev).GetDataChange(); v.GetServerHandle() != 1 || v.GetItemHandle() != 3 {
		t.Fatalf("event for the application: %v", v)
	}
	if ev.GetDataChange().GetItemHandle() != 2 {
		t.Fatal("toVirtualEvent modified the shared event")
	}
	// A new item gets real handle 3 on the new session; the application
	// holds 3 already (C), so it gets another number, and the reply says so.
	reply := rc.record(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_AddItem{AddItem: &mxgatewayv1.AddItemCommand{ServerHandle: 1, ItemDefinition: "D"}}},
		okReply(&mxgatewayv1.Reply{Result: &mxgatewayv1.Reply_ItemHandle{ItemHandle: &mxgatewayv1.ItemHandleResult{ItemHandle: 3}}}))
	v := reply.GetItemHandle().GetItemHandle()
	if v == 2 || v == 3 || v <= 0 {
		t.Fatalf("new item got handle %d, which the application already holds", v)
	}
	if r := rc.toReal(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Advise{Advise: &mxgatewayv1.AdviseCommand{ServerHandle: 1, ItemHandle: v}}}); r.GetAdvise().GetItemHandle() != 3 {
		t.Fatalf("Advise of the new item goes to %d, want 3", r.GetAdvise().GetItemHandle())
	}
}
