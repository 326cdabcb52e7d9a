package auth

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/catalog"
	mxgatewayv1grpc "github.com/mxgateway/mxgateway/api/mxgateway/v1/mxgatewayv1grpc"
	"github.com/mxgateway/mxgateway/internal/store"
)

// fakeGateway stands in for internal/gateway: it wires the Guard the way
// the real gateway must (ownership on every session call, CheckCommand
// before the worker, per-entry denials in bulk replies).
type fakeGateway struct {
	mxgatewayv1grpc.UnimplementedGatewayServer
	g *Guard

	mu      sync.Mutex
	next    int
	owners  map[string]string           // session id → owner key id
	handles map[string]map[int32]string // session id → item handle → reference
}

func (f *fakeGateway) OpenSession(ctx context.Context, _ *mxgatewayv1.OpenSessionRequest) (*mxgatewayv1.OpenSessionResponse, error) {
	p, ok := FromContext(ctx)
	if !ok {
		return nil, status.Error(codes.Internal, "no principal on context")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next++
	id := fmt.Sprintf("s%d", f.next)
	f.owners[id] = p.KeyID
	f.handles[id] = map[int32]string{}
	return &mxgatewayv1.OpenSessionResponse{SessionId: id}, nil
}

func (f *fakeGateway) session(ctx context.Context, id string) error {
	f.mu.Lock()
	owner, ok := f.owners[id]
	f.mu.Unlock()
	if !ok {
		return status.Error(codes.NotFound, "no session")
	}
	return f.g.CheckSession(ctx, id, owner)
}

func (f *fakeGateway) CloseSession(ctx context.Context, req *mxgatewayv1.CloseSessionRequest) (*mxgatewayv1.CloseSessionResponse, error) {
	if err := f.session(ctx, req.GetSessionId()); err != nil {
		return nil, err
	}
	return &mxgatewayv1.CloseSessionResponse{}, nil
}

func (f *fakeGateway) ListSessions(ctx context.Context, _ *mxgatewayv1.ListSessionsRequest) (*mxgatewayv1.ListSessionsResponse, error) {
	p, _ := FromContext(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	resp := &mxgatewayv1.ListSessionsResponse{}
	for id, owner := range f.owners {
		if CanAccessSession(p, owner) {
			resp.Sessions = append(resp.Sessions, &mxgatewayv1.SessionInfo{SessionId: id, OwnerKeyId: owner})
		}
	}
	return resp, nil
}

func (f *fakeGateway) StreamEvents(req *mxgatewayv1.StreamEventsRequest, ss grpc.ServerStreamingServer[mxgatewayv1.StreamEventsResponse]) error {
	if _, ok := FromContext(ss.Context()); !ok {
		return status.Error(codes.Internal, "no principal on stream context")
	}
	if err := f.session(ss.Context(), req.GetSessionId()); err != nil {
		return err
	}
	return ss.Send(&mxgatewayv1.StreamEventsResponse{})
}

func (f *fakeGateway) Invoke(ctx context.Context, req *mxgatewayv1.InvokeRequest) (*mxgatewayv1.InvokeResponse, error) {
	id := req.GetSessionId()
	if err := f.session(ctx, id); err != nil {
		return nil, err
	}
	refOf := func(_, h int32) (string, bool) {
		f.mu.Lock()
		defer f.mu.Unlock()
		r, ok := f.handles[id][h]
		return r, ok
	}
	dec, err := f.g.CheckCommand(ctx, id, req.GetCommand(), refOf)
	denials := dec.Denials
	if err != nil {
		return nil, err
	}
	reply := &mxgatewayv1.Reply{Status: mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK}
	switch k := req.GetCommand().GetKind().(type) {
	case *mxgatewayv1.Command_AddItem:
		h := f.bind(id, k.AddItem.GetItemDefinition())
		reply.Result = &mxgatewayv1.Reply_ItemHandle{ItemHandle: &mxgatewayv1.ItemHandleResult{ItemHandle: h}}
	case *mxgatewayv1.Command_SubscribeBulk:
		bulk := &mxgatewayv1.BulkResult{}
		for i, ref := range k.SubscribeBulk.GetItemDefinitions() {
			e := &mxgatewayv1.BulkEntryResult{ItemDefinition: ref}
			if d := denials[i]; d != nil {
				e.Denial = d
			} else {
				e.ItemHandle = f.bind(id, ref)
				e.Status = mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK
			}
			bulk.Entries = append(bulk.Entries, e)
		}
		reply.Status = mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_BULK
		reply.Result = &mxgatewayv1.Reply_Bulk{Bulk: bulk}
	}
	return &mxgatewayv1.InvokeResponse{Reply: reply}, nil
}

func (f *fakeGateway) bind(session, ref string) int32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	h := int32(len(f.handles[session]) + 1)
	f.handles[session][h] = ref
	return h
}

// harness is a gRPC server with the Guard's interceptors on bufconn.
type harness struct {
	*env
	guard   *Guard
	conn    *grpc.ClientConn
	gw      mxgatewayv1grpc.GatewayClient
	admin   mxgatewayv1grpc.AdminClient
	denials atomic.Int64
}

func newHarness(t *testing.T, mode Mode) *harness {
	t.Helper()
	e := newEnv(t)
	h := &harness{env: e}
	g, err := NewGuard(GuardConfig{Mode: mode, Manager: e.mgr, Now: e.clock.now,
		OnDenied: func(string) { h.denials.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	h.guard = g
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(g.UnaryInterceptor()), grpc.ChainStreamInterceptor(g.StreamInterceptor()))
	mxgatewayv1grpc.RegisterGatewayServer(srv, &fakeGateway{g: g, owners: map[string]string{}, handles: map[string]map[int32]string{}})
	mxgatewayv1grpc.RegisterAdminServer(srv, NewAdminServer(e.mgr))
	mxgatewayv1grpc.RegisterGalaxyServer(srv, mxgatewayv1grpc.UnimplementedGalaxyServer{})
	mxgatewayv1grpc.RegisterAlarmsServer(srv, mxgatewayv1grpc.UnimplementedAlarmsServer{})
	hs := health.NewServer()
	grpc_health_v1.RegisterHealthServer(srv, hs)
	reflection.Register(srv)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		hs.Shutdown()
		srv.Stop()
		<-done
	})
	h.conn = conn
	h.gw = mxgatewayv1grpc.NewGatewayClient(conn)
	h.admin = mxgatewayv1grpc.NewAdminClient(conn)
	return h
}

func withKey(raw RawKey) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+raw.Reveal())
}

