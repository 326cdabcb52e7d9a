package gateway

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/catalog"
)

func i32(v int32) *mxgatewayv1.MxValue {
	return &mxgatewayv1.MxValue{Kind: &mxgatewayv1.MxValue_Int32Value{Int32Value: v}}
}

// validCommands has one well-formed command of every kind.
func validCommands() map[string]*mxgatewayv1.Command {
	ts := timestamppb.Now()
	return map[string]*mxgatewayv1.Command{
		"register":                     {Kind: &mxgatewayv1.Command_Register{Register: &mxgatewayv1.RegisterCommand{ClientName: "c"}}},
		"unregister":                   {Kind: &mxgatewayv1.Command_Unregister{Unregister: &mxgatewayv1.UnregisterCommand{ServerHandle: 1}}},
		"add_item":                     {Kind: &mxgatewayv1.Command_AddItem{AddItem: &mxgatewayv1.AddItemCommand{ServerHandle: 1, ItemDefinition: "T.PV"}}},
		"add_item2":                    {Kind: &mxgatewayv1.Command_AddItem2{AddItem2: &mxgatewayv1.AddItem2Command{ServerHandle: 1, ItemDefinition: "T.PV"}}},
		"remove_item":                  {Kind: &mxgatewayv1.Command_RemoveItem{RemoveItem: &mxgatewayv1.RemoveItemCommand{ServerHandle: 1, ItemHandle: 1}}},
		"advise":                       {Kind: &mxgatewayv1.Command_Advise{Advise: &mxgatewayv1.AdviseCommand{ServerHandle: 1, ItemHandle: 1}}},
		"advise_supervisory":           {Kind: &mxgatewayv1.Command_AdviseSupervisory{AdviseSupervisory: &mxgatewayv1.AdviseSupervisoryCommand{ServerHandle: 1, ItemHandle: 1}}},
		"un_advise":                    {Kind: &mxgatewayv1.Command_UnAdvise{UnAdvise: &mxgatewayv1.UnAdviseCommand{ServerHandle: 1, ItemHandle: 1}}},
		"suspend":                      {Kind: &mxgatewayv1.Command_Suspend{Suspend: &mxgatewayv1.SuspendCommand{ServerHandle: 1, ItemHandle: 1}}},
		"activate":                     {Kind: &mxgatewayv1.Command_Activate{Activate: &mxgatewayv1.ActivateCommand{ServerHandle: 1, ItemHandle: 1}}},
		"add_buffered_item":            {Kind: &mxgatewayv1.Command_AddBufferedItem{AddBufferedItem: &mxgatewayv1.AddBufferedItemCommand{ServerHandle: 1, ItemDefinition: "T.PV"}}},
		"set_buffered_update_interval": {Kind: &mxgatewayv1.Command_SetBufferedUpdateInterval{SetBufferedUpdateInterval: &mxgatewayv1.SetBufferedUpdateIntervalCommand{ServerHandle: 1, IntervalMs: 100}}},
		"write":                        {Kind: &mxgatewayv1.Command_Write{Write: &mxgatewayv1.WriteCommand{ServerHandle: 1, ItemHandle: 1, Value: i32(1)}}},
		"write2":                       {Kind: &mxgatewayv1.Command_Write2{Write2: &mxgatewayv1.Write2Command{ServerHandle: 1, ItemHandle: 1, Value: i32(1), Timestamp: ts}}},
		"write_secured":                {Kind: &mxgatewayv1.Command_WriteSecured{WriteSecured: &mxgatewayv1.WriteSecuredCommand{ServerHandle: 1, ItemHandle: 1, Value: i32(1), CurrentUserId: 1, VerifierUserId: 1}}},
		"write_secured2":               {Kind: &mxgatewayv1.Command_WriteSecured2{WriteSecured2: &mxgatewayv1.WriteSecured2Command{ServerHandle: 1, ItemHandle: 1, Value: i32(1), Timestamp: ts}}},
		"authenticate_user":            {Kind: &mxgatewayv1.Command_AuthenticateUser{AuthenticateUser: &mxgatewayv1.AuthenticateUserCommand{ServerHandle: 1, UserName: "op", Password: "pw"}}},
		"archestra_user_to_id":         {Kind: &mxgatewayv1.Command_ArchestraUserToId{ArchestraUserToId: &mxgatewayv1.ArchestrAUserToIdCommand{ServerHandle: 1, UserIdentity: "op"}}},
		"add_item_bulk":                {Kind: &mxgatewayv1.Command_AddItemBulk{AddItemBulk: &mxgatewayv1.AddItemBulkCommand{ServerHandle: 1, ItemDefinitions: []string{"A.PV", "B.PV"}}}},
		"advise_bulk":                  {Kind: &mxgatewayv1.Command_AdviseBulk{AdviseBulk: &mxgatewayv1.AdviseBulkCommand{ServerHandle: 1, ItemHandles: []int32{1, 2}}}},
		"subscribe_bulk":               {Kind: &mxgatewayv1.Command_SubscribeBulk{SubscribeBulk: &mxgatewayv1.SubscribeBulkCommand{ServerHandle: 1, ItemDefinitions: []string{"A.PV"}}}},
		"unsubscribe_bulk":             {Kind: &mxgatewayv1.Command_UnsubscribeBulk{UnsubscribeBulk: &mxgatewayv1.UnsubscribeBulkCommand{ServerHandle: 1, ItemHandles: []int32{1}}}},
		"remove_item_bulk":             {Kind: &mxgatewayv1.Command_RemoveItemBulk{RemoveItemBulk: &mxgatewayv1.RemoveItemBulkCommand{ServerHandle: 1, ItemHandles: []int32{1}}}},
		"un_advise_bulk":               {Kind: &mxgatewayv1.Command_UnAdviseBulk{UnAdviseBulk: &mxgatewayv1.UnAdviseBulkCommand{ServerHandle: 1, ItemHandles: []int32{1}}}},
		"write_bulk":                   {Kind: &mxgatewayv1.Command_WriteBulk{WriteBulk: &mxgatewayv1.WriteBulkCommand{ServerHandle: 1, Entries: []*mxgatewayv1.WriteCommand{{ItemHandle: 1, Value: i32(1)}, {ServerHandle: 1, ItemHandle: 2, Value: &mxgatewayv1.MxValue{IsNull: true}}}}}},
		"write2_bulk":                  {Kind: &mxgatewayv1.Command_Write2Bulk{Write2Bulk: &mxgatewayv1.Write2BulkCommand{ServerHandle: 1, Entries: []*mxgatewayv1.Write2Command{{ItemHandle: 1, Value: i32(1), Timestamp: ts}}}}},
		"write_secured_bulk":           {Kind: &mxgatewayv1.Command_WriteSecuredBulk{WriteSecuredBulk: &mxgatewayv1.WriteSecuredBulkCommand{ServerHandle: 1, Entries: []*mxgatewayv1.WriteSecuredCommand{{ItemHandle: 1, Value: i32(1)}}}}},
		"write_secured2_bulk":          {Kind: &mxgatewayv1.Command_WriteSecured2Bulk{WriteSecured2Bulk: &mxgatewayv1.WriteSecured2BulkCommand{ServerHandle: 1, Entries: []*mxgatewayv1.WriteSecured2Command{{ItemHandle: 1, Value: i32(1), Timestamp: ts}}}}},
		"read_bulk":                    {Kind: &mxgatewayv1.Command_ReadBulk{ReadBulk: &mxgatewayv1.ReadBulkCommand{ServerHandle: 1, ItemDefinitions: []string{"A.PV"}, TimeoutMs: 1000}}},
	}
}

