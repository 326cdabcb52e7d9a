package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	mxgatewayv1grpc "github.com/mxgateway/mxgateway/api/mxgateway/v1/mxgatewayv1grpc"
	"github.com/mxgateway/mxgateway/test/e2e/harness"
)

// The write-constraint bypass (issue 12): a key allowed to write only
// TIC101.SP adds it, then removes it and adds TIC101.HiLimit, which the
// simulator gives the same handle, with calls whose callers stop waiting:
// the worker still runs them. The gateway must not go on believing the
// handle is TIC101.SP; the write to TIC101.HiLimit must be refused with
// REFERENCE_NOT_ALLOWED and audited.

const (
	slowCallMs  = 1500 // every simulator call takes this long once armed
	callTimeout = 600  // timeout_ms of the calls that give up waiting (the worker starts them well within it)
)

// bypassSession opens a session with the constrained key, registers,
// subscribes TIC101.SP and Sim.SlowCalls, arms Sim.SlowCallMs and returns
// the SP handle.
type bypassSession struct {
	*client
	g     *harness.Gateway
	keyID string
	ev    *stream
	sp    int32
	slow  int32 // Sim.SlowCallMs
	calls int32 // Sim.SlowCalls: its value rises as each slowed call starts
}

func newBypassSession(t *testing.T, g *harness.Gateway, name string) *bypassSession {
	t.Helper()
	k := createKey(t, g, keyspec{
		name:       name,
		scopes:     []string{scSessionOpen, scSessionClose, scEventsRead, scInvokeRead, scInvokeWrite},
		allowRead:  []string{"TIC101.*", "Sim.*"},
		allowWrite: []string{"TIC101.SP", "Sim.SlowCallMs"},
	})
	s := &bypassSession{client: openSession(t, mxgatewayv1grpc.NewGatewayClient(g.Dial(t, k.raw)), name), g: g, keyID: k.id}
	s.ev = s.streamEvents(&mxgatewayv1.StreamEventsRequest{})
	s.register()
	s.sp = s.subscribe("TIC101.SP")
	s.calls = s.subscribe("Sim.SlowCalls")
	s.ev.waitFor("first value of Sim.SlowCalls", dataChangeOf(s.hlmx, s.calls))
	s.slow = s.subscribe("Sim.SlowCallMs")
	s.write(s.slow, intValue(slowCallMs))
	return s
}

// startedCall waits until the n-th slowed call has reached the
// simulator's STA: from then on it runs to its end whatever its caller
// does (a queued command would be dropped by the Cancel).
func (s *bypassSession) startedCall(n int32) {
	s.t.Helper()
	s.ev.waitFor(fmt.Sprintf("slowed call %d to start", n), func(ev *mxgatewayv1.Event) bool {
		dc := ev.GetDataChange()
		return dc != nil && dc.GetItemHandle() == s.calls && dc.GetValue().GetInt32Value() == n
	})
}

// settled waits until the worker has answered every command, the ones
// nobody waits for included.
func (s *bypassSession) settled() {
	s.t.Helper()
	eventually(s.t, "every command answered", func() error {
		if n := s.info().GetCommandsPending(); n != 0 {
			return fmt.Errorf("%d commands pending", n)
		}
		return nil
	})
}

func (s *bypassSession) invokeWith(ctx context.Context, timeoutMs uint32, cmd *mxgatewayv1.Command) (*mxgatewayv1.Reply, error) {
	resp, err := s.c.Invoke(ctx, &mxgatewayv1.InvokeRequest{SessionId: s.id, Command: cmd, TimeoutMs: timeoutMs})
	return resp.GetReply(), err
}

func removeItemCmd(hlmx, h int32) *mxgatewayv1.Command {
	return &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_RemoveItem{RemoveItem: &mxgatewayv1.RemoveItemCommand{ServerHandle: hlmx, ItemHandle: h}}}
}

func addItemCmd(hlmx int32, ref string) *mxgatewayv1.Command {
	return &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_AddItem{AddItem: &mxgatewayv1.AddItemCommand{ServerHandle: hlmx, ItemDefinition: ref}}}
}

func adviseCmd(hlmx, h int32) *mxgatewayv1.Command {
	return &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Advise{Advise: &mxgatewayv1.AdviseCommand{ServerHandle: hlmx, ItemHandle: h}}}
}

