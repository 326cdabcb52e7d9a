package gateway

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
)

// nopStream is a server stream whose Send costs nothing.
type nopStream struct {
	grpc.ServerStreamingServer[mxgatewayv1.StreamEventsResponse]
}

func (nopStream) Send(*mxgatewayv1.StreamEventsResponse) error { return nil }

// BenchmarkDeadlineSend is the cost the write deadline adds to one event
// send (the hand-off to the sender goroutine and the timer).
func BenchmarkDeadlineSend(b *testing.B) {
	d := newDeadlineStream[mxgatewayv1.StreamEventsResponse](context.Background(), nopStream{}, time.Minute)
	defer d.stop()
	m := &mxgatewayv1.StreamEventsResponse{}
	for b.Loop() {
		if err := d.Send(m); err != nil {
			b.Fatal(err)
		}
	}
}