func withRaw(header, value string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), header, value)
}

// wantCode checks err's code and, for auth failures, the ErrorInfo.
func wantCode(t *testing.T, err error, code codes.Code, reason string) *status.Status {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != code {
		t.Fatalf("code = %v (%s), want %v", st.Code(), st.Message(), code)
	}
	if reason != "" {
		var info *errdetails.ErrorInfo
		for _, d := range st.Details() {
			if i, ok := d.(*errdetails.ErrorInfo); ok {
				info = i
			}
		}
		if info == nil || info.GetReason() != reason || info.GetDomain() != mxgatewayv1.ErrorDomain {
			t.Fatalf("ErrorInfo = %v, want reason %s in domain %s", info, reason, mxgatewayv1.ErrorDomain)
		}
	}
	return st
}

func TestAuthentication(t *testing.T) {
	h := newHarness(t, ModeAPIKey)
	raw, k := h.mustCreate(t, "client", Constraints{}, ScopeSessionOpen)
	cred, _ := ParseKey(raw.Reveal())
	other, _, _ := validKey(t)
	oc, _ := ParseKey(other.Reveal())
	open := func(ctx context.Context) error {
		_, err := h.gw.OpenSession(ctx, &mxgatewayv1.OpenSessionRequest{})
		return err
	}

	t.Run("health needs no key", func(t *testing.T) {
		resp, err := grpc_health_v1.NewHealthClient(h.conn).Check(context.Background(), &grpc_health_v1.HealthCheckRequest{})
		if err != nil || resp.GetStatus() != grpc_health_v1.HealthCheckResponse_SERVING {
			t.Fatalf("health: %v %v", resp, err)
		}
	})
	t.Run("no key", func(t *testing.T) {
		wantCode(t, open(context.Background()), codes.Unauthenticated, mxgatewayv1.ReasonUnauthenticated)
	})
	t.Run("malformed key", func(t *testing.T) {
		wantCode(t, open(withRaw("authorization", "Bearer mxgw_nope")), codes.Unauthenticated, mxgatewayv1.ReasonUnauthenticated)
		wantCode(t, open(withRaw("authorization", "Basic "+raw.Reveal())), codes.Unauthenticated, mxgatewayv1.ReasonUnauthenticated)
	})
	t.Run("unknown id and wrong secret look the same", func(t *testing.T) {
		unknown := wantCode(t, open(withKey(FormatKey(oc.ID, cred.secret))), codes.Unauthenticated, mxgatewayv1.ReasonUnauthenticated)
		wrong := wantCode(t, open(withKey(FormatKey(cred.ID, oc.secret))), codes.Unauthenticated, mxgatewayv1.ReasonUnauthenticated)
		if unknown.Message() != wrong.Message() {
			t.Fatalf("messages differ: %q vs %q", unknown.Message(), wrong.Message())
		}
	})
	t.Run("valid key, both headers", func(t *testing.T) {
		for _, ctx := range []context.Context{withKey(raw), withRaw("x-api-key", raw.Reveal()), withRaw("authorization", "bearer "+raw.Reveal())} {
			if err := open(ctx); err != nil {
				t.Fatal(err)
			}
		}
	})
	t.Run("two different keys", func(t *testing.T) {
		ctx := metadata.AppendToOutgoingContext(withKey(raw), "x-api-key", other.Reveal())
		wantCode(t, open(ctx), codes.Unauthenticated, mxgatewayv1.ReasonUnauthenticated)
	})
	t.Run("rotated: old fails, new works", func(t *testing.T) {
		newRaw, _, err := h.mgr.RotateKey(context.Background(), k.ID, Actor{KeyID: CLIActor})
		if err != nil {
			t.Fatal(err)
		}
		wantCode(t, open(withKey(raw)), codes.Unauthenticated, mxgatewayv1.ReasonUnauthenticated)
		if err := open(withKey(newRaw)); err != nil {
			t.Fatal(err)
		}
		t.Run("revoked", func(t *testing.T) {
			nc, _ := ParseKey(newRaw.Reveal())
			if _, err := h.mgr.RevokeKey(context.Background(), nc.ID, Actor{KeyID: CLIActor}); err != nil {
				t.Fatal(err)
			}
			wantCode(t, open(withKey(newRaw)), codes.Unauthenticated, mxgatewayv1.ReasonUnauthenticated)
		})
	})
	t.Run("stream", func(t *testing.T) {
		s, err := h.gw.StreamEvents(context.Background(), &mxgatewayv1.StreamEventsRequest{SessionId: "s1"})
		if err == nil {
			_, err = s.Recv()
		}
		wantCode(t, err, codes.Unauthenticated, mxgatewayv1.ReasonUnauthenticated)
	})
	t.Run("reflection needs a key", func(t *testing.T) {
		for _, tc := range []struct {
			ctx  context.Context
			code codes.Code
		}{{context.Background(), codes.Unauthenticated}, {withKey(mustKey(t, h, ScopeSessionOpen)), codes.OK}} {
			s, err := reflectionv1.NewServerReflectionClient(h.conn).ServerReflectionInfo(tc.ctx)
			if err == nil {
				// A Send error (io.EOF) only says the stream ended; Recv
				// returns the status.
				_ = s.Send(&reflectionv1.ServerReflectionRequest{MessageRequest: &reflectionv1.ServerReflectionRequest_ListServices{}})
				_, err = s.Recv()
			}
			if status.Code(err) != tc.code {
				t.Fatalf("reflection: %v, want %v", err, tc.code)
			}
		}
	})
}

