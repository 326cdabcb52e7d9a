package gateway

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/internal/auth"
	"github.com/mxgateway/mxgateway/internal/session"
	"github.com/mxgateway/mxgateway/internal/workerclient"
)

// fakeConstraints denies references starting with "No." and writes to
// handles whose reference starts with "No."; it records what it saw.
type fakeConstraints struct {
	mu      sync.Mutex
	refused []string
	refs    map[int32]string // what itemRef said, per written handle
}

func (f *fakeConstraints) CheckCommand(_ context.Context, _ string, cmd *mxgatewayv1.Command, itemRef auth.ItemRefFunc) (auth.Decision, error) {
	p := auth.NewPrincipal("k", "k", nil, auth.Constraints{AllowRead: []string{"Yes.*"}, AllowWrite: []string{"Yes.*"}})
	dec, err := auth.CheckCommand(p, cmd, func(sh, ih int32) (string, bool) {
		ref, ok := itemRef(sh, ih)
		f.mu.Lock()
		if f.refs == nil {
			f.refs = map[int32]string{}
		}
		f.refs[ih] = ref
		f.mu.Unlock()
		return ref, ok
	})
	return dec, err
}

func (f *fakeConstraints) Refused(_ context.Context, _ string, cmd *mxgatewayv1.Command, entries int, detail string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refused = append(f.refused, strings.Join([]string{cmdKind(cmd), detail}, ": "))
	_ = entries
}

func cmdKind(cmd *mxgatewayv1.Command) string {
	return string(cmd.ProtoReflect().WhichOneof(cmd.ProtoReflect().Descriptor().Oneofs().ByName("kind")).Name())
}

func i32v(v int32) *mxgatewayv1.MxValue {
	return &mxgatewayv1.MxValue{Kind: &mxgatewayv1.MxValue_Int32Value{Int32Value: v}}
}

