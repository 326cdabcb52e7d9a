package session

import (
	"context"
	"testing"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
)

const (
	stOK   = mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK
	stFail = mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_MXACCESS_FAILURE
	stBulk = mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_BULK
)

// TestItemRefs: the session learns item handles from add replies and
// forgets them on removal, per registration; handles are reused.
func TestItemRefs(t *testing.T) {
	h := newHarness(t, Options{})
	s, w := h.open()
	next := int32(0)
	w.invoke = func(_ context.Context, cmd *mxgatewayv1.Command, _ time.Duration) (*mxgatewayv1.Reply, error) {
		switch k := cmd.GetKind().(type) {
		case *mxgatewayv1.Command_AddItem:
			if k.AddItem.GetItemDefinition() == "Bad.Ref" {
				return &mxgatewayv1.Reply{Status: stFail}, nil
			}
			next++
			return &mxgatewayv1.Reply{Status: stOK, Result: &mxgatewayv1.Reply_ItemHandle{ItemHandle: &mxgatewayv1.ItemHandleResult{ItemHandle: next}}}, nil
		case *mxgatewayv1.Command_SubscribeBulk:
			res := &mxgatewayv1.BulkResult{}
			for range k.SubscribeBulk.GetItemDefinitions() {
				next++
				// The advise step failed, but the item was added.
				res.Entries = append(res.Entries, &mxgatewayv1.BulkEntryResult{ItemHandle: next, Status: stFail, FailedMethod: "Advise"})
			}
			return &mxgatewayv1.Reply{Status: stBulk, Result: &mxgatewayv1.Reply_Bulk{Bulk: res}}, nil
		}
		return &mxgatewayv1.Reply{Status: stOK}, nil
	}
	run := func(cmd *mxgatewayv1.Command) {
		t.Helper()
		if _, err := s.Invoke(context.Background(), cmd, 0); err != nil {
			t.Fatal(err)
		}
	}
	add := func(server int32, ref string) {
		run(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_AddItem{AddItem: &mxgatewayv1.AddItemCommand{ServerHandle: server, ItemDefinition: ref}}})
	}
	want := func(server, item int32, ref string) {
		t.Helper()
		got, ok := s.ItemRef(server, item)
		if ok != (ref != "") || got != ref {
			t.Fatalf("ItemRef(%d, %d) = %q, %v; want %q", server, item, got, ok, ref)
		}
	}
	add(1, "TIC101.SP") // 1
	add(2, "Tank1.Level")
	add(1, "Bad.Ref") // refused: no handle
	want(1, 1, "TIC101.SP")
	want(2, 2, "Tank1.Level")
	want(1, 2, "")
	run(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_SubscribeBulk{SubscribeBulk: &mxgatewayv1.SubscribeBulkCommand{
		ServerHandle: 1, ItemDefinitions: []string{"A.B", "C.D"}}}})
	want(1, 3, "A.B")
	want(1, 4, "C.D")

	run(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_RemoveItem{RemoveItem: &mxgatewayv1.RemoveItemCommand{ServerHandle: 1, ItemHandle: 1}}})
	want(1, 1, "")
	run(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_UnsubscribeBulk{UnsubscribeBulk: &mxgatewayv1.UnsubscribeBulkCommand{ServerHandle: 1, ItemHandles: []int32{3}}}})
	want(1, 3, "")
	want(1, 4, "C.D")
	run(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Unregister{Unregister: &mxgatewayv1.UnregisterCommand{ServerHandle: 1}}})
	want(1, 4, "")
	want(2, 2, "Tank1.Level")
	// A reused handle takes the new reference.
	next = 1
	add(2, "Other.Ref")
	want(2, 2, "Other.Ref")
}

// TestQueuedEvents: the queue depth counts what subscribers have not read.
func TestQueuedEvents(t *testing.T) {
	h := newHarness(t, Options{})
	s, w := h.open()
	sub, err := s.Subscribe(SubscribeRequest{LiveOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	w.emit(t, 1, 2, 3)
	waitLastSeq(t, s, 3)
	if n := h.m.QueuedEvents(); n != 3 {
		t.Fatalf("QueuedEvents = %d, want 3", n)
	}
	expectSeqs(t, sub, 1, 2)
	if n := h.m.QueuedEvents(); n != 1 {
		t.Fatalf("QueuedEvents = %d, want 1", n)
	}
	// A late subscriber's replay backlog counts too.
	late, err := s.Subscribe(SubscribeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	defer late.Close()
	if n := h.m.QueuedEvents(); n != 4 {
		t.Fatalf("QueuedEvents = %d, want 4", n)
	}
}

// TestCommandStartedHook: every command that reaches the worker is
// announced before it runs; refused ones are not.
func TestCommandStartedHook(t *testing.T) {
	var started []string
	h := newHarness(t, Options{MaxPendingCommands: 1, Hooks: Hooks{CommandStarted: func(kind string) { started = append(started, kind) }}})
	s, _ := h.open()
	cmd := &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Register{Register: &mxgatewayv1.RegisterCommand{}}}
	if _, err := s.Invoke(context.Background(), cmd, 0); err != nil {
		t.Fatal(err)
	}
	s.Close(context.Background())
	if _, err := s.Invoke(context.Background(), cmd, 0); err == nil {
		t.Fatal("Invoke on a closed session succeeded")
	}
	if len(started) != 1 || started[0] != "register" {
		t.Fatalf("started %q", started)
	}
}
