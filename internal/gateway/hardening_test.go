package gateway

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	mxgatewayv1grpc "github.com/mxgateway/mxgateway/api/mxgateway/v1/mxgatewayv1grpc"
	"github.com/mxgateway/mxgateway/internal/session"
	"github.com/mxgateway/mxgateway/internal/testutil"
)

// bigEvent is a data change of about 1 KiB.
func bigEvent(seq uint64) *mxgatewayv1.Event {
	return &mxgatewayv1.Event{Sequence: seq, Family: mxgatewayv1.EventFamily_EVENT_FAMILY_ON_DATA_CHANGE,
		Body: &mxgatewayv1.Event_DataChange{DataChange: &mxgatewayv1.OnDataChange{ServerHandle: 1, ItemHandle: 1,
			Value: &mxgatewayv1.MxValue{Kind: &mxgatewayv1.MxValue_StringValue{StringValue: strings.Repeat("x", 1024)}}}}}
}

// TestStreamWriteDeadline: a subscriber that stops reading (its flow
// control window fills up) loses its stream after the write timeout; it
// no longer holds the session (no subscriber), which stays READY.
func TestStreamWriteDeadline(t *testing.T) {
	// A fixed 64 KiB window (no BDP growth) lets the server's sends block
	// after a few hundred KiB.
	g := startGateway(t, Options{StreamWriteTimeout: 200 * time.Millisecond}, session.Options{},
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	ctx := ctxT(t)
	open, err := g.client.OpenSession(ctx, &mxgatewayv1.OpenSessionRequest{ClientName: "stuck"})
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := g.client.StreamEvents(sctx, &mxgatewayv1.StreamEventsRequest{SessionId: open.GetSessionId()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Header(); err != nil {
		t.Fatal(err)
	}
	const n = 1000 // ~1 MiB, far more than the windows, less than the subscriber queue
	w := g.worker(0)
	fed := make(chan struct{})
	go func() {
		defer close(fed)
		for i := range uint64(n) {
			w.events <- bigEvent(i + 1)
		}
	}()
	<-fed
	subscribers := func() int {
		list, err := g.client.ListSessions(ctx, &mxgatewayv1.ListSessionsRequest{})
		if err != nil || len(list.GetSessions()) != 1 {
			t.Fatalf("ListSessions = %v, %v", list, err)
		}
		if st := list.GetSessions()[0].GetState(); st != mxgatewayv1.SessionState_SESSION_STATE_READY {
			t.Fatalf("session %v, want READY", st)
		}
		return int(list.GetSessions()[0].GetSubscribers())
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		if k := subscribers(); k != 0 {
			return fmt.Errorf("%d subscribers still attached", k)
		}
		return nil
	})
	// The client that reads again gets what was on the wire, then the end.
	got := 0
	for {
		_, err := stream.Recv()
		if err != nil {
			wantStatus(t, err, codes.ResourceExhausted, mxgatewayv1.ReasonSlowConsumer)
			break
		}
		got++
	}
	if got == 0 || got >= n {
		t.Fatalf("received %d of %d events before the end; want some, not all", got, n)
	}
}

// rawCodec sends *[]byte as they are, so tests can send bytes that are no
// valid request.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*(v.(*[]byte)) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

// TestUndecodableRequests: requests that fail to decode (malformed
// protobuf, invalid UTF-8 in a string field) are INVALID_ARGUMENT /
// INVALID_REQUEST, unary and streaming alike, not INTERNAL.
func TestUndecodableRequests(t *testing.T) {
	g := startGateway(t, Options{}, session.Options{})
	ctx := ctxT(t)
	bad := map[string][]byte{
		"malformed":     {0xff, 0xff, 0xff, 0xff},
		"invalid utf-8": {0x0a, 0x02, 0xff, 0xfe}, // client_name / session_id = "\xff\xfe"
	}
	for name, body := range bad {
		t.Run(name, func(t *testing.T) {
			var out []byte
			err := g.conn.Invoke(ctx, mxgatewayv1grpc.Gateway_OpenSession_FullMethodName, &body, &out, grpc.ForceCodec(rawCodec{}))
			wantStatus(t, err, codes.InvalidArgument, mxgatewayv1.ReasonInvalidRequest)

			st, err := g.conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, mxgatewayv1grpc.Gateway_StreamEvents_FullMethodName, grpc.ForceCodec(rawCodec{}))
			if err != nil {
				t.Fatal(err)
			}
			if err := st.SendMsg(&body); err != nil {
				t.Fatal(err)
			}
			if err := st.CloseSend(); err != nil {
				t.Fatal(err)
			}
			wantStatus(t, st.RecvMsg(&out), codes.InvalidArgument, mxgatewayv1.ReasonInvalidRequest)
		})
	}
	// The server still serves.
	if _, err := g.client.ListSessions(ctx, &mxgatewayv1.ListSessionsRequest{}); err != nil {
		t.Fatal(err)
	}
}

// TestHealthWatchLimit: health Watch streams need no key, so their number
// is bounded: past MaxHealthWatches a watch is refused with
// RESOURCE_EXHAUSTED / HEALTH_WATCH_LIMIT; a closed watch frees its slot.
func TestHealthWatchLimit(t *testing.T) {
	g := startGateway(t, Options{MaxHealthWatches: 2}, session.Options{})
	ctx := ctxT(t)
	hc := healthpb.NewHealthClient(g.conn)
	watch := func(ctx context.Context) (healthpb.Health_WatchClient, error) {
		w, err := hc.Watch(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			return nil, err
		}
		_, err = w.Recv()
		return w, err
	}
	wctx, stop := context.WithCancel(ctx)
	for range 2 {
		if _, err := watch(wctx); err != nil {
			t.Fatal(err)
		}
	}
	_, err := watch(ctx)
	wantStatus(t, err, codes.ResourceExhausted, mxgatewayv1.ReasonWatchLimit)
	stop()
	testutil.Eventually(t, 5*time.Second, func() error {
		w, err := watch(ctx)
		if err != nil {
			return err
		}
		return w.CloseSend()
	})
}

// TestHeaderListLimit: a header block larger than MaxHeaderListBytes is
// never parsed into a call: the call fails, the server serves the next one.
func TestHeaderListLimit(t *testing.T) {
	g := startGateway(t, Options{MaxHeaderListBytes: 4 << 10}, session.Options{})
	ctx := ctxT(t)
	if _, err := g.client.ListSessions(ctx, &mxgatewayv1.ListSessionsRequest{}); err != nil {
		t.Fatal(err) // learns the server's settings
	}
	big := metadata.AppendToOutgoingContext(ctx, "x-padding", strings.Repeat("p", 64<<10))
	_, err := g.client.ListSessions(big, &mxgatewayv1.ListSessionsRequest{})
	if code := status.Code(err); code == codes.OK {
		t.Fatal("a 64 KiB header block was accepted")
	}
	if _, err := g.client.ListSessions(ctx, &mxgatewayv1.ListSessionsRequest{}); err != nil {
		t.Fatalf("after the refused call: %v", err)
	}
}

// TestIdleConnectionClosed: a connection without calls for
// MaxConnectionIdle is closed by the server (the client sees it go idle).
func TestIdleConnectionClosed(t *testing.T) {
	g := startGateway(t, Options{MaxConnectionIdle: 200 * time.Millisecond}, session.Options{})
	ctx := ctxT(t)
	if _, err := g.client.ListSessions(ctx, &mxgatewayv1.ListSessionsRequest{}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		if st := g.conn.GetState(); st != connectivity.Idle {
			return fmt.Errorf("connection %v", st)
		}
		return nil
	})
}
