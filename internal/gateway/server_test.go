package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	mxgatewayv1grpc "github.com/mxgateway/mxgateway/api/mxgateway/v1/mxgatewayv1grpc"
	workerv1 "github.com/mxgateway/mxgateway/api/mxgateway/worker/v1"
	"github.com/mxgateway/mxgateway/internal/itemtable"
	"github.com/mxgateway/mxgateway/internal/protocol"
	"github.com/mxgateway/mxgateway/internal/session"
	"github.com/mxgateway/mxgateway/internal/testutil"
	"github.com/mxgateway/mxgateway/internal/workerclient"
)

func TestMain(m *testing.M) { testutil.VerifyNoLeaks(m) }

// fakeWorker answers commands from a function and emits test events.
type fakeWorker struct {
	events chan *mxgatewayv1.Event
	done   chan struct{}
	once   sync.Once
	mu     sync.Mutex
	err    error
	guards []*workerv1.ItemGuard
	items  *itemtable.Table // applies every reply, as workerclient does
	invoke func(ctx context.Context, cmd *mxgatewayv1.Command) (*mxgatewayv1.Reply, error)
}

func newFakeWorker() *fakeWorker {
	return &fakeWorker{events: make(chan *mxgatewayv1.Event, 64), done: make(chan struct{}), items: itemtable.New()}
}

func (w *fakeWorker) Items() *itemtable.Table { return w.items }
func (w *fakeWorker) Unanswered() int         { return 0 }

func (w *fakeWorker) PID() int { return 4242 }
func (w *fakeWorker) Backend() *mxgatewayv1.BackendInfo {
	return &mxgatewayv1.BackendInfo{Kind: "sim", Simulated: true, ModelName: "demo"}
}
func (w *fakeWorker) Invoke(ctx context.Context, cmd *mxgatewayv1.Command, guard *workerv1.ItemGuard, _ time.Duration) (*mxgatewayv1.Reply, error) {
	select {
	case <-w.done:
		return nil, w.Err()
	default:
	}
	w.mu.Lock()
	w.guards = append(w.guards, guard)
	w.mu.Unlock()
	if w.invoke != nil {
		r, err := w.invoke(ctx, cmd)
		if err == nil {
			w.items.Apply(cmd, r)
		}
		return r, err
	}
	return &mxgatewayv1.Reply{Status: mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK,
		Result: &mxgatewayv1.Reply_Register{Register: &mxgatewayv1.RegisterResult{ServerHandle: 1}}}, nil
}
func (w *fakeWorker) NextEvents(dst []*protocol.Event) ([]*protocol.Event, bool) {
	ev, ok := <-w.events
	if !ok {
		return dst, false
	}
	dst = append(dst, wireEvent(ev))
	for {
		select {
		case ev, ok := <-w.events:
			if !ok {
				return dst, true // the next call reports the end
			}
			dst = append(dst, wireEvent(ev))
		default:
			return dst, true
		}
	}
}

// wireEvent is ev as the worker client hands it over: encoded, as it
// crossed the pipe, with room after it for the session's fields.
func wireEvent(ev *mxgatewayv1.Event) *protocol.Event {
	b, err := proto.Marshal(ev)
	if err != nil {
		panic(err)
	}
	b = append(make([]byte, 0, len(b)+protocol.EncodedRoom(64)), b...)
	e, err := protocol.DecodeEventInPlace(b, len(b))
	if err != nil {
		panic(err)
	}
	return e
}

func (w *fakeWorker) Done() <-chan struct{} { return w.done }
func (w *fakeWorker) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}
func (w *fakeWorker) Shutdown(ctx context.Context) ([]string, error) { w.finish(nil); return nil, nil }
func (w *fakeWorker) Kill(protocol.KillReason)                       { w.finish(workerclient.ErrKilled) }
func (w *fakeWorker) finish(err error) {
	w.once.Do(func() {
		w.mu.Lock()
		w.err = err
		w.mu.Unlock()
		close(w.events)
		close(w.done)
	})
}

type testGateway struct {
	srv     *Server
	client  mxgatewayv1grpc.GatewayClient
	conn    *grpc.ClientConn
	mu      sync.Mutex
	workers []*fakeWorker
	prepare func(*fakeWorker)
}

func (g *testGateway) worker(i int) *fakeWorker {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.workers[i]
}

