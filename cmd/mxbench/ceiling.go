package main

import (
	"context"
	"errors"
	"net"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/catalog"
	mxgatewayv1grpc "github.com/mxgateway/mxgateway/api/mxgateway/v1/mxgatewayv1grpc"
)

// ringSize is how many distinct pre-built messages each ceiling stream
// cycles through.
const ringSize = 1024

// ceiling is the bare grpc-go server the figures are compared with: a
// Gateway service that streams copies of a captured event from memory and
// answers Invoke with a captured reply, over loopback, in the driver's
// process. It speaks the same API, so the same SDK code drives both sides.
type ceiling struct {
	mxgatewayv1grpc.UnimplementedGatewayServer

	srv  *grpc.Server
	lis  net.Listener
	addr string

	mu       sync.Mutex
	template *mxgatewayv1.Event
	count    int           // events per stream
	start    chan struct{} // streams wait for it before sending
	waiting  int
	arrived  chan struct{} // signalled when a stream starts waiting
	replies  map[string]*mxgatewayv1.InvokeResponse
}

func startCeiling() (*ceiling, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	c := &ceiling{
		srv:     grpc.NewServer(grpc.MaxRecvMsgSize(16<<20), grpc.MaxSendMsgSize(16<<20)),
		lis:     lis,
		addr:    lis.Addr().String(),
		arrived: make(chan struct{}, 64),
		replies: map[string]*mxgatewayv1.InvokeResponse{},
	}
	mxgatewayv1grpc.RegisterGatewayServer(c.srv, c)
	healthpb.RegisterHealthServer(c.srv, health.NewServer())
	go c.srv.Serve(lis)
	return c, nil
}

func (c *ceiling) close() { c.srv.Stop() }

// prepareStreams makes the next streams send count copies of template,
// each waiting for release first.
func (c *ceiling) prepareStreams(template *mxgatewayv1.Event, count int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.template, c.count = template, count
	c.start = make(chan struct{})
	c.waiting = 0
}

// waitStreams blocks until n streams wait for release.
func (c *ceiling) waitStreams(ctx context.Context, n int) error {
	for {
		c.mu.Lock()
		w := c.waiting
		c.mu.Unlock()
		if w >= n {
			return nil
		}
		select {
		case <-c.arrived:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// release lets the waiting streams send.
func (c *ceiling) release() {
	c.mu.Lock()
	close(c.start)
	c.mu.Unlock()
}

// setReply sets the canned reply for a command kind.
func (c *ceiling) setReply(kind string, r *mxgatewayv1.Reply) {
	c.mu.Lock()
	c.replies[kind] = &mxgatewayv1.InvokeResponse{Reply: r}
	c.mu.Unlock()
}

// StreamEvents sends count events built from the template (the messages
// are prepared before the stream is released, so the loop only stamps a
// sequence number and sends), then waits for the client to leave.
func (c *ceiling) StreamEvents(req *mxgatewayv1.StreamEventsRequest, stream grpc.ServerStreamingServer[mxgatewayv1.StreamEventsResponse]) error {
	c.mu.Lock()
	tmpl, n, start := c.template, c.count, c.start
	c.mu.Unlock()
	if tmpl == nil {
		return status.Error(codes.FailedPrecondition, "ceiling: no template")
	}
	// A batch must not hold one message twice: at least max_batch of them.
	msgs := make([]*mxgatewayv1.StreamEventsResponse, max(ringSize, int(req.GetMaxBatch())))
	for i := range msgs {
		ev := proto.Clone(tmpl).(*mxgatewayv1.Event)
		if v := ev.GetDataChange().GetValue(); v != nil {
			if _, ok := v.GetKind().(*mxgatewayv1.MxValue_Int32Value); ok {
				v.Kind = &mxgatewayv1.MxValue_Int32Value{Int32Value: int32(i + 1)}
			}
		}
		msgs[i] = &mxgatewayv1.StreamEventsResponse{Event: ev}
	}
	if err := stream.SendHeader(nil); err != nil {
		return err
	}
	c.mu.Lock()
	c.waiting++
	c.mu.Unlock()
	select {
	case c.arrived <- struct{}{}:
	default:
	}
	select {
	case <-start:
	case <-stream.Context().Done():
		return stream.Context().Err()
	}
	seq := req.GetAfterSequence()
	if b := int(req.GetMaxBatch()); b > 1 {
		// Batched: the same events, b per message.
		batch := &mxgatewayv1.StreamEventsResponse{Events: make([]*mxgatewayv1.Event, 0, b)}
		for i := 0; i < n; {
			batch.Events = batch.Events[:0]
			for ; i < n && len(batch.Events) < b; i++ {
				seq++
				ev := msgs[i%len(msgs)].Event
				ev.Sequence = seq
				batch.Events = append(batch.Events, ev)
			}
			if err := stream.Send(batch); err != nil {
				return err
			}
		}
		<-stream.Context().Done()
		return nil
	}
	for i := 0; i < n; i++ {
		seq++
		m := msgs[i%len(msgs)]
		m.Event.Sequence = seq
		if err := stream.Send(m); err != nil {
			return err
		}
	}
	<-stream.Context().Done()
	return nil
}

// Invoke answers with the canned reply of the command's kind.
func (c *ceiling) Invoke(_ context.Context, req *mxgatewayv1.InvokeRequest) (*mxgatewayv1.InvokeResponse, error) {
	kind := catalog.Of(req.GetCommand()).Name()
	c.mu.Lock()
	r := c.replies[kind]
	c.mu.Unlock()
	if r == nil {
		return nil, status.Error(codes.Unimplemented, "ceiling: no reply for "+kind)
	}
	return r, nil
}

var errNoTemplate = errors.New("mxbench: no event captured from the gateway to build the ceiling's messages")
