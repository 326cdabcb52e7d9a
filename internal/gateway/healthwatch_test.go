package gateway

import (
	"context"
	"testing"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// blockingWatch is a Health_WatchServer whose Send reports each message as
// delivered, then waits to be released: the client has the message while
// the server's Send has not returned yet.
type blockingWatch struct {
	healthpb.Health_WatchServer
	delivered chan *healthpb.HealthCheckResponse
	release   chan struct{}
}

func (b *blockingWatch) Send(m *healthpb.HealthCheckResponse) error {
	b.delivered <- m
	<-b.release
	return nil
}

// TestWatchStreamStateBeforeSendReturns: the root cause of a flaky
// TestGatewayShutdownOrder. A watcher can read SERVING, and the server
// start stopping, before the transport's Send returns; the watch's state
// must already say SERVING then, or the stop ends the watch before its
// NOT_SERVING update.
func TestWatchStreamStateBeforeSendReturns(t *testing.T) {
	b := &blockingWatch{delivered: make(chan *healthpb.HealthCheckResponse), release: make(chan struct{})}
	ws := &watchStream{Health_WatchServer: b, ctx: context.Background(), sent: make(chan struct{})}
	errc := make(chan error, 1)
	for _, st := range []healthpb.HealthCheckResponse_ServingStatus{healthpb.HealthCheckResponse_SERVING, healthpb.HealthCheckResponse_NOT_SERVING} {
		go func() { errc <- ws.Send(&healthpb.HealthCheckResponse{Status: st}) }()
		<-b.delivered // the watcher has it; Send has not returned
		serving, sent := ws.state()
		if want := st == healthpb.HealthCheckResponse_SERVING; serving != want {
			t.Fatalf("while %v is being sent: serving = %v, want %v", st, serving, want)
		}
		b.release <- struct{}{}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		<-sent // closed once the Send returned
	}
}
