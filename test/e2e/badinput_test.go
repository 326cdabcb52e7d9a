package e2e

import (
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/catalog"
	"github.com/mxgateway/mxgateway/test/e2e/harness"
)

const eInvalidArg = -2147024809 // E_INVALIDARG

// TestBadInput: unknown sessions and requests that cannot be an MXAccess
// call fail the way the API promises; the session keeps working.
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

	// Not an MXAccess call at all: the gateway refuses before the worker
	// sees anything.
	_, err = s.invokeErr(&mxgatewayv1.Command{})
	wantCode(t, err, codes.InvalidArgument, mxgatewayv1.ReasonInvalidRequest)
	_, err = s.invokeErr(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_SubscribeBulk{SubscribeBulk: &mxgatewayv1.SubscribeBulkCommand{ServerHandle: hlmx}}})
	wantCode(t, err, codes.InvalidArgument, mxgatewayv1.ReasonInvalidRequest)
	if !hasViolation(err, "command.subscribe_bulk.item_definitions") {
		t.Fatalf("BadRequest of %v does not name the empty list", err)
	}
	// Beyond the gateway's own bounds.
	_, err = s.invokeErr(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_AddItem{AddItem: &mxgatewayv1.AddItemCommand{
		ServerHandle: hlmx, ItemDefinition: strings.Repeat("x", 2000)}}})
	wantCode(t, err, codes.InvalidArgument, mxgatewayv1.ReasonInvalidRequest)

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

// TestBadValuesAreMXAccessReplies walks the command catalogue: every single
// command given a bad registration handle, and every one that names an
// item given a bad item handle, answers as MXAccess does — a reply with
// MXACCESS_FAILURE and E_INVALIDARG, never a gRPC error. So do an empty
// reference (a handle whose first data change fails), a negative buffered
// interval and a write without a value.
func TestBadValuesAreMXAccessReplies(t *testing.T) {
	t.Parallel()
	g := harness.Start(t)
	s := openSession(t, g.Client(), "bad values")
	hlmx := s.register()
	item := s.subscribe("Tank1.Level")
	ev := s.streamEvents(&mxgatewayv1.StreamEventsRequest{})
	wantInvalidArg := func(what string, cmd *mxgatewayv1.Command) {
		t.Helper()
		r, err := s.invokeErr(cmd)
		if err != nil {
			t.Fatalf("%s: %v (a bad value must not be a gRPC error)", what, err)
		}
		if r.GetStatus() != mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_MXACCESS_FAILURE || r.GetHresult() != eInvalidArg {
			t.Fatalf("%s: reply %v, want MXACCESS_FAILURE E_INVALIDARG", what, r)
		}
	}
	for _, k := range catalog.Kinds() {
		if !k.IsSingle() || k.Effect() == mxgatewayv1.ItemEffect_ITEM_EFFECT_REGISTER {
			continue
		}
		for _, badServer := range []bool{true, false} {
			m := k.NewMessage()
			named := false
			for _, f := range k.Fields() {
				switch f.Role {
				case mxgatewayv1.FieldRole_FIELD_ROLE_SERVER_HANDLE:
					if !badServer {
						m.Set(f.Desc, protoreflect.ValueOfInt32(hlmx))
					}
				case mxgatewayv1.FieldRole_FIELD_ROLE_ITEM_HANDLE:
					named = true
				case mxgatewayv1.FieldRole_FIELD_ROLE_REFERENCE:
					m.Set(f.Desc, protoreflect.ValueOfString("Tank1.Level"))
				case mxgatewayv1.FieldRole_FIELD_ROLE_TEXT:
					m.Set(f.Desc, protoreflect.ValueOfString("operator"))
				}
			}
			if !badServer && !named {
				continue // nothing bad left to name
			}
			what := k.Name() + " with a bad server handle"
			if !badServer {
				what = k.Name() + " with item handle 0"
			}
			wantInvalidArg(what, k.New(m.Interface()))
		}
	}
	wantInvalidArg("SetBufferedUpdateInterval(-5)", &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_SetBufferedUpdateInterval{
		SetBufferedUpdateInterval: &mxgatewayv1.SetBufferedUpdateIntervalCommand{ServerHandle: hlmx, IntervalMs: -5}}})
	wantInvalidArg("Write without a value", &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Write{Write: &mxgatewayv1.WriteCommand{ServerHandle: hlmx, ItemHandle: item}}})
	wantInvalidArg("Write2 without a timestamp", &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Write2{Write2: &mxgatewayv1.Write2Command{
		ServerHandle: hlmx, ItemHandle: item, Value: doubleValue(1)}}})

	// An empty reference is a reference MXAccess accepts and cannot
	// resolve: a handle now, a configuration error on the first data change.
	empty := s.invoke(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_AddItem{AddItem: &mxgatewayv1.AddItemCommand{ServerHandle: hlmx}}}).GetItemHandle().GetItemHandle()
	if empty <= 0 {
		t.Fatalf("AddItem(\"\") gave handle %d", empty)
	}
	s.advise(empty)
	first := ev.waitFor("first value of the empty reference", dataChangeOf(hlmx, empty)).GetDataChange()
	if len(first.GetStatuses()) == 0 || first.GetStatuses()[0].GetCategory() != mxgatewayv1.MxStatusCategory_MX_STATUS_CATEGORY_CONFIGURATION_ERROR {
		t.Fatalf("first data change of the empty reference: %v", first)
	}
	s.close()
}

