package e2e

import (
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/test/e2e/harness"
)

const eInvalidArg = -2147024809 // E_INVALIDARG

// TestBadInput: unknown sessions, malformed commands, invalid handles and
// oversized requests each fail the way the API promises, and the session
// keeps working.
func TestBadInput(t *testing.T) {
	t.Parallel()
	g := harness.Start(t, "--max-message-bytes=262144")
	c := g.Client()
	ctx := harness.Context(t, step)

	register := &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Register{Register: &mxgatewayv1.RegisterCommand{}}}
	_, err := c.Invoke(ctx, &mxgatewayv1.InvokeRequest{SessionId: "0123456789abcdef0123456789abcdef", Command: register})
	wantCode(t, err, codes.NotFound, mxgatewayv1.ReasonSessionNotFound)
	_, err = c.CloseSession(ctx, &mxgatewayv1.CloseSessionRequest{SessionId: "nope"})
	wantCode(t, err, codes.NotFound, mxgatewayv1.ReasonSessionNotFound)
	st, err := c.StreamEvents(ctx, &mxgatewayv1.StreamEventsRequest{SessionId: "nope"})
	if err == nil {
		_, err = st.Recv()
	}
	wantCode(t, err, codes.NotFound, mxgatewayv1.ReasonSessionNotFound)

	s := openSession(t, c, "bad")
	hlmx := s.register()

	// Malformed: the gateway refuses before the worker sees anything.
	_, err = s.invokeErr(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_AddItem{AddItem: &mxgatewayv1.AddItemCommand{ServerHandle: hlmx}}})
	wantCode(t, err, codes.InvalidArgument, mxgatewayv1.ReasonInvalidRequest)
	if !hasViolation(err, "command.add_item.item_definition") {
		t.Fatalf("BadRequest of %v does not name the empty reference", err)
	}
	_, err = s.invokeErr(&mxgatewayv1.Command{})
	wantCode(t, err, codes.InvalidArgument, mxgatewayv1.ReasonInvalidRequest)

	// Invalid handles are MXAccess's business: a normal reply.
	for _, cmd := range []*mxgatewayv1.Command{
		{Kind: &mxgatewayv1.Command_Advise{Advise: &mxgatewayv1.AdviseCommand{ServerHandle: hlmx, ItemHandle: 9999}}},
		{Kind: &mxgatewayv1.Command_Unregister{Unregister: &mxgatewayv1.UnregisterCommand{ServerHandle: 4242}}},
	} {
		r, err := s.invokeErr(cmd)
		if err != nil {
			t.Fatalf("%v: %v (an invalid handle must not be a gRPC error)", cmd, err)
		}
		if r.GetStatus() != mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_MXACCESS_FAILURE || r.GetHresult() != eInvalidArg {
			t.Fatalf("%v: reply %v, want MXACCESS_FAILURE E_INVALIDARG", cmd, r)
		}
	}

	// Oversized: grpc refuses the message before the handler.
	refs := make([]string, 2000)
	for i := range refs {
		refs[i] = "Tank1." + strings.Repeat("x", 200)
	}
	_, err = s.invokeErr(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_ReadBulk{ReadBulk: &mxgatewayv1.ReadBulkCommand{ServerHandle: hlmx, ItemDefinitions: refs}}})
	wantCode(t, err, codes.ResourceExhausted, "")

	// The session is unharmed.
	if h := s.addItem("Tank1.Level"); h <= 0 {
		t.Fatal("AddItem after bad input failed")
	}
	if st := s.info().GetState(); st != mxgatewayv1.SessionState_SESSION_STATE_READY {
		t.Fatalf("state %v", st)
	}
}

func hasViolation(err error, field string) bool {
	st, _ := status.FromError(err)
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				if v.GetField() == field {
					return true
				}
			}
		}
	}
	return false
}
