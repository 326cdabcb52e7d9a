package workerclient

import (
	"context"
	"errors"
	"testing"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	workerv1 "github.com/mxgateway/mxgateway/api/mxgateway/worker/v1"
)

func addItemCmd(sh int32, ref string) *mxgatewayv1.Command {
	return &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_AddItem{AddItem: &mxgatewayv1.AddItemCommand{ServerHandle: sh, ItemDefinition: ref}}}
}

func removeItemCmd(sh, ih int32) *mxgatewayv1.Command {
	return &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_RemoveItem{RemoveItem: &mxgatewayv1.RemoveItemCommand{ServerHandle: sh, ItemHandle: ih}}}
}

func okHandle(h int32) *mxgatewayv1.Reply {
	return &mxgatewayv1.Reply{Status: mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK,
		Result: &mxgatewayv1.Reply_ItemHandle{ItemHandle: &mxgatewayv1.ItemHandleResult{ItemHandle: h}}}
}

func okReply() *mxgatewayv1.Reply {
	return &mxgatewayv1.Reply{Status: mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK}
}

// TestRepliesOfAbandonedCommandsReachTheItemTable is the gateway's half of
// the write-constraint bypass: a RemoveItem that timed out and an AddItem
// whose caller cancelled still ran in the worker; their late replies are
// applied to the mirror, in worker order, before a later reply is handed
// out, so the mirror says what the worker says the handle is.
func TestRepliesOfAbandonedCommandsReachTheItemTable(t *testing.T) {
	h := newHarness(t)
	h.start()
	add := h.invokeAsync(context.Background(), addItemCmd(1, "TIC101.SP"), waitFor)
	first := h.w.readUntil(isCommand)
	h.w.reply(first.GetCorrelationId(), okHandle(1))
	if r := wait(t, add); r.err != nil {
		t.Fatal(r.err)
	}
	if ref, ok := h.c.Items().Ref(1, 1); !ok || ref != "TIC101.SP" {
		t.Fatalf("mirror after AddItem: %q %v", ref, ok)
	}

	// RemoveItem times out; AddItem is cancelled by its caller.
	rm := h.invokeAsync(context.Background(), removeItemCmd(1, 1), 50*time.Millisecond)
	rmCmd := h.w.readUntil(isCommand)
	if r := wait(t, rm); !errors.Is(r.err, ErrCommandTimeout) {
		t.Fatalf("RemoveItem: %v, want a timeout", r.err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	add = h.invokeAsync(ctx, addItemCmd(1, "TIC101.HiLimit"), waitFor)
	addCmd := h.w.readUntil(isCommand)
	cancel()
	if r := wait(t, add); !errors.Is(r.err, context.Canceled) {
		t.Fatalf("AddItem: %v, want cancelled", r.err)
	}
	if n := h.c.Unanswered(); n != 2 {
		t.Fatalf("Unanswered = %d, want 2", n)
	}
	if ref, _ := h.c.Items().Ref(1, 1); ref != "TIC101.SP" {
		t.Fatalf("mirror changed before the worker answered: %q", ref)
	}

	// The worker ran both anyway; then answers a third command. By the
	// time the third reply is handed out, the mirror has the first two.
	h.w.reply(rmCmd.GetCorrelationId(), okReply())
	h.w.reply(addCmd.GetCorrelationId(), okHandle(1))
	third := h.invokeAsync(context.Background(), registerCmd(), waitFor)
	thirdCmd := h.w.readUntil(isCommand)
	h.w.reply(thirdCmd.GetCorrelationId(), &mxgatewayv1.Reply{Status: mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK,
		Result: &mxgatewayv1.Reply_Register{Register: &mxgatewayv1.RegisterResult{ServerHandle: 2}}})
	if r := wait(t, third); r.err != nil {
		t.Fatal(r.err)
	}
	if ref, ok := h.c.Items().Ref(1, 1); !ok || ref != "TIC101.HiLimit" {
		t.Fatalf("mirror = %q %v, want handle 1 to be TIC101.HiLimit as in the worker", ref, ok)
	}
	if n := h.c.Unanswered(); n != 0 {
		t.Fatalf("Unanswered = %d after the late replies", n)
	}
	if h.c.State() != StateReady {
		t.Fatalf("state %v", h.c.State())
	}
}

// TestItemGuardTravelsAndRefusalsAreTyped: the guard reaches the worker
// with the command, and a refusal is a *GuardError that changes nothing.
func TestItemGuardTravelsAndRefusalsAreTyped(t *testing.T) {
	h := newHarness(t)
	h.start()
	g := &workerv1.ItemGuard{Items: []*workerv1.GuardedItem{{ServerHandle: 1, ItemHandle: 1, ItemDefinition: "TIC101.SP"}}}
	done := make(chan invokeResult, 1)
	go func() {
		r, err := h.c.Invoke(context.Background(), addItemCmd(1, "TIC101.SP"), g, waitFor)
		done <- invokeResult{r, err}
	}()
	env := h.w.readUntil(isCommand)
	if got := env.GetCommand().GetItemGuard().GetItems(); len(got) != 1 || got[0].GetItemDefinition() != "TIC101.SP" {
		t.Fatalf("guard at the worker: %v", got)
	}
	h.w.send(&workerv1.WorkerEnvelope{CorrelationId: env.GetCorrelationId(), Body: &workerv1.WorkerEnvelope_CommandReply{
		CommandReply: &workerv1.WorkerCommandReply{Reply: okHandle(5), Denial: &mxgatewayv1.EntryDenial{
			Reason: mxgatewayv1.ReasonReferenceForbidden, Message: "handle 1 names TIC101.HiLimit"}}}})
	r := wait(t, done)
	var ge *GuardError
	if !errors.As(r.err, &ge) || !errors.Is(r.err, ErrGuardRefused) || ge.Denial.GetMessage() != "handle 1 names TIC101.HiLimit" {
		t.Fatalf("err %v, want a *GuardError", r.err)
	}
	if r.reply != nil {
		t.Fatalf("a refused command returned a reply: %v", r.reply)
	}
	if _, ok := h.c.Items().Ref(1, 5); ok {
		t.Fatal("a refused command changed the item table")
	}
}