// TestBadBulkEntriesFailAlone: whatever is wrong with a bulk entry — handle
// 0, a stale handle, an empty or over-long reference, another
// registration — it fails alone, in place, and the handles a bulk reply
// returns for failed entries can be passed straight back.
func TestBadBulkEntriesFailAlone(t *testing.T) {
	t.Parallel()
	g := harness.Start(t)
	s := openSession(t, g.Client(), "bad bulk")
	hlmx := s.register()
	long := strings.Repeat("x", 2000)
	refs := []string{"Tank1.Level", long, "", "Tank1.Volume"}
	sub := s.invoke(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_SubscribeBulk{SubscribeBulk: &mxgatewayv1.SubscribeBulkCommand{
		ServerHandle: hlmx, ItemDefinitions: refs}}}).GetBulk().GetEntries()
	if len(sub) != 4 {
		t.Fatalf("SubscribeBulk: %d entries", len(sub))
	}
	if d := sub[1].GetDenial(); d.GetReason() != mxgatewayv1.ReasonInvalidRequest || sub[1].GetItemHandle() != 0 {
		t.Fatalf("over-long reference entry = %v, want an INVALID_REQUEST denial in place", sub[1])
	}
	for _, i := range []int{0, 2, 3} {
		if sub[i].GetStatus() != mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK || sub[i].GetItemHandle() <= 0 {
			t.Fatalf("entry %d (%q) = %v, want subscribed", i, refs[i], sub[i])
		}
	}
	// Pass every returned handle back, plus 0 and a stale one.
	handles := []int32{sub[0].GetItemHandle(), sub[1].GetItemHandle(), sub[2].GetItemHandle(), sub[3].GetItemHandle(), 9999}
	un := s.invoke(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_UnsubscribeBulk{UnsubscribeBulk: &mxgatewayv1.UnsubscribeBulkCommand{
		ServerHandle: hlmx, ItemHandles: handles}}}).GetBulk().GetEntries()
	if len(un) != len(handles) {
		t.Fatalf("UnsubscribeBulk: %d entries", len(un))
	}
	for i, e := range un {
		bad := handles[i] == 0 || handles[i] == 9999
		if bad {
			if e.GetStatus() != mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_MXACCESS_FAILURE || e.GetHresult() != eInvalidArg ||
				len(e.GetCalls()) != 2 || e.GetItemHandle() != handles[i] {
				t.Fatalf("entry %d (handle %d) = %v, want E_INVALIDARG from both calls, in place", i, handles[i], e)
			}
			continue
		}
		if e.GetStatus() != mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK {
			t.Fatalf("entry %d (handle %d) = %v", i, handles[i], e)
		}
	}
	// A write bulk: handle 0 and an entry of another registration fail
	// alone; the good entry is written.
	w := s.invoke(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_SubscribeBulk{SubscribeBulk: &mxgatewayv1.SubscribeBulkCommand{
		ServerHandle: hlmx, ItemDefinitions: []string{"Tank1.Volume"}}}}).GetBulk().GetEntries()[0].GetItemHandle()
	wb := s.invoke(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_WriteBulk{WriteBulk: &mxgatewayv1.WriteBulkCommand{
		ServerHandle: hlmx, Entries: []*mxgatewayv1.WriteCommand{
			{ItemHandle: 0, Value: floatValue(1)},
			{ServerHandle: hlmx + 7, ItemHandle: w, Value: floatValue(2)},
			{ItemHandle: w, Value: floatValue(12345)},
		}}}}).GetBulk().GetEntries()
	if len(wb) != 3 || wb[0].GetHresult() != eInvalidArg || wb[1].GetDenial().GetReason() != mxgatewayv1.ReasonInvalidRequest ||
		wb[2].GetStatus() != mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK {
		t.Fatalf("WriteBulk entries = %v", wb)
	}
	s.close()
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
