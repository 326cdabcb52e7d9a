package gateway

import (
	"context"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/internal/session"
)

// TestPerEntryDenials: denied bulk entries never reach the worker, carry
// their denial in the reply, and the worker's results land at their input
// positions; a whole-call refusal is a status.
func TestPerEntryDenials(t *testing.T) {
	var mu sync.Mutex
	var seen []*mxgatewayv1.Command
	deny := &mxgatewayv1.EntryDenial{Reason: mxgatewayv1.ReasonReferenceForbidden, Message: "no"}
	var gotRef struct {
		ref string
		ok  bool
	}
	g := startGateway(t, Options{
		CheckCommand: func(ctx context.Context, id string, cmd *mxgatewayv1.Command, refOf func(int32) (string, bool)) (map[int]*mxgatewayv1.EntryDenial, error) {
			out := map[int]*mxgatewayv1.EntryDenial{}
			switch k := cmd.GetKind().(type) {
			case *mxgatewayv1.Command_AddItemBulk:
				for i, r := range k.AddItemBulk.GetItemDefinitions() {
					if strings.HasPrefix(r, "No.") {
						out[i] = deny
					}
				}
			case *mxgatewayv1.Command_ReadBulk:
				for i, r := range k.ReadBulk.GetItemDefinitions() {
					if strings.HasPrefix(r, "No.") {
						out[i] = deny
					}
				}
			case *mxgatewayv1.Command_WriteBulk:
				for i := range k.WriteBulk.GetEntries() {
					out[i] = deny
				}
			case *mxgatewayv1.Command_Write:
				gotRef.ref, gotRef.ok = refOf(k.Write.GetItemHandle())
				return nil, status.Error(codes.PermissionDenied, "write denied")
			}
			return out, nil
		},
	}, session.Options{})
	g.prepare = func(w *fakeWorker) {
		next := int32(0)
		w.invoke = func(_ context.Context, cmd *mxgatewayv1.Command) (*mxgatewayv1.Reply, error) {
			mu.Lock()
			seen = append(seen, proto.Clone(cmd).(*mxgatewayv1.Command))
			mu.Unlock()
			switch k := cmd.GetKind().(type) {
			case *mxgatewayv1.Command_AddItemBulk:
				res := &mxgatewayv1.BulkResult{}
				for _, r := range k.AddItemBulk.GetItemDefinitions() {
					next++
					res.Entries = append(res.Entries, &mxgatewayv1.BulkEntryResult{ItemDefinition: r, ItemHandle: next,
						Status: mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK})
				}
				return &mxgatewayv1.Reply{Status: mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_BULK, Result: &mxgatewayv1.Reply_Bulk{Bulk: res}}, nil
			case *mxgatewayv1.Command_ReadBulk:
				res := &mxgatewayv1.ReadBulkResult{}
				for _, r := range k.ReadBulk.GetItemDefinitions() {
					res.Entries = append(res.Entries, &mxgatewayv1.ReadResult{ItemDefinition: r, Value: &mxgatewayv1.MxValue{Kind: &mxgatewayv1.MxValue_Int32Value{Int32Value: 7}}})
				}
				return &mxgatewayv1.Reply{Status: mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_BULK, Result: &mxgatewayv1.Reply_ReadBulk{ReadBulk: res}}, nil
			}
			return &mxgatewayv1.Reply{Status: mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK}, nil
		}
	}
	ctx := ctxT(t)
	open, err := g.client.OpenSession(ctx, &mxgatewayv1.OpenSessionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	id := open.GetSessionId()
	invoke := func(cmd *mxgatewayv1.Command) (*mxgatewayv1.Reply, error) {
		resp, err := g.client.Invoke(ctx, &mxgatewayv1.InvokeRequest{SessionId: id, Command: cmd})
		return resp.GetReply(), err
	}

	refs := []string{"No.A", "Yes.B", "No.C", "Yes.D"}
	r, err := invoke(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_AddItemBulk{AddItemBulk: &mxgatewayv1.AddItemBulkCommand{ServerHandle: 1, ItemDefinitions: refs}}})
	if err != nil {
		t.Fatal(err)
	}
	e := r.GetBulk().GetEntries()
	if r.GetStatus() != mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_BULK || len(e) != 4 {
		t.Fatalf("reply %v", r)
	}
	for i, want := range []struct {
		denied bool
		handle int32
	}{{true, 0}, {false, 1}, {true, 0}, {false, 2}} {
		if (e[i].GetDenial() != nil) != want.denied || e[i].GetItemHandle() != want.handle || e[i].GetItemDefinition() != refs[i] {
			t.Errorf("entry %d = %v, want denied=%v handle %d", i, e[i], want.denied, want.handle)
		}
	}
	mu.Lock()
	if len(seen) != 1 || !slicesEqual(seen[0].GetAddItemBulk().GetItemDefinitions(), []string{"Yes.B", "Yes.D"}) {
		t.Fatalf("worker saw %v", seen)
	}
	mu.Unlock()
	// The session learnt the handles of what the worker added.
	s, _ := g.srv.opts.Sessions.Get(id)
	if ref, ok := s.ItemRef(1, 2); !ok || ref != "Yes.D" {
		t.Fatalf("ItemRef(1, 2) = %q, %v", ref, ok)
	}

	r, err = invoke(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_ReadBulk{ReadBulk: &mxgatewayv1.ReadBulkCommand{ServerHandle: 1, ItemDefinitions: []string{"Yes.A", "No.B"}}}})
	if err != nil {
		t.Fatal(err)
	}
	re := r.GetReadBulk().GetEntries()
	if len(re) != 2 || re[0].GetDenial() != nil || re[0].GetValue().GetInt32Value() != 7 || re[1].GetDenial() == nil || re[1].GetItemDefinition() != "No.B" {
		t.Fatalf("read bulk %v", r)
	}

	// Every entry denied: the worker sees nothing.
	mu.Lock()
	before := len(seen)
	mu.Unlock()
	r, err = invoke(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_WriteBulk{WriteBulk: &mxgatewayv1.WriteBulkCommand{ServerHandle: 1, Entries: []*mxgatewayv1.WriteCommand{
		{ServerHandle: 1, ItemHandle: 2, Value: &mxgatewayv1.MxValue{Kind: &mxgatewayv1.MxValue_Int32Value{Int32Value: 1}}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if e := r.GetBulk().GetEntries(); r.GetStatus() != mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_BULK || len(e) != 1 || e[0].GetDenial() == nil || e[0].GetItemHandle() != 2 {
		t.Fatalf("all-denied write bulk %v", r)
	}
	mu.Lock()
	if len(seen) != before {
		t.Fatalf("the worker ran an all-denied bulk: %v", seen[before:])
	}
	mu.Unlock()

	// A single write: the checker resolves the handle; its status passes through.
	_, err = invoke(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Write{Write: &mxgatewayv1.WriteCommand{ServerHandle: 1, ItemHandle: 2,
		Value: &mxgatewayv1.MxValue{Kind: &mxgatewayv1.MxValue_Int32Value{Int32Value: 1}}}}})
	wantStatus(t, err, codes.PermissionDenied, "")
	if gotRef.ref != "Yes.D" || !gotRef.ok {
		t.Fatalf("refOf(2) = %q, %v", gotRef.ref, gotRef.ok)
	}
}

func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestServerHandleOf(t *testing.T) {
	for name, cmd := range validCommands() {
		want := int32(1)
		if name == "register" {
			want = 0
		}
		if got := serverHandleOf(cmd); got != want {
			t.Errorf("%s: server handle %d, want %d", name, got, want)
		}
	}
}