// TestEveryCommandKindIsValidated walks the catalogue: every kind has a
// valid example that passes. The empty form of a single command passes too
// (its handles and references are MXAccess's to judge: the worker answers
// with an HRESULT); the empty form of a bulk command cannot be an MXAccess
// call and names its input list.
func TestEveryCommandKindIsValidated(t *testing.T) {
	valid := validCommands()
	for _, k := range catalog.Kinds() {
		t.Run(k.Name(), func(t *testing.T) {
			cmd, ok := valid[k.Name()]
			if !ok {
				t.Fatalf("no valid example for command kind %q", k)
			}
			if d, err := validateInvoke(&mxgatewayv1.InvokeRequest{SessionId: "s", Command: cmd}, DefaultMaxBulkEntries); err != nil || d != nil {
				t.Fatalf("valid %s refused: %v %v", k, d, err)
			}
			empty := k.New(k.NewMessage().Interface())
			_, err := validateInvoke(&mxgatewayv1.InvokeRequest{SessionId: "s", Command: empty}, DefaultMaxBulkEntries)
			if !k.HasInputs() {
				if err != nil {
					t.Fatalf("empty %s refused: %v (MXAccess answers it)", k, err)
				}
				return
			}
			if !hasField(err, "command."+k.Name()+"."+string(k.InputField().Name())) {
				t.Fatalf("empty %s: %v, want its input list named", k, err)
			}
		})
	}
}