// refusedAndAudited checks the end of both variants: the write to the
// reused handle was refused with REFERENCE_NOT_ALLOWED, TIC101.HiLimit
// kept its value, and an audit row names the denial.
func (s *bypassSession) refusedAndAudited(err error) {
	s.t.Helper()
	wantCode(s.t, err, codes.PermissionDenied, mxgatewayv1.ReasonReferenceForbidden)
	s.write(s.slow, intValue(0))
	r := s.invoke(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_ReadBulk{ReadBulk: &mxgatewayv1.ReadBulkCommand{
		ServerHandle: s.hlmx, ItemDefinitions: []string{"TIC101.HiLimit"}}}}).GetReadBulk().GetEntries()
	if len(r) != 1 || r[0].GetValue().GetDoubleValue() != 90 {
		s.t.Fatalf("TIC101.HiLimit = %v, want it unchanged at 90", r)
	}
	resp, err := mxgatewayv1grpc.NewAdminClient(s.g.Conn()).ListAuditEvents(harness.Context(s.t, step), &mxgatewayv1.ListAuditEventsRequest{Limit: 1000})
	if err != nil {
		s.t.Fatalf("ListAuditEvents: %v", err)
	}
	for _, e := range resp.GetEvents() {
		if e.GetActorKeyId() == s.keyID && e.GetOutcome() == "denied" && e.GetTarget() == "session "+s.id &&
			e.GetAction() == mxgatewayv1grpc.Gateway_Invoke_FullMethodName+"#write" &&
			strings.HasPrefix(e.GetDetail(), mxgatewayv1.ReasonReferenceForbidden) && strings.Contains(e.GetDetail(), "TIC101.HiLimit") {
			return
		}
	}
	s.t.Fatalf("no audit row for the refused write among %v", resp.GetEvents())
}

// TestConstraintBypassThroughTimedOutCommands: RemoveItem and AddItem time
// out at the gateway (timeout_ms) while the worker runs them. Their late
// replies reach the gateway's item table, so the write is refused.
func TestConstraintBypassThroughTimedOutCommands(t *testing.T) {
	t.Parallel()
	g := harness.Start(t)
	s := newBypassSession(t, g, "timed out")

	_, err := s.invokeWith(context.Background(), callTimeout, removeItemCmd(s.hlmx, s.sp))
	wantCode(t, err, codes.DeadlineExceeded, mxgatewayv1.ReasonCommandTimeout)
	s.startedCall(1) // it ran (a dropped command would never start)
	s.settled()
	r, err := s.invokeWith(context.Background(), callTimeout, addItemCmd(s.hlmx, "TIC101.HiLimit"))
	wantCode(t, err, codes.DeadlineExceeded, mxgatewayv1.ReasonCommandTimeout)
	if r != nil {
		t.Fatalf("a timed-out call returned %v", r)
	}
	s.startedCall(2)
	s.settled()
	s.write(s.slow, intValue(0))
	s.advise(s.sp) // the handle TIC101.SP had, reused for TIC101.HiLimit

	_, err = s.invokeWith(context.Background(), 0, writeCmd(s.hlmx, s.sp, doubleValue(150)))
	s.refusedAndAudited(err)
	s.close()
}

// TestConstraintBypassThroughCancelledCommands: the client cancels the
// RemoveItem while the worker runs it, then sends AddItem, Advise and the
// write before the RemoveItem's reply can have arrived: the write is
// checked while the gateway's view of the handle is stale, and the
// worker's item guard refuses it (whichever of the two sees it first, the
// write is refused).
func TestConstraintBypassThroughCancelledCommands(t *testing.T) {
	t.Parallel()
	g := harness.Start(t)
	s := newBypassSession(t, g, "cancelled")

	ctx, cancel := context.WithCancel(context.Background())
	removed := make(chan error, 1)
	go func() {
		_, err := s.invokeWith(ctx, 0, removeItemCmd(s.hlmx, s.sp))
		removed <- err
	}()
	s.startedCall(1)
	cancel()
	if err := <-removed; status.Code(err) != codes.Canceled {
		t.Fatalf("cancelled RemoveItem: %v", err)
	}

	type result struct {
		r   *mxgatewayv1.Reply
		err error
	}
	queue := func(cmd *mxgatewayv1.Command, pending uint32) <-chan result {
		ch := make(chan result, 1)
		go func() {
			r, err := s.invokeWith(context.Background(), 0, cmd)
			ch <- result{r, err}
		}()
		// The gateway counts it (and the abandoned RemoveItem) before the
		// next one goes: the worker runs them in this order.
		eventually(t, "command queued", func() error {
			if n := s.info().GetCommandsPending(); n < pending {
				return fmt.Errorf("%d commands pending, want %d", n, pending)
			}
			return nil
		})
		return ch
	}
	added := queue(addItemCmd(s.hlmx, "TIC101.HiLimit"), 2)
	advised := queue(adviseCmd(s.hlmx, s.sp), 3)
	_, err := s.invokeWith(context.Background(), 0, writeCmd(s.hlmx, s.sp, doubleValue(150)))
	wantCode(t, err, codes.PermissionDenied, mxgatewayv1.ReasonReferenceForbidden)
	if a := <-added; a.err != nil || a.r.GetItemHandle().GetItemHandle() != s.sp {
		t.Fatalf("AddItem(TIC101.HiLimit) = %v %v, want the reused handle %d", a.r, a.err, s.sp)
	}
	if a := <-advised; a.err != nil || a.r.GetStatus() != mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK {
		t.Fatalf("Advise = %v %v", a.r, a.err)
	}
	s.refusedAndAudited(err)
	s.close()
}