func startGateway(t testing.TB, opts Options, sopts session.Options, dial ...grpc.DialOption) *testGateway {
	t.Helper()
	g := &testGateway{}
	sopts.Launch = func(ctx context.Context, id string) (session.Worker, error) {
		w := newFakeWorker()
		if g.prepare != nil {
			g.prepare(w)
		}
		g.mu.Lock()
		g.workers = append(g.workers, w)
		g.mu.Unlock()
		return w, nil
	}
	m, err := session.New(sopts)
	if err != nil {
		t.Fatal(err)
	}
	opts.Sessions = m
	srv, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	lis := bufconn.Listen(1 << 20)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	conn, err := grpc.NewClient("passthrough:///bufnet", append([]grpc.DialOption{
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials())}, dial...)...)
	if err != nil {
		t.Fatal(err)
	}
	g.srv, g.conn, g.client = srv, conn, mxgatewayv1grpc.NewGatewayClient(conn)
	t.Cleanup(func() {
		conn.Close()
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve = %v, want ErrServerClosed", err)
		}
	})
	return g
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func wantStatus(t *testing.T, err error, code codes.Code, reason string) {
	t.Helper()
	if status.Code(err) != code {
		t.Fatalf("got %v, want code %v", err, code)
	}
	if reason != "" {
		if got := reasonOf(t, err); got != reason {
			t.Fatalf("reason %q, want %q (%v)", got, reason, err)
		}
	}
}