func hasField(err error, field string) bool {
	var inv *invalidError
	if !errors.As(err, &inv) {
		return false
	}
	for _, v := range inv.violations {
		if v.GetField() == field {
			return true
		}
	}
	return false
}

func TestValidateInvokeCases(t *testing.T) {
	big := make([]string, 11)
	for i := range big {
		big[i] = "A.PV"
	}
	long := strings.Repeat("x", maxReferenceLen+1)
	cases := []struct {
		name  string
		req   *mxgatewayv1.InvokeRequest
		field string // a field that must be named; "" means valid
	}{
		{"no session", &mxgatewayv1.InvokeRequest{Command: validCommands()["register"]}, "session_id"},
		{"no command", &mxgatewayv1.InvokeRequest{SessionId: "s"}, "command"},
		{"no kind", &mxgatewayv1.InvokeRequest{SessionId: "s", Command: &mxgatewayv1.Command{}}, "command"},
		{"timeout too long", &mxgatewayv1.InvokeRequest{SessionId: "s", TimeoutMs: maxTimeoutMs + 1, Command: validCommands()["register"]}, "timeout_ms"},
		{"read timeout too long", &mxgatewayv1.InvokeRequest{SessionId: "s", Command: &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_ReadBulk{ReadBulk: &mxgatewayv1.ReadBulkCommand{ServerHandle: 1, ItemDefinitions: []string{"A"}, TimeoutMs: maxTimeoutMs + 1}}}}, "command.read_bulk.timeout_ms"},
		{"reference too long", &mxgatewayv1.InvokeRequest{SessionId: "s", Command: &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_AddItem{AddItem: &mxgatewayv1.AddItemCommand{ServerHandle: 1, ItemDefinition: long}}}}, "command.add_item.item_definition"},
		{"password too long", &mxgatewayv1.InvokeRequest{SessionId: "s", Command: &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_AuthenticateUser{AuthenticateUser: &mxgatewayv1.AuthenticateUserCommand{Password: long}}}}, "command.authenticate_user.password"},
		{"client name not UTF-8", &mxgatewayv1.InvokeRequest{SessionId: "s", Command: &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Register{Register: &mxgatewayv1.RegisterCommand{ClientName: "a\xffb"}}}}, "command.register.client_name"},
		{"empty bulk", &mxgatewayv1.InvokeRequest{SessionId: "s", Command: &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_SubscribeBulk{SubscribeBulk: &mxgatewayv1.SubscribeBulkCommand{ServerHandle: 1}}}}, "command.subscribe_bulk.item_definitions"},
		{"bulk too long", &mxgatewayv1.InvokeRequest{SessionId: "s", Command: &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_ReadBulk{ReadBulk: &mxgatewayv1.ReadBulkCommand{ServerHandle: 1, ItemDefinitions: big}}}}, "command.read_bulk.item_definitions"},
		{"bulk within bound", &mxgatewayv1.InvokeRequest{SessionId: "s", Command: &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_ReadBulk{ReadBulk: &mxgatewayv1.ReadBulkCommand{ServerHandle: 1, ItemDefinitions: big[:10]}}}}, ""},
		// MXAccess's to judge: the worker answers with an HRESULT.
		{"zero item handle", &mxgatewayv1.InvokeRequest{SessionId: "s", Command: &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Advise{Advise: &mxgatewayv1.AdviseCommand{ServerHandle: 1}}}}, ""},
		{"negative server handle", &mxgatewayv1.InvokeRequest{SessionId: "s", Command: &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_AddItem{AddItem: &mxgatewayv1.AddItemCommand{ServerHandle: -1, ItemDefinition: "X"}}}}, ""},
		{"empty reference", &mxgatewayv1.InvokeRequest{SessionId: "s", Command: &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_AddItem{AddItem: &mxgatewayv1.AddItemCommand{ServerHandle: 1}}}}, ""},
		{"negative interval", &mxgatewayv1.InvokeRequest{SessionId: "s", Command: &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_SetBufferedUpdateInterval{SetBufferedUpdateInterval: &mxgatewayv1.SetBufferedUpdateIntervalCommand{ServerHandle: 1, IntervalMs: -5}}}}, ""},
		{"write without value", &mxgatewayv1.InvokeRequest{SessionId: "s", Command: &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Write{Write: &mxgatewayv1.WriteCommand{ServerHandle: 1, ItemHandle: 1}}}}, ""},
		{"write2 without timestamp", &mxgatewayv1.InvokeRequest{SessionId: "s", Command: &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Write2{Write2: &mxgatewayv1.Write2Command{ServerHandle: 1, ItemHandle: 1, Value: i32(1)}}}}, ""},
		{"bulk zero handle", &mxgatewayv1.InvokeRequest{SessionId: "s", Command: &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_AdviseBulk{AdviseBulk: &mxgatewayv1.AdviseBulkCommand{ServerHandle: 1, ItemHandles: []int32{1, 0}}}}}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := validateInvoke(tc.req, 10)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			st, _ := status.FromError(toStatus(discard, "Invoke", err))
			if st.Code() != codes.InvalidArgument {
				t.Fatalf("code %v (%v), want InvalidArgument", st.Code(), err)
			}
			var fields []string
			for _, d := range st.Details() {
				if br, ok := d.(*errdetails.BadRequest); ok {
					for _, v := range br.GetFieldViolations() {
						fields = append(fields, v.GetField())
					}
				}
			}
			if !slices.Contains(fields, tc.field) {
				t.Fatalf("violations %q do not name %q", fields, tc.field)
			}
		})
	}
}

