package e2e

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	mxgatewayv1grpc "github.com/mxgateway/mxgateway/api/mxgateway/v1/mxgatewayv1grpc"
	"github.com/mxgateway/mxgateway/internal/protocol"
	"github.com/mxgateway/mxgateway/test/e2e/harness"
)

// TestCommandBurstMeetsPendingLimit fills a session's command budget at its
// largest allowed value (max_pending_commands = the worker's command queue)
// while the simulator's STA hangs, so every command queues in the worker:
// what exceeds the budget is refused with PENDING_LIMIT, nothing faults the
// session, and every accepted command is answered.
func TestCommandBurstMeetsPendingLimit(t *testing.T) {
	t.Parallel()
	// Concurrent calls per connection are bounded too (max_concurrent_streams):
	// let the whole burst reach the session.
	// The hang outlasts the heartbeat grace: raise it, so that only the
	// command budget is tested.
	g := harness.Start(t, fmt.Sprintf("--max-pending-commands=%d", protocol.CommandQueueSize), "--data-watchdog-reference=off",
		"--max-concurrent-streams=10000", "--heartbeat-grace=2m", "--heartbeat-ceiling=3m")
	s := openSession(t, g.Client(), "burst")
	st := s.streamEvents(&mxgatewayv1.StreamEventsRequest{})
	defer st.stop()
	s.register()
	hang := s.subscribe("Sim.HangMs")
	// The hang starts on the STA right after the write's OnWriteComplete;
	// it keeps every later command queued in the worker, long enough for
	// the whole burst to arrive even on a loaded machine.
	s.write(hang, intValue(25000))
	st.waitFor("OnWriteComplete of Sim.HangMs", func(ev *mxgatewayv1.Event) bool {
		return ev.GetWriteComplete().GetItemHandle() == hang
	})

	// gRPC clients cap concurrent streams per connection too; spread the
	// burst.
	const conns = 6
	clients := make([]mxgatewayv1grpc.GatewayClient, conns)
	for i := range clients {
		clients[i] = mxgatewayv1grpc.NewGatewayClient(g.Dial(t, g.AdminKey))
	}
	n := protocol.CommandQueueSize + 400
	var mu sync.Mutex
	var accepted, refused int
	var other []error
	var wg sync.WaitGroup
	ctx := harness.Context(t, 2*step)
	for i := range n {
		wg.Go(func() {
			_, err := clients[i%conns].Invoke(ctx, &mxgatewayv1.InvokeRequest{SessionId: s.id, Command: &mxgatewayv1.Command{
				Kind: &mxgatewayv1.Command_AddItem{AddItem: &mxgatewayv1.AddItemCommand{ServerHandle: s.hlmx, ItemDefinition: "TIC101.PV"}},
			}})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				accepted++
			case reasonOf(err) == mxgatewayv1.ReasonPendingLimit && status.Code(err) == codes.ResourceExhausted:
				refused++
			default:
				other = append(other, err)
			}
		})
	}
	wg.Wait()
	if len(other) > 0 {
		t.Fatalf("%d commands failed otherwise than PENDING_LIMIT, the first: %v", len(other), errors.Join(other[:1]...))
	}
	if refused < n-protocol.CommandQueueSize || accepted+refused != n {
		t.Fatalf("accepted %d, refused %d of %d; want at least %d refused", accepted, refused, n, n-protocol.CommandQueueSize)
	}
	info := s.info()
	if info.GetState() != mxgatewayv1.SessionState_SESSION_STATE_READY || info.GetFaultReason() != "" {
		t.Fatalf("session after the burst: %v", info)
	}
	s.register() // still serving
	if m := g.Metrics(t); !strings.Contains(m, fmt.Sprintf(`mxgateway_limit_refusals_total{limit="pending_limit"} %d`, refused)) {
		t.Fatalf("metrics do not count the %d PENDING_LIMIT refusals:\n%s", refused, grepLines(m, "limit_refusals"))
	}
}

// reasonOf is the ErrorInfo reason of a gRPC error ("" without one).
func reasonOf(err error) string {
	st, _ := status.FromError(err)
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return ""
}
