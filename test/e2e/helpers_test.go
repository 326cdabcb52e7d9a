package e2e

import (
	"context"
	"io"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	mxgatewayv1grpc "github.com/mxgateway/mxgateway/api/mxgateway/v1/mxgatewayv1grpc"
	"github.com/mxgateway/mxgateway/test/e2e/harness"
)

// step bounds one test step; every wait in these tests has a deadline.
const step = 20 * time.Second

// client is one session opened by a test.
type client struct {
	t    *testing.T
	c    mxgatewayv1grpc.GatewayClient
	id   string
	pid  int
	hlmx int32
}

func openSession(t *testing.T, c mxgatewayv1grpc.GatewayClient, name string) *client {
	t.Helper()
	resp, err := c.OpenSession(harness.Context(t, step), &mxgatewayv1.OpenSessionRequest{ClientName: name})
	if err != nil {
		t.Fatalf("OpenSession: %v", err)
	}
	if !resp.GetBackend().GetSimulated() || resp.GetWorkerPid() <= 0 {
		t.Fatalf("OpenSession = %v", resp)
	}
	return &client{t: t, c: c, id: resp.GetSessionId(), pid: int(resp.GetWorkerPid())}
}

func (s *client) invokeErr(cmd *mxgatewayv1.Command) (*mxgatewayv1.Reply, error) {
	ctx, cancel := context.WithTimeout(context.Background(), step)
	defer cancel()
	resp, err := s.c.Invoke(ctx, &mxgatewayv1.InvokeRequest{SessionId: s.id, Command: cmd})
	return resp.GetReply(), err
}

// invoke runs cmd and fails the test unless MXAccess accepted it.
func (s *client) invoke(cmd *mxgatewayv1.Command) *mxgatewayv1.Reply {
	s.t.Helper()
	r, err := s.invokeErr(cmd)
	if err != nil {
		s.t.Fatalf("Invoke %v: %v", cmd, err)
	}
	if st := r.GetStatus(); st != mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK && st != mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_BULK {
		s.t.Fatalf("Invoke %v: reply %v", cmd, r)
	}
	return r
}

func (s *client) register() int32 {
	s.t.Helper()
	r := s.invoke(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Register{Register: &mxgatewayv1.RegisterCommand{ClientName: "e2e"}}})
	s.hlmx = r.GetRegister().GetServerHandle()
	if s.hlmx <= 0 {
		s.t.Fatalf("Register: handle %d", s.hlmx)
	}
	return s.hlmx
}

func (s *client) addItem(ref string) int32 {
	s.t.Helper()
	r := s.invoke(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_AddItem{AddItem: &mxgatewayv1.AddItemCommand{ServerHandle: s.hlmx, ItemDefinition: ref}}})
	h := r.GetItemHandle().GetItemHandle()
	if h <= 0 {
		s.t.Fatalf("AddItem %s: handle %d", ref, h)
	}
	return h
}

func (s *client) advise(h int32) {
	s.t.Helper()
	s.invoke(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Advise{Advise: &mxgatewayv1.AdviseCommand{ServerHandle: s.hlmx, ItemHandle: h}}})
}

// subscribe adds and advises ref and returns its item handle.
func (s *client) subscribe(ref string) int32 {
	s.t.Helper()
	h := s.addItem(ref)
	s.advise(h)
	return h
}

func (s *client) write(h int32, v *mxgatewayv1.MxValue) {
	s.t.Helper()
	s.invoke(writeCmd(s.hlmx, h, v))
}

func writeCmd(hlmx, h int32, v *mxgatewayv1.MxValue) *mxgatewayv1.Command {
	return &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Write{Write: &mxgatewayv1.WriteCommand{ServerHandle: hlmx, ItemHandle: h, Value: v}}}
}

// simFault subscribes Sim.<attr> and writes v to it: the simulator's fault
// injection (docs/simulator.md).
func (s *client) simFault(attr string, v int32) {
	s.t.Helper()
	h := s.subscribe("Sim." + attr)
	s.write(h, intValue(v))
}

func (s *client) info() *mxgatewayv1.SessionInfo {
	s.t.Helper()
	resp, err := s.c.ListSessions(harness.Context(s.t, step), &mxgatewayv1.ListSessionsRequest{})
	if err != nil {
		s.t.Fatalf("ListSessions: %v", err)
	}
	for _, in := range resp.GetSessions() {
		if in.GetSessionId() == s.id {
			return in
		}
	}
	return nil
}

func (s *client) close() *mxgatewayv1.CloseSessionResponse {
	s.t.Helper()
	resp, err := s.c.CloseSession(harness.Context(s.t, step), &mxgatewayv1.CloseSessionRequest{SessionId: s.id})
	if err != nil {
		s.t.Fatalf("CloseSession: %v", err)
	}
	return resp
}

func intValue(v int32) *mxgatewayv1.MxValue {
	return &mxgatewayv1.MxValue{DataType: mxgatewayv1.MxDataType_MX_DATA_TYPE_INTEGER, Kind: &mxgatewayv1.MxValue_Int32Value{Int32Value: v}}
}

func doubleValue(v float64) *mxgatewayv1.MxValue {
	return &mxgatewayv1.MxValue{DataType: mxgatewayv1.MxDataType_MX_DATA_TYPE_DOUBLE, Kind: &mxgatewayv1.MxValue_DoubleValue{DoubleValue: v}}
}