func mustKey(t *testing.T, h *harness, scopes ...Scope) RawKey {
	t.Helper()
	raw, _ := h.mustCreate(t, "k", Constraints{}, scopes...)
	return raw
}

// call invokes any unary or server-streaming method generically with an
// empty (or given) request and returns the resulting error.
func call(ctx context.Context, conn *grpc.ClientConn, fullMethod string, req proto.Message) error {
	svc, method, _ := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(svc))
	if err != nil {
		return err
	}
	md := d.(protoreflect.ServiceDescriptor).Methods().ByName(protoreflect.Name(method))
	if req == nil {
		mt, err := protoregistry.GlobalTypes.FindMessageByName(md.Input().FullName())
		if err != nil {
			return err
		}
		req = mt.New().Interface()
	}
	rt, err := protoregistry.GlobalTypes.FindMessageByName(md.Output().FullName())
	if err != nil {
		return err
	}
	resp := rt.New().Interface()
	if !md.IsStreamingServer() {
		return conn.Invoke(ctx, fullMethod, req, resp)
	}
	s, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, fullMethod)
	if err != nil {
		return err
	}
	if err := s.SendMsg(req); err != nil {
		return err
	}
	if err := s.CloseSend(); err != nil {
		return err
	}
	return s.RecvMsg(resp)
}

