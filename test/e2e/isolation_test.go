package e2e

import (
	"fmt"
	"sync"
	"testing"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	mxgatewayv1grpc "github.com/mxgateway/mxgateway/api/mxgateway/v1/mxgatewayv1grpc"
	"github.com/mxgateway/mxgateway/test/e2e/harness"
)

// TestConcurrentSessionsIsolated opens 20 sessions at once; each writes its
// own value to the same tag of the one shared Galaxy and must only ever see
// its own session id and its own worker, and values that some session
// wrote.
func TestConcurrentSessionsIsolated(t *testing.T) {
	t.Parallel()
	const n = 20
	g := harness.Start(t)
	c := g.Client()
	var wg sync.WaitGroup
	pids := make([]int, n)
	for i := range n {
		wg.Go(func() { pids[i] = isolatedSession(t, c, i, n) })
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	seen := map[int]bool{}
	for i, pid := range pids {
		if seen[pid] {
			t.Fatalf("session %d shares worker pid %d with another session", i, pid)
		}
		seen[pid] = true
	}
	list, err := c.ListSessions(harness.Context(t, step), &mxgatewayv1.ListSessionsRequest{})
	if err != nil || len(list.GetSessions()) != 0 {
		t.Fatalf("sessions left after closing all: %v, %v", list, err)
	}
}

// isolatedSession runs one session's part and returns its worker pid. It
// reports failures with t.Errorf (safe from goroutines) and returns early.
func isolatedSession(t *testing.T, c mxgatewayv1grpc.GatewayClient, i, n int) int {
	ctx := harness.Context(t, step)
	open, err := c.OpenSession(ctx, &mxgatewayv1.OpenSessionRequest{ClientName: fmt.Sprintf("iso-%d", i)})
	if err != nil {
		t.Errorf("session %d: OpenSession: %v", i, err)
		return 0
	}
	id := open.GetSessionId()
	defer c.CloseSession(ctx, &mxgatewayv1.CloseSessionRequest{SessionId: id})
	st, err := c.StreamEvents(ctx, &mxgatewayv1.StreamEventsRequest{SessionId: id})
	if err != nil {
		t.Errorf("session %d: StreamEvents: %v", i, err)
		return 0
	}
	call := func(cmd *mxgatewayv1.Command) *mxgatewayv1.Reply {
		resp, err := c.Invoke(ctx, &mxgatewayv1.InvokeRequest{SessionId: id, Command: cmd})
		if err != nil {
			t.Errorf("session %d: Invoke: %v", i, err)
			return nil
		}
		return resp.GetReply()
	}
	r := call(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Register{Register: &mxgatewayv1.RegisterCommand{ClientName: "iso"}}})
	hlmx := r.GetRegister().GetServerHandle()
	r = call(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_AddItem{AddItem: &mxgatewayv1.AddItemCommand{ServerHandle: hlmx, ItemDefinition: "TIC101.SP"}}})
	h := r.GetItemHandle().GetItemHandle()
	call(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Advise{Advise: &mxgatewayv1.AdviseCommand{ServerHandle: hlmx, ItemHandle: h}}})
	want := 100 + float64(i)
	if r := call(writeCmd(hlmx, h, doubleValue(want))); r.GetStatus() != mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK {
		t.Errorf("session %d: Write = %v", i, r)
		return 0
	}
	for {
		resp, err := st.Recv()
		if err != nil {
			t.Errorf("session %d: stream: %v", i, err)
			return 0
		}
		ev := resp.GetEvent()
		if ev.GetSessionId() != id {
			t.Errorf("session %d received an event of session %s", i, ev.GetSessionId())
			return 0
		}
		v := ev.GetDataChange().GetValue().GetDoubleValue()
		if dc := ev.GetDataChange(); dc != nil && v != 65 && (v < 100 || v >= float64(100+n)) {
			t.Errorf("session %d saw value %v, which no session wrote", i, v)
			return 0
		}
		if v == want {
			break
		}
	}
	read := call(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_ReadBulk{ReadBulk: &mxgatewayv1.ReadBulkCommand{
		ServerHandle: hlmx, ItemDefinitions: []string{"TIC101.SP"},
	}}})
	if got := read.GetReadBulk().GetEntries()[0].GetValue().GetDoubleValue(); got < 100 || got >= float64(100+n) {
		t.Errorf("session %d reads %v, which no session wrote", i, got)
	}
	return int(open.GetWorkerPid())
}