// stream is an event subscription read by its own goroutine into a channel.
type stream struct {
	t      *testing.T
	cancel context.CancelFunc
	events chan *mxgatewayv1.Event
	done   chan struct{}
	err    error // why the stream ended; valid after done
}

// streamEvents attaches a subscriber and waits until the gateway registered
// it (response headers). Extra call options tune the client side.
func (s *client) streamEvents(req *mxgatewayv1.StreamEventsRequest, opts ...grpc.CallOption) *stream {
	s.t.Helper()
	return openStream(s.t, s.c, s.id, req, opts...)
}

func openStream(t *testing.T, c mxgatewayv1grpc.GatewayClient, id string, req *mxgatewayv1.StreamEventsRequest, opts ...grpc.CallOption) *stream {
	t.Helper()
	req.SessionId = id
	ctx, cancel := context.WithCancel(context.Background())
	st, err := c.StreamEvents(ctx, req, opts...)
	if err == nil {
		_, err = st.Header()
	}
	if err != nil {
		cancel()
		t.Fatalf("StreamEvents: %v", err)
	}
	s := &stream{t: t, cancel: cancel, events: make(chan *mxgatewayv1.Event, 1<<16), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			resp, err := st.Recv()
			if err != nil {
				s.err = err
				return
			}
			select {
			case s.events <- resp.GetEvent():
			case <-ctx.Done():
				s.err = ctx.Err()
				return
			}
		}
	}()
	t.Cleanup(s.stop)
	return s
}

// rawStream opens a stream the test reads itself (no goroutine).
func (s *client) rawStream(req *mxgatewayv1.StreamEventsRequest, opts ...grpc.CallOption) (grpc.ServerStreamingClient[mxgatewayv1.StreamEventsResponse], context.CancelFunc) {
	s.t.Helper()
	req.SessionId = s.id
	ctx, cancel := context.WithCancel(context.Background())
	st, err := s.c.StreamEvents(ctx, req, opts...)
	if err == nil {
		_, err = st.Header()
	}
	if err != nil {
		cancel()
		s.t.Fatalf("StreamEvents: %v", err)
	}
	s.t.Cleanup(cancel)
	return st, cancel
}

// stop detaches the subscriber and waits for the reader.
func (s *stream) stop() {
	s.cancel()
	<-s.done
}

// next returns the next event, failing the test if none arrives in time or
// the stream ends.
func (s *stream) next() *mxgatewayv1.Event {
	s.t.Helper()
	select {
	case ev := <-s.events:
		return ev
	case <-s.done:
		select {
		case ev := <-s.events:
			return ev
		default:
		}
		s.t.Fatalf("stream ended: %v", s.err)
	case <-time.After(step):
		s.t.Fatalf("no event within %v", step)
	}
	return nil
}

// waitFor reads events until match returns true, and returns that event.
func (s *stream) waitFor(what string, match func(*mxgatewayv1.Event) bool) *mxgatewayv1.Event {
	s.t.Helper()
	deadline := time.After(step)
	for {
		select {
		case ev := <-s.events:
			if match(ev) {
				return ev
			}
		case <-s.done:
			select {
			case ev := <-s.events:
				if match(ev) {
					return ev
				}
				continue
			default:
			}
			s.t.Fatalf("stream ended while waiting for %s: %v", what, s.err)
		case <-deadline:
			s.t.Fatalf("no %s within %v", what, step)
		}
	}
}

// end drains the stream until it ends and returns the events and the end.
func (s *stream) end() ([]*mxgatewayv1.Event, error) {
	s.t.Helper()
	var evs []*mxgatewayv1.Event
	deadline := time.After(step)
	for {
		select {
		case ev := <-s.events:
			evs = append(evs, ev)
		case <-s.done:
			for {
				select {
				case ev := <-s.events:
					evs = append(evs, ev)
				default:
					if s.err == io.EOF {
						return evs, nil
					}
					return evs, s.err
				}
			}
		case <-deadline:
			s.t.Fatalf("stream did not end within %v", step)
		}
	}
}

func dataChangeOf(hlmx, h int32) func(*mxgatewayv1.Event) bool {
	return func(ev *mxgatewayv1.Event) bool {
		dc := ev.GetDataChange()
		return dc != nil && dc.GetServerHandle() == hlmx && dc.GetItemHandle() == h
	}
}

// wantCode checks a gRPC error's code and ErrorInfo reason ("" skips it).
func wantCode(t *testing.T, err error, code codes.Code, reason string) {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok || st.Code() != code {
		t.Fatalf("got %v, want %v", err, code)
	}
	if reason == "" {
		return
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			if info.GetReason() != reason || info.GetDomain() != mxgatewayv1.ErrorDomain {
				t.Fatalf("ErrorInfo %v, want reason %s", info, reason)
			}
			return
		}
	}
	t.Fatalf("%v has no ErrorInfo (want reason %s)", err, reason)
}

// eventually polls f until it returns nil.
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(step)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkContiguous fails unless evs have sequences from, from+1, ...
func checkContiguous(t *testing.T, evs []*mxgatewayv1.Event, from uint64) {
	t.Helper()
	for i, ev := range evs {
		if want := from + uint64(i); ev.GetSequence() != want {
			t.Fatalf("event %d has sequence %d, want %d (gap or duplicate)", i, ev.GetSequence(), want)
		}
	}
}