func allBut(s Scope) []Scope {
	var out []Scope
	for _, x := range AllScopes {
		if x != s && x != ScopeAdmin {
			out = append(out, x)
		}
	}
	return out
}

// Every RPC is refused to a key holding every scope but the one it needs,
// and passes the interceptor with just that scope.
func TestScopeDenialPerRPC(t *testing.T) {
	h := newHarness(t, ModeAPIKey)
	for _, row := range ScopeTable() {
		if row.Exempt || row.Command != "" || row.Scope == "" || strings.HasSuffix(row.Method, "/") || strings.Contains(row.Method, "reflection") {
			continue
		}
		t.Run(row.Method, func(t *testing.T) {
			lacking := mustKey(t, h, allBut(row.Scope)...)
			if row.Scope == ScopeAdmin {
				lacking = mustKey(t, h, allBut("")...)
			}
			wantCode(t, call(withKey(lacking), h.conn, row.Method, nil), codes.PermissionDenied, mxgatewayv1.ReasonPermissionDenied)
			err := call(withKey(mustKey(t, h, row.Scope)), h.conn, row.Method, nil)
			if c := status.Code(err); c == codes.PermissionDenied || c == codes.Unauthenticated || c == codes.Internal {
				t.Fatalf("with scope %s: %v", row.Scope, err)
			}
		})
	}
}

// Every Invoke command kind is refused without its scope and passes with it.
func TestScopeDenialPerCommandKind(t *testing.T) {
	h := newHarness(t, ModeAPIKey)
	od := (&mxgatewayv1.Command{}).ProtoReflect().Descriptor().Oneofs().ByName("kind")
	for i := range od.Fields().Len() {
		f := od.Fields().Get(i)
		scope, _ := CommandScope(catalog.ByName(string(f.Name())))
		t.Run(string(f.Name()), func(t *testing.T) {
			cmd := &mxgatewayv1.Command{}
			m := cmd.ProtoReflect()
			m.Set(f, protoreflect.ValueOfMessage(m.NewField(f).Message()))
			for _, tc := range []struct {
				scopes []Scope
				denied bool
			}{{allBut(scope), true}, {[]Scope{ScopeSessionOpen, scope}, false}, {[]Scope{ScopeAdmin}, false}} {
				key := mustKey(t, h, tc.scopes...)
				s, err := h.gw.OpenSession(withKey(key), &mxgatewayv1.OpenSessionRequest{})
				if err != nil {
					t.Fatal(err)
				}
				_, err = h.gw.Invoke(withKey(key), &mxgatewayv1.InvokeRequest{SessionId: s.GetSessionId(), Command: cmd})
				if tc.denied {
					wantCode(t, err, codes.PermissionDenied, mxgatewayv1.ReasonPermissionDenied)
				} else if err != nil {
					t.Fatalf("scopes %v: %v", tc.scopes, err)
				}
			}
		})
	}
	t.Run("no command", func(t *testing.T) {
		key := mustKey(t, h, ScopeAdmin)
		_, err := h.gw.Invoke(withKey(key), &mxgatewayv1.InvokeRequest{SessionId: "s1"})
		wantCode(t, err, codes.InvalidArgument, mxgatewayv1.ReasonInvalidRequest)
	})
}

