package session

import (
	"context"
	"errors"
	"testing"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/catalog"
	workerv1 "github.com/mxgateway/mxgateway/api/mxgateway/worker/v1"
)

const (
	stOK   = mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK
	stFail = mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_MXACCESS_FAILURE
	stBulk = mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_BULK
)

// TestItemRefsComeFromTheWorkersMirror: ItemRef answers from the worker's
// item table mirror, and a guard reaches the worker with its command.
func TestItemRefsComeFromTheWorkersMirror(t *testing.T) {
	h := newHarness(t, Options{})
	s, w := h.open()
	w.invoke = func(_ context.Context, cmd *mxgatewayv1.Command, _ time.Duration) (*mxgatewayv1.Reply, error) {
		if cmd.GetAddItem() != nil {
			return &mxgatewayv1.Reply{Status: stOK, Result: &mxgatewayv1.Reply_ItemHandle{ItemHandle: &mxgatewayv1.ItemHandleResult{ItemHandle: 7}}}, nil
		}
		return &mxgatewayv1.Reply{Status: stOK}, nil
	}
	add := &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_AddItem{AddItem: &mxgatewayv1.AddItemCommand{ServerHandle: 1, ItemDefinition: "TIC101.SP"}}}
	if _, err := s.Invoke(context.Background(), add, 0); err != nil {
		t.Fatal(err)
	}
	if ref, ok := s.ItemRef(1, 7); !ok || ref != "TIC101.SP" {
		t.Fatalf("ItemRef(1, 7) = %q, %v", ref, ok)
	}
	if _, ok := s.ItemRef(2, 7); ok {
		t.Fatal("ItemRef of another registration")
	}
	g := &workerv1.ItemGuard{Items: []*workerv1.GuardedItem{{ServerHandle: 1, ItemHandle: 7, ItemDefinition: "TIC101.SP"}}}
	write := &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Write{Write: &mxgatewayv1.WriteCommand{ServerHandle: 1, ItemHandle: 7}}}
	if _, err := s.InvokeGuarded(context.Background(), write, g, 0); err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	guards := w.guards
	w.mu.Unlock()
	if len(guards) != 2 || guards[0] != nil || guards[1] != g {
		t.Fatalf("guards at the worker %v", guards)
	}
}

// TestUnansweredCommandsCountAsPending: commands whose callers stopped
// waiting still run in the worker: they count against the pending limit
// and in the listing.
func TestUnansweredCommandsCountAsPending(t *testing.T) {
	h := newHarness(t, Options{MaxPendingCommands: 2})
	s, w := h.open()
	w.unanswered.Store(2)
	cmd := &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Register{Register: &mxgatewayv1.RegisterCommand{}}}
	if _, err := s.Invoke(context.Background(), cmd, 0); !errors.Is(err, ErrPendingLimit) {
		t.Fatalf("Invoke with 2 unanswered commands: %v, want ErrPendingLimit", err)
	}
	if n := s.Info().CommandsPending; n != 2 {
		t.Fatalf("CommandsPending = %d, want 2", n)
	}
	w.unanswered.Store(1)
	if _, err := s.Invoke(context.Background(), cmd, 0); err != nil {
		t.Fatal(err)
	}
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
	h := newHarness(t, Options{MaxPendingCommands: 1, Hooks: Hooks{CommandStarted: func(kind *catalog.Kind) { started = append(started, kind.Name()) }}})
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