func TestGatewayLifecycle(t *testing.T) {
	g := startGateway(t, Options{}, session.Options{})
	ctx := ctxT(t)
	open, err := g.client.OpenSession(ctx, &mxgatewayv1.OpenSessionRequest{ClientName: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if open.GetSessionId() == "" || open.GetWorkerPid() != 4242 || open.GetApiVersion() != 1 ||
		open.GetWorkerProtocolVersion() != protocol.Version || !open.GetBackend().GetSimulated() || !open.GetLeaseExpiresAt().AsTime().After(time.Now()) {
		t.Fatalf("OpenSession = %v", open)
	}
	id := open.GetSessionId()
	resp, err := g.client.Invoke(ctx, &mxgatewayv1.InvokeRequest{SessionId: id, Command: validCommands()["register"]})
	if err != nil || resp.GetReply().GetRegister().GetServerHandle() != 1 {
		t.Fatalf("Invoke = %v, %v", resp, err)
	}

	stream, err := g.client.StreamEvents(ctx, &mxgatewayv1.StreamEventsRequest{SessionId: id})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Header(); err != nil {
		t.Fatal(err)
	}
	w := g.worker(0)
	w.events <- &mxgatewayv1.Event{Sequence: 1, Family: mxgatewayv1.EventFamily_EVENT_FAMILY_ON_DATA_CHANGE}
	ev, err := stream.Recv()
	if err != nil || ev.GetEvent().GetSequence() != 1 || ev.GetEvent().GetSessionId() != id {
		t.Fatalf("Recv = %v, %v", ev, err)
	}

	list, err := g.client.ListSessions(ctx, &mxgatewayv1.ListSessionsRequest{})
	if err != nil || len(list.GetSessions()) != 1 {
		t.Fatalf("ListSessions = %v, %v", list, err)
	}
	info := list.GetSessions()[0]
	if info.GetSessionId() != id || info.GetState() != mxgatewayv1.SessionState_SESSION_STATE_READY || info.GetSubscribers() != 1 ||
		info.GetLastSequence() != 1 || info.GetCommandsCompleted() != 1 || info.GetClientName() != "t" {
		t.Fatalf("SessionInfo = %v", info)
	}

	closed, err := g.client.CloseSession(ctx, &mxgatewayv1.CloseSessionRequest{SessionId: id})
	if err != nil || closed.GetAlreadyClosed() || closed.GetState() != mxgatewayv1.SessionState_SESSION_STATE_CLOSED {
		t.Fatalf("CloseSession = %v, %v", closed, err)
	}
	// The stream of a closed session ends cleanly.
	if _, err := stream.Recv(); err != io.EOF {
		t.Fatalf("Recv after close = %v, want EOF", err)
	}
	closed, err = g.client.CloseSession(ctx, &mxgatewayv1.CloseSessionRequest{SessionId: id})
	if err != nil || !closed.GetAlreadyClosed() {
		t.Fatalf("second CloseSession = %v, %v", closed, err)
	}
	_, err = g.client.Invoke(ctx, &mxgatewayv1.InvokeRequest{SessionId: id, Command: validCommands()["register"]})
	wantStatus(t, err, codes.NotFound, mxgatewayv1.ReasonSessionNotFound)
}

func TestGatewayErrors(t *testing.T) {
	g := startGateway(t, Options{MaxMessageBytes: 64 << 10}, session.Options{MaxSessions: 1})
	ctx := ctxT(t)
	_, err := g.client.Invoke(ctx, &mxgatewayv1.InvokeRequest{SessionId: "nope", Command: validCommands()["register"]})
	wantStatus(t, err, codes.NotFound, mxgatewayv1.ReasonSessionNotFound)
	_, err = g.client.CloseSession(ctx, &mxgatewayv1.CloseSessionRequest{SessionId: "nope"})
	wantStatus(t, err, codes.NotFound, mxgatewayv1.ReasonSessionNotFound)
	_, err = g.client.Invoke(ctx, &mxgatewayv1.InvokeRequest{SessionId: "nope", Command: &mxgatewayv1.Command{}})
	wantStatus(t, err, codes.InvalidArgument, mxgatewayv1.ReasonInvalidRequest)

	open, err := g.client.OpenSession(ctx, &mxgatewayv1.OpenSessionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = g.client.OpenSession(ctx, &mxgatewayv1.OpenSessionRequest{})
	wantStatus(t, err, codes.ResourceExhausted, mxgatewayv1.ReasonSessionLimit)

	refs := make([]string, 2000)
	for i := range refs {
		refs[i] = "SomeRatherLongObjectName_000000000000.SomeAttribute"
	}
	_, err = g.client.Invoke(ctx, &mxgatewayv1.InvokeRequest{SessionId: open.GetSessionId(), Command: &mxgatewayv1.Command{
		Kind: &mxgatewayv1.Command_ReadBulk{ReadBulk: &mxgatewayv1.ReadBulkCommand{ServerHandle: 1, ItemDefinitions: refs}}}})
	wantStatus(t, err, codes.ResourceExhausted, "")

	_, err = g.client.StreamEvents(ctx, &mxgatewayv1.StreamEventsRequest{SessionId: open.GetSessionId(), AfterSequence: 5})
	if err == nil {
		s, _ := g.client.StreamEvents(ctx, &mxgatewayv1.StreamEventsRequest{SessionId: open.GetSessionId(), AfterSequence: 5})
		_, err = s.Recv()
	}
	wantStatus(t, err, codes.InvalidArgument, mxgatewayv1.ReasonInvalidRequest)
}

func TestGatewayFaultEndsStreamUnavailable(t *testing.T) {
	g := startGateway(t, Options{}, session.Options{})
	ctx := ctxT(t)
	open, err := g.client.OpenSession(ctx, &mxgatewayv1.OpenSessionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	stream, err := g.client.StreamEvents(ctx, &mxgatewayv1.StreamEventsRequest{SessionId: open.GetSessionId()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Header(); err != nil {
		t.Fatal(err)
	}
	w := g.worker(0)
	w.events <- &mxgatewayv1.Event{Sequence: 1}
	w.finish(errors.Join(workerclient.ErrHeartbeatExpired, errors.New("no heartbeat for 15s")))
	if ev, err := stream.Recv(); err != nil || ev.GetEvent().GetSequence() != 1 {
		t.Fatalf("Recv = %v, %v: the event before the fault must arrive", ev, err)
	}
	_, err = stream.Recv()
	wantStatus(t, err, codes.Unavailable, mxgatewayv1.ReasonHeartbeatExpired)
	_, err = g.client.Invoke(ctx, &mxgatewayv1.InvokeRequest{SessionId: open.GetSessionId(), Command: validCommands()["register"]})
	wantStatus(t, err, codes.FailedPrecondition, mxgatewayv1.ReasonSessionFaulted)
	// The faulted session leaves the table (the stream's end and the
	// table's update are two goroutines, so it is awaited, not raced);
	// closing it reports how it ended.
	testutil.Eventually(t, 10*time.Second, func() error {
		list, err := g.client.ListSessions(ctx, &mxgatewayv1.ListSessionsRequest{})
		if err != nil {
			return err
		}
		if len(list.GetSessions()) != 0 {
			return fmt.Errorf("faulted session still listed: %v", list.GetSessions())
		}
		return nil
	})
	res, err := g.client.CloseSession(ctx, &mxgatewayv1.CloseSessionRequest{SessionId: open.GetSessionId()})
	if err != nil || !res.GetAlreadyClosed() || res.GetState() != mxgatewayv1.SessionState_SESSION_STATE_FAULTED {
		t.Fatalf("CloseSession of the faulted session = %v, %v", res, err)
	}
}

func TestGatewayInvokeWorkerErrors(t *testing.T) {
	g := startGateway(t, Options{}, session.Options{})
	g.prepare = func(w *fakeWorker) {
		w.invoke = func(ctx context.Context, cmd *mxgatewayv1.Command) (*mxgatewayv1.Reply, error) {
			switch {
			case cmd.GetUnregister() != nil:
				return nil, workerclient.ErrCommandTimeout
			case cmd.GetAdvise() != nil:
				return &mxgatewayv1.Reply{Status: mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_MXACCESS_FAILURE, Hresult: -2147024809}, nil
			}
			return nil, errors.New("surprise")
		}
	}
	ctx := ctxT(t)
	open, err := g.client.OpenSession(ctx, &mxgatewayv1.OpenSessionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	id := open.GetSessionId()
	_, err = g.client.Invoke(ctx, &mxgatewayv1.InvokeRequest{SessionId: id, Command: validCommands()["unregister"]})
	wantStatus(t, err, codes.DeadlineExceeded, mxgatewayv1.ReasonCommandTimeout)
	resp, err := g.client.Invoke(ctx, &mxgatewayv1.InvokeRequest{SessionId: id, Command: validCommands()["advise"]})
	if err != nil || resp.GetReply().GetStatus() != mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_MXACCESS_FAILURE {
		t.Fatalf("an MXAccess refusal must be a reply: %v, %v", resp, err)
	}
	_, err = g.client.Invoke(ctx, &mxgatewayv1.InvokeRequest{SessionId: id, Command: validCommands()["activate"]})
	wantStatus(t, err, codes.Internal, mxgatewayv1.ReasonInternal)
}

func TestGatewayAccessHook(t *testing.T) {
	g := startGateway(t, Options{
		Identity: func(ctx context.Context) string { return "owner" },
		Access: func(ctx context.Context, id, owner string) error {
			return status.Error(codes.PermissionDenied, "not your session")
		},
	}, session.Options{})
	ctx := ctxT(t)
	open, err := g.client.OpenSession(ctx, &mxgatewayv1.OpenSessionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = g.client.Invoke(ctx, &mxgatewayv1.InvokeRequest{SessionId: open.GetSessionId(), Command: validCommands()["register"]})
	wantStatus(t, err, codes.PermissionDenied, "")
	list, err := g.client.ListSessions(ctx, &mxgatewayv1.ListSessionsRequest{})
	if err != nil || len(list.GetSessions()) != 0 {
		t.Fatalf("ListSessions shows a session the caller may not access: %v, %v", list, err)
	}
	if got := g.srv.opts.Sessions.List()[0].OwnerKeyID; got != "owner" {
		t.Fatalf("owner %q", got)
	}
}

func TestGatewayRecoversPanics(t *testing.T) {
	g := startGateway(t, Options{Identity: func(context.Context) string { panic("boom") }}, session.Options{})
	_, err := g.client.OpenSession(ctxT(t), &mxgatewayv1.OpenSessionRequest{})
	wantStatus(t, err, codes.Internal, mxgatewayv1.ReasonInternal)
	// The server is still alive.
	if _, err := g.client.ListSessions(ctxT(t), &mxgatewayv1.ListSessionsRequest{}); err != nil {
		t.Fatal(err)
	}
}

func TestGatewayHealthAndReflection(t *testing.T) {
	g := startGateway(t, Options{}, session.Options{})
	ctx := ctxT(t)
	hc := healthpb.NewHealthClient(g.conn)
	for _, svc := range []string{"", "mxgateway.v1.Gateway"} {
		resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("health %q = %v, %v", svc, resp, err)
		}
	}
	rc, err := reflectionpb.NewServerReflectionClient(g.conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	resp, err := rc.Recv()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, s := range resp.GetListServicesResponse().GetService() {
		names[s.GetName()] = true
	}
	if !names["mxgateway.v1.Gateway"] || !names["grpc.health.v1.Health"] {
		t.Fatalf("reflection lists %v", names)
	}
	rc.CloseSend()
}

func TestGatewayShutdownOrder(t *testing.T) {
	g := startGateway(t, Options{}, session.Options{})
	ctx := ctxT(t)
	open, err := g.client.OpenSession(ctx, &mxgatewayv1.OpenSessionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	stream, err := g.client.StreamEvents(ctx, &mxgatewayv1.StreamEventsRequest{SessionId: open.GetSessionId()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Header(); err != nil {
		t.Fatal(err)
	}
	hc := healthpb.NewHealthClient(g.conn)
	watch, err := hc.Watch(ctx, &healthpb.HealthCheckRequest{Service: "mxgateway.v1.Gateway"})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := watch.Recv(); err != nil || st.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("watch = %v, %v", st, err)
	}
	done := make(chan error, 1)
	go func() { done <- g.srv.Shutdown(ctx) }()
	// Health turns NOT_SERVING first, then the stream ends with SHUTTING_DOWN.
	if st, err := watch.Recv(); err != nil || st.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("watch after shutdown = %v, %v", st, err)
	}
	_, err = stream.Recv()
	wantStatus(t, err, codes.Unavailable, mxgatewayv1.ReasonShuttingDown)
	if _, err := watch.Recv(); err == nil {
		t.Fatal("health watch still open after shutdown")
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if n := g.srv.opts.Sessions.Len(); n != 0 {
		t.Fatalf("%d sessions left after Shutdown", n)
	}
	select {
	case <-g.worker(0).Done():
	default:
		t.Fatal("worker not shut down")
	}
	if _, err := g.srv.opts.Sessions.Open(ctx, session.OpenRequest{}); !errors.Is(err, session.ErrShuttingDown) {
		t.Fatalf("Open after Shutdown = %v", err)
	}
}