func TestSessionOwnership(t *testing.T) {
	h := newHarness(t, ModeAPIKey)
	all := []Scope{ScopeSessionOpen, ScopeSessionClose, ScopeInvokeRead, ScopeEventsRead}
	a := mustKey(t, h, all...)
	b := mustKey(t, h, all...)
	admin := mustKey(t, h, ScopeAdmin)
	s, err := h.gw.OpenSession(withKey(a), &mxgatewayv1.OpenSessionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	id := s.GetSessionId()
	reg := &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Register{Register: &mxgatewayv1.RegisterCommand{}}}
	stream := func(ctx context.Context) error {
		return call(ctx, h.conn, mxgatewayv1grpc.Gateway_StreamEvents_FullMethodName, &mxgatewayv1.StreamEventsRequest{SessionId: id})
	}
	// Another key: invoke, stream and close are all refused.
	_, err = h.gw.Invoke(withKey(b), &mxgatewayv1.InvokeRequest{SessionId: id, Command: reg})
	wantCode(t, err, codes.PermissionDenied, mxgatewayv1.ReasonNotSessionOwner)
	wantCode(t, stream(withKey(b)), codes.PermissionDenied, mxgatewayv1.ReasonNotSessionOwner)
	_, err = h.gw.CloseSession(withKey(b), &mxgatewayv1.CloseSessionRequest{SessionId: id})
	wantCode(t, err, codes.PermissionDenied, mxgatewayv1.ReasonNotSessionOwner)
	if l, _ := h.gw.ListSessions(withKey(b), &mxgatewayv1.ListSessionsRequest{}); len(l.GetSessions()) != 0 {
		t.Fatal("another key lists the session")
	}
	// The owner and an admin may.
	for _, k := range []RawKey{a, admin} {
		if _, err := h.gw.Invoke(withKey(k), &mxgatewayv1.InvokeRequest{SessionId: id, Command: reg}); err != nil {
			t.Fatal(err)
		}
		if err := stream(withKey(k)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.gw.CloseSession(withKey(a), &mxgatewayv1.CloseSessionRequest{SessionId: id}); err != nil {
		t.Fatal(err)
	}
}

func TestConstraintDenialPerBulkEntry(t *testing.T) {
	h := newHarness(t, ModeAPIKey)
	key, _ := h.mustCreate(t, "limited", Constraints{AllowRead: []string{"Tank1.*"}, AllowWrite: []string{"Tank1.SP"}},
		ScopeSessionOpen, ScopeInvokeRead, ScopeInvokeWrite)
	ctx := withKey(key)
	s, err := h.gw.OpenSession(ctx, &mxgatewayv1.OpenSessionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	id := s.GetSessionId()
	refs := []string{"Tank1.PV", "Boiler.PV", "TANK1.SP", "Secret"}
	resp, err := h.gw.Invoke(ctx, &mxgatewayv1.InvokeRequest{SessionId: id, Command: &mxgatewayv1.Command{
		Kind: &mxgatewayv1.Command_SubscribeBulk{SubscribeBulk: &mxgatewayv1.SubscribeBulkCommand{ItemDefinitions: refs}}}})
	if err != nil {
		t.Fatalf("bulk with a denied entry failed as a whole: %v", err)
	}
	entries := resp.GetReply().GetBulk().GetEntries()
	if len(entries) != len(refs) {
		t.Fatalf("%d entries", len(entries))
	}
	for i, e := range entries {
		denied := e.GetDenial() != nil
		if want := i == 1 || i == 3; denied != want || (denied && e.GetDenial().GetReason() != mxgatewayv1.ReasonReferenceForbidden) {
			t.Errorf("entry %d (%s): denial %v", i, refs[i], e.GetDenial())
		}
	}
	// A single AddItem outside the patterns fails the call.
	_, err = h.gw.Invoke(ctx, &mxgatewayv1.InvokeRequest{SessionId: id, Command: &mxgatewayv1.Command{
		Kind: &mxgatewayv1.Command_AddItem{AddItem: &mxgatewayv1.AddItemCommand{ItemDefinition: "Boiler.PV"}}}})
	wantCode(t, err, codes.PermissionDenied, mxgatewayv1.ReasonReferenceForbidden)
	// Writes go by handle: Tank1.PV (handle 1) is readable, not writable;
	// TANK1.SP (handle 2) is writable.
	gw := h.gw
	w := func(handle int32) error {
		_, err := gw.Invoke(ctx, &mxgatewayv1.InvokeRequest{SessionId: id, Command: &mxgatewayv1.Command{
			Kind: &mxgatewayv1.Command_Write{Write: &mxgatewayv1.WriteCommand{ItemHandle: handle}}}})
		return err
	}
	wantCode(t, w(entries[0].GetItemHandle()), codes.PermissionDenied, mxgatewayv1.ReasonReferenceForbidden)
	if err := w(entries[2].GetItemHandle()); err != nil {
		t.Fatalf("allowed write: %v", err)
	}
	wantCode(t, w(999), codes.PermissionDenied, mxgatewayv1.ReasonReferenceForbidden)
}

func TestDenialsAreAuditedAndRateLimited(t *testing.T) {
	h := newHarness(t, ModeAPIKey)
	ctx := context.Background()
	before, _ := h.store.CountAudit(ctx)
	const calls = 300
	for range calls {
		_, err := h.gw.OpenSession(withRaw("authorization", "Bearer mxgw_bad"), &mxgatewayv1.OpenSessionRequest{})
		wantCode(t, err, codes.Unauthenticated, "")
	}
	if got := h.denials.Load(); got != calls {
		t.Fatalf("OnDenied called %d times, want %d", got, calls)
	}
	after, _ := h.store.CountAudit(ctx)
	// The clock is frozen, so no bucket refills: exactly the per-source burst
	// is audited.
	if n := after - before; n != DefaultAuditBurst {
		t.Fatalf("%d denials audited, want %d", n, DefaultAuditBurst)
	}
	evs, _ := h.store.ListAudit(ctx, store.AuditFilter{Limit: 1})
	if evs[0].Outcome != store.OutcomeDenied || evs[0].Action != mxgatewayv1grpc.Gateway_OpenSession_FullMethodName || evs[0].RemoteAddr == "" {
		t.Fatalf("audit row = %+v", evs[0])
	}
	// Time passes: the source may be audited again, and the row reports what
	// was suppressed.
	h.clock.t = h.clock.t.Add(3600e9)
	_, _ = h.gw.OpenSession(withRaw("authorization", "Bearer mxgw_bad"), &mxgatewayv1.OpenSessionRequest{})
	evs, _ = h.store.ListAudit(ctx, store.AuditFilter{Limit: 1})
	if !strings.Contains(evs[0].Detail, fmt.Sprintf("%d earlier denials", calls-DefaultAuditBurst)) {
		t.Fatalf("detail %q does not report suppressed denials", evs[0].Detail)
	}
}

func TestAuthNone(t *testing.T) {
	h := newHarness(t, ModeNone)
	s, err := h.gw.OpenSession(context.Background(), &mxgatewayv1.OpenSessionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := h.gw.ListSessions(context.Background(), &mxgatewayv1.ListSessionsRequest{})
	if err != nil || len(l.GetSessions()) != 1 || l.GetSessions()[0].GetOwnerKeyId() != AnonymousKeyID || l.GetSessions()[0].GetSessionId() != s.GetSessionId() {
		t.Fatalf("ListSessions = %v, %v", l, err)
	}
	if _, err := h.admin.ListApiKeys(context.Background(), &mxgatewayv1.ListApiKeysRequest{}); err != nil {
		t.Fatal(err)
	}
}

func TestAdminService(t *testing.T) {
	h := newHarness(t, ModeAPIKey)
	admin := mustKey(t, h, ScopeAdmin)
	ctx := withKey(admin)
	resp, err := h.admin.CreateApiKey(ctx, &mxgatewayv1.CreateApiKeyRequest{Name: "remote", Scopes: []string{"invoke:read", "session:open"}, AllowRead: []string{"A.*"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseKey(resp.GetRawKey()); err != nil {
		t.Fatalf("raw key: %v", err)
	}
	newKey := RawKey(resp.GetRawKey())
	if _, err := h.gw.OpenSession(withKey(newKey), &mxgatewayv1.OpenSessionRequest{}); err != nil {
		t.Fatalf("created key does not work: %v", err)
	}
	// The created key is not admin.
	_, err = h.admin.ListApiKeys(withKey(newKey), &mxgatewayv1.ListApiKeysRequest{})
	wantCode(t, err, codes.PermissionDenied, mxgatewayv1.ReasonPermissionDenied)

	list, err := h.admin.ListApiKeys(ctx, &mxgatewayv1.ListApiKeysRequest{})
	if err != nil || len(list.GetKeys()) != 2 {
		t.Fatalf("list: %v %v", list, err)
	}
	b, _ := proto.Marshal(list)
	if strings.Contains(string(b), resp.GetRawKey()[len(KeyPrefix)+KeyIDLen+1:]) {
		t.Fatal("list carries a secret")
	}
	rot, err := h.admin.RotateApiKey(ctx, &mxgatewayv1.RotateApiKeyRequest{Id: resp.GetKey().GetId()})
	if err != nil || rot.GetKey().GetRotatedFrom() != resp.GetKey().GetId() {
		t.Fatalf("rotate: %v %v", rot, err)
	}
	rev, err := h.admin.RevokeApiKey(ctx, &mxgatewayv1.RevokeApiKeyRequest{Id: rot.GetKey().GetId()})
	if err != nil || rev.GetAlreadyRevoked() || rev.GetKey().GetRevokedAt() == nil {
		t.Fatalf("revoke: %v %v", rev, err)
	}
	rev, err = h.admin.RevokeApiKey(ctx, &mxgatewayv1.RevokeApiKeyRequest{Id: rot.GetKey().GetId()})
	if err != nil || !rev.GetAlreadyRevoked() {
		t.Fatalf("second revoke: %v %v", rev, err)
	}
	_, err = h.admin.RevokeApiKey(ctx, &mxgatewayv1.RevokeApiKeyRequest{Id: "aaaaaaaaaaaaaaaa"})
	wantCode(t, err, codes.NotFound, ReasonAPIKeyNotFound)
	_, err = h.admin.CreateApiKey(ctx, &mxgatewayv1.CreateApiKeyRequest{Name: "x", Scopes: []string{"root"}})
	wantCode(t, err, codes.InvalidArgument, mxgatewayv1.ReasonInvalidRequest)

	evs, err := h.admin.ListAuditEvents(ctx, &mxgatewayv1.ListAuditEventsRequest{Action: ActionCreate, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	adminID, _ := ParseKey(admin.Reveal())
	found := false
	for _, e := range evs.GetEvents() {
		found = found || (e.GetActorKeyId() == adminID.ID && e.GetTarget() == resp.GetKey().GetId() && e.GetRemoteAddr() != "")
	}
	if !found {
		t.Fatalf("remote create not audited with its actor: %v", evs)
	}
}

func TestParseMode(t *testing.T) {
	for in, want := range map[string]Mode{"": ModeAPIKey, "apikey": ModeAPIKey, "API-KEY": ModeAPIKey, "none": ModeNone} {
		if got, err := ParseMode(in); err != nil || got != want {
			t.Errorf("ParseMode(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseMode("tls"); err == nil {
		t.Error("unknown mode accepted")
	}
}
