package gateway

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
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