// TestPerEntryDenials: denied bulk entries never reach the worker, carry
// their denial in the reply, and the worker's results land at their input
// positions; a single denied write is a status; an approved write carries
// the item guard, and what the worker's guard refuses is audited.
func TestPerEntryDenials(t *testing.T) {
	var mu sync.Mutex
	var seen []*mxgatewayv1.Command
	fc := &fakeConstraints{}
	g := startGateway(t, Options{Constraints: fc}, session.Options{})
	refuse := false
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
					res.Entries = append(res.Entries, &mxgatewayv1.ReadResult{ItemDefinition: r, Value: i32v(7)})
				}
				return &mxgatewayv1.Reply{Status: mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_BULK, Result: &mxgatewayv1.Reply_ReadBulk{ReadBulk: res}}, nil
			case *mxgatewayv1.Command_WriteBulk:
				res := &mxgatewayv1.BulkResult{}
				for _, e := range k.WriteBulk.GetEntries() {
					r := &mxgatewayv1.BulkEntryResult{ItemHandle: e.GetItemHandle(), Status: mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK}
					if refuse {
						r.Status, r.Denial = 0, &mxgatewayv1.EntryDenial{Reason: mxgatewayv1.ReasonReferenceForbidden, Message: "worker table says No.X"}
					}
					res.Entries = append(res.Entries, r)
				}
				return &mxgatewayv1.Reply{Status: mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_BULK, Result: &mxgatewayv1.Reply_Bulk{Bulk: res}}, nil
			case *mxgatewayv1.Command_Write:
				if refuse {
					return nil, &workerclient.GuardError{Denial: &mxgatewayv1.EntryDenial{Reason: mxgatewayv1.ReasonReferenceForbidden, Message: "worker table says No.X"}}
				}
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

	refs := []string{"No.A", "Yes.B", "No.C", "Yes.D", strings.Repeat("x", maxReferenceLen+1)}
	r, err := invoke(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_AddItemBulk{AddItemBulk: &mxgatewayv1.AddItemBulkCommand{ServerHandle: 1, ItemDefinitions: refs}}})
	if err != nil {
		t.Fatal(err)
	}
	e := r.GetBulk().GetEntries()
	if r.GetStatus() != mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_BULK || len(e) != 5 {
		t.Fatalf("reply %v", r)
	}
	for i, want := range []struct {
		reason string
		handle int32
	}{{mxgatewayv1.ReasonReferenceForbidden, 0}, {"", 1}, {mxgatewayv1.ReasonReferenceForbidden, 0}, {"", 2}, {mxgatewayv1.ReasonInvalidRequest, 0}} {
		if e[i].GetDenial().GetReason() != want.reason || e[i].GetItemHandle() != want.handle || e[i].GetItemDefinition() != refs[i] {
			t.Errorf("entry %d = %v, want denial %q handle %d", i, e[i], want.reason, want.handle)
		}
	}
	mu.Lock()
	if len(seen) != 1 || !slices.Equal(seen[0].GetAddItemBulk().GetItemDefinitions(), []string{"Yes.B", "Yes.D"}) {
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

	// Every entry denied (an unknown handle; another registration): the
	// worker sees nothing.
	mu.Lock()
	before := len(seen)
	mu.Unlock()
	r, err = invoke(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_WriteBulk{WriteBulk: &mxgatewayv1.WriteBulkCommand{ServerHandle: 1, Entries: []*mxgatewayv1.WriteCommand{
		{ItemHandle: 9, Value: i32v(1)}, {ServerHandle: 5, ItemHandle: 2, Value: i32v(1)}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if e := r.GetBulk().GetEntries(); r.GetStatus() != mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_BULK || len(e) != 2 ||
		e[0].GetDenial().GetReason() != mxgatewayv1.ReasonReferenceForbidden || e[0].GetItemHandle() != 9 ||
		e[1].GetDenial().GetReason() != mxgatewayv1.ReasonInvalidRequest {
		t.Fatalf("all-denied write bulk %v", r)
	}
	mu.Lock()
	if len(seen) != before {
		t.Fatalf("the worker ran an all-denied bulk: %v", seen[before:])
	}
	mu.Unlock()

	// An approved write carries the item guard with what the mirror said.
	if _, err := invoke(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Write{Write: &mxgatewayv1.WriteCommand{ServerHandle: 1, ItemHandle: 2, Value: i32v(1)}}}); err != nil {
		t.Fatal(err)
	}
	w := g.worker(0)
	w.mu.Lock()
	last := w.guards[len(w.guards)-1]
	w.mu.Unlock()
	if it := last.GetItems(); len(it) != 1 || it[0].GetItemHandle() != 2 || it[0].GetItemDefinition() != "Yes.D" {
		t.Fatalf("guard %v, want handle 2 approved as Yes.D", last)
	}
	// The worker's guard refuses a single write: PERMISSION_DENIED, audited.
	refuse = true
	_, err = invoke(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Write{Write: &mxgatewayv1.WriteCommand{ServerHandle: 1, ItemHandle: 2, Value: i32v(1)}}})
	wantStatus(t, err, codes.PermissionDenied, mxgatewayv1.ReasonReferenceForbidden)
	if st, _ := status.FromError(err); !strings.Contains(st.Message(), "worker table says No.X") {
		t.Fatalf("status %v does not carry the worker's explanation", st)
	}
	// ...and bulk entries, in place.
	r, err = invoke(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_WriteBulk{WriteBulk: &mxgatewayv1.WriteBulkCommand{ServerHandle: 1, Entries: []*mxgatewayv1.WriteCommand{
		{ItemHandle: 2, Value: i32v(1)}}}}})
	if err != nil || r.GetBulk().GetEntries()[0].GetDenial() == nil {
		t.Fatalf("refused write bulk: %v %v", r, err)
	}
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if want := []string{"write: worker table says No.X", "write_bulk: worker table says No.X"}; !slices.Equal(fc.refused, want) {
		t.Fatalf("audited refusals %q, want %q", fc.refused, want)
	}
}