// TestBadBulkEntriesFailAlone: a bulk entry beyond the gateway's own
// bounds is a per-entry denial in place, never a failed call.
func TestBadBulkEntriesFailAlone(t *testing.T) {
	long := strings.Repeat("x", maxReferenceLen+1)
	cases := []struct {
		name string
		cmd  *mxgatewayv1.Command
		bad  []int
	}{
		{"long reference", &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_SubscribeBulk{SubscribeBulk: &mxgatewayv1.SubscribeBulkCommand{
			ServerHandle: 1, ItemDefinitions: []string{"A", long, "B", "\xff"}}}}, []int{1, 3}},
		{"entry of another registration", &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_WriteBulk{WriteBulk: &mxgatewayv1.WriteBulkCommand{
			ServerHandle: 1, Entries: []*mxgatewayv1.WriteCommand{{ServerHandle: 2, ItemHandle: 1, Value: i32(1)}, {ServerHandle: 1, ItemHandle: 1}, {ItemHandle: 0}}}}}, []int{0}},
		{"nil entry is an empty entry", &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_WriteBulk{WriteBulk: &mxgatewayv1.WriteBulkCommand{
			ServerHandle: 1, Entries: []*mxgatewayv1.WriteCommand{nil}}}}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := validateInvoke(&mxgatewayv1.InvokeRequest{SessionId: "s", Command: tc.cmd}, 10)
			if err != nil {
				t.Fatalf("the call failed: %v", err)
			}
			var got []int
			for i, den := range d {
				if den.GetReason() != mxgatewayv1.ReasonInvalidRequest || den.GetMessage() == "" {
					t.Errorf("entry %d denial %v", i, den)
				}
				got = append(got, i)
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.bad) {
				t.Fatalf("denied entries %v, want %v", got, tc.bad)
			}
		})
	}
}
