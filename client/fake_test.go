package client

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	mxgatewayv1grpc "github.com/mxgateway/mxgateway/api/mxgateway/v1/mxgatewayv1grpc"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// fakeGateway is a small in-test Gateway: one session "s1", an event log
// with replay by after_sequence, a few commands, and hooks to break streams.
// It exists to test the client's own logic (resume, gap handling, FIFO
// write matching) deterministically; the e2e tests use the real gateway.
type fakeGateway struct {
	mxgatewayv1grpc.UnimplementedGatewayServer

	mu       sync.Mutex
	cond     *sync.Cond
	events   []*mxgatewayv1.Event // events[i].Sequence == firstSeq+i
	firstSeq uint64               // oldest sequence kept (for gap markers)
	requests []*mxgatewayv1.StreamEventsRequest
	commands []*mxgatewayv1.Command
	closed   bool
	// dropAfter, when > 0, ends the next stream with UNAVAILABLE after that
	// many events sent on it.
	dropAfter int
	// streamErr, when set, fails every stream at once.
	streamErr error
	// skipSeq makes the fake send an event with this sequence skipped (an
	// unmarked gap).
	skipSeq uint64
	// writeStatus is the completion status of writes.
	writeStatus []*mxgatewayv1.MxStatus
	values      map[int32]*mxgatewayv1.MxValue // item handle -> current value
	nextHandle  int32
	refs        map[int32]string
}

func newFakeGateway() *fakeGateway {
	f := &fakeGateway{firstSeq: 1, values: map[int32]*mxgatewayv1.MxValue{}, refs: map[int32]string{}}
	f.cond = sync.NewCond(&f.mu)
	return f
}

// serve starts the fake on 127.0.0.1 and returns its address.
func (f *fakeGateway) serve(t testing.TB) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	mxgatewayv1grpc.RegisterGatewayServer(srv, f)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(lis) }()
	t.Cleanup(func() {
		f.mu.Lock()
		f.closed = true
		f.cond.Broadcast()
		f.mu.Unlock()
		srv.Stop()
		<-done
	})
	return lis.Addr().String()
}

// emit appends events with the next sequence numbers.
func (f *fakeGateway) emit(evs ...*mxgatewayv1.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.emitLocked(evs...)
}

func (f *fakeGateway) emitLocked(evs ...*mxgatewayv1.Event) {
	for _, ev := range evs {
		ev.SessionId = "s1"
		ev.Sequence = f.firstSeq + uint64(len(f.events))
		f.events = append(f.events, ev)
	}
	f.cond.Broadcast()
}

// trim forgets every event before seq, so resuming before it gets a gap.
func (f *fakeGateway) trim(seq uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := int(seq - f.firstSeq)
	f.events = f.events[n:]
	f.firstSeq = seq
}

func dataChange(h int32, v *mxgatewayv1.MxValue) *mxgatewayv1.Event {
	return &mxgatewayv1.Event{Family: mxgatewayv1.EventFamily_EVENT_FAMILY_ON_DATA_CHANGE,
		Body: &mxgatewayv1.Event_DataChange{DataChange: &mxgatewayv1.OnDataChange{ServerHandle: 1, ItemHandle: h, Value: v,
			Quality: &mxgatewayv1.Quality{Raw: 192}, Timestamp: timestamppb.Now(),
			Statuses: []*mxgatewayv1.MxStatus{{Success: true, SuccessRaw: -1}}}}}
}

func (f *fakeGateway) OpenSession(_ context.Context, req *mxgatewayv1.OpenSessionRequest) (*mxgatewayv1.OpenSessionResponse, error) {
	return &mxgatewayv1.OpenSessionResponse{SessionId: "s1", ApiVersion: 1}, nil
}

func (f *fakeGateway) CloseSession(context.Context, *mxgatewayv1.CloseSessionRequest) (*mxgatewayv1.CloseSessionResponse, error) {
	return &mxgatewayv1.CloseSessionResponse{State: mxgatewayv1.SessionState_SESSION_STATE_CLOSED}, nil
}

func (f *fakeGateway) ListSessions(context.Context, *mxgatewayv1.ListSessionsRequest) (*mxgatewayv1.ListSessionsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &mxgatewayv1.ListSessionsResponse{Sessions: []*mxgatewayv1.SessionInfo{{
		SessionId: "s1", State: mxgatewayv1.SessionState_SESSION_STATE_READY, LastSequence: f.firstSeq + uint64(len(f.events)) - 1,
	}}}, nil
}

func notFound() error {
	st, _ := status.New(codes.NotFound, "session s2 not found").WithDetails(&errdetails.ErrorInfo{
		Reason: mxgatewayv1.ReasonSessionNotFound, Domain: mxgatewayv1.ErrorDomain})
	return st.Err()
}

func (f *fakeGateway) Invoke(_ context.Context, req *mxgatewayv1.InvokeRequest) (*mxgatewayv1.InvokeResponse, error) {
	if req.GetSessionId() != "s1" {
		return nil, notFound()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.commands = append(f.commands, req.GetCommand())
	ok := &mxgatewayv1.Reply{Status: mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK}
	switch c := req.GetCommand().GetKind().(type) {
	case *mxgatewayv1.Command_Register:
		ok.Result = &mxgatewayv1.Reply_Register{Register: &mxgatewayv1.RegisterResult{ServerHandle: 1}}
	case *mxgatewayv1.Command_SubscribeBulk:
		var entries []*mxgatewayv1.BulkEntryResult
		for _, ref := range c.SubscribeBulk.GetItemDefinitions() {
			f.nextHandle++
			h := f.nextHandle
			f.refs[h] = ref
			v := &mxgatewayv1.MxValue{DataType: mxgatewayv1.MxDataType_MX_DATA_TYPE_DOUBLE, VariantType: vtR8,
				Kind: &mxgatewayv1.MxValue_DoubleValue{DoubleValue: 1.5}}
			f.values[h] = v
			entries = append(entries, &mxgatewayv1.BulkEntryResult{ItemDefinition: ref, ItemHandle: h,
				Status: mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK})
			f.emitLocked(dataChange(h, v))
		}
		ok.Status = mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_BULK
		ok.Result = &mxgatewayv1.Reply_Bulk{Bulk: &mxgatewayv1.BulkResult{Entries: entries}}
	case *mxgatewayv1.Command_UnsubscribeBulk:
		var entries []*mxgatewayv1.BulkEntryResult
		for _, h := range c.UnsubscribeBulk.GetItemHandles() {
			delete(f.values, h)
			entries = append(entries, &mxgatewayv1.BulkEntryResult{ItemHandle: h, Status: mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK})
		}
		ok.Status = mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_BULK
		ok.Result = &mxgatewayv1.Reply_Bulk{Bulk: &mxgatewayv1.BulkResult{Entries: entries}}
	case *mxgatewayv1.Command_Write:
		w := c.Write
		if w.GetValue().GetDataType() != f.values[w.GetItemHandle()].GetDataType() {
			return &mxgatewayv1.InvokeResponse{Reply: &mxgatewayv1.Reply{
				Status: mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_MXACCESS_FAILURE, Hresult: HResultInvalidArg}}, nil
		}
		f.values[w.GetItemHandle()] = w.GetValue()
		st := f.writeStatus
		if st == nil {
			st = []*mxgatewayv1.MxStatus{{Success: true, SuccessRaw: -1}}
		}
		f.emitLocked(&mxgatewayv1.Event{Family: mxgatewayv1.EventFamily_EVENT_FAMILY_ON_WRITE_COMPLETE,
			Body: &mxgatewayv1.Event_WriteComplete{WriteComplete: &mxgatewayv1.OnWriteComplete{ServerHandle: 1, ItemHandle: w.GetItemHandle(),
				Statuses: []*mxgatewayv1.MxStatus{{Success: true, Category: mxgatewayv1.MxStatusCategory_MX_STATUS_CATEGORY_PENDING, CategoryRaw: 1}}}}},
			&mxgatewayv1.Event{Family: mxgatewayv1.EventFamily_EVENT_FAMILY_ON_WRITE_COMPLETE,
				Body: &mxgatewayv1.Event_WriteComplete{WriteComplete: &mxgatewayv1.OnWriteComplete{ServerHandle: 1, ItemHandle: w.GetItemHandle(), Statuses: st}}})
		if st[0].GetSuccess() {
			f.emitLocked(dataChange(w.GetItemHandle(), w.GetValue()))
		}
	default:
		return nil, status.Error(codes.Unimplemented, "fake: command not implemented")
	}
	return &mxgatewayv1.InvokeResponse{Reply: ok}, nil
}

func (f *fakeGateway) StreamEvents(req *mxgatewayv1.StreamEventsRequest, stream grpc.ServerStreamingServer[mxgatewayv1.StreamEventsResponse]) error {
	if req.GetSessionId() != "s1" {
		return notFound()
	}
	f.mu.Lock()
	f.requests = append(f.requests, req)
	if f.streamErr != nil {
		err := f.streamErr
		f.mu.Unlock()
		return err
	}
	drop := f.dropAfter
	f.dropAfter = 0
	next := req.GetAfterSequence() + 1
	if req.GetLiveOnly() {
		next = f.firstSeq + uint64(len(f.events))
	}
	if next < f.firstSeq {
		gap := &mxgatewayv1.Event{SessionId: "s1", Sequence: f.firstSeq, Family: mxgatewayv1.EventFamily_EVENT_FAMILY_REPLAY_GAP,
			GatewayGenerated: true, Body: &mxgatewayv1.Event_ReplayGap{ReplayGap: &mxgatewayv1.ReplayGap{
				RequestedAfterSequence: req.GetAfterSequence(), FirstAvailableSequence: f.firstSeq, Reason: "ring trimmed by count"}}}
		f.mu.Unlock()
		if err := stream.Send(&mxgatewayv1.StreamEventsResponse{Event: gap}); err != nil {
			return err
		}
		f.mu.Lock()
		next = f.firstSeq
	}
	sent := 0
	ctx := stream.Context()
	stop := context.AfterFunc(ctx, func() { f.mu.Lock(); f.cond.Broadcast(); f.mu.Unlock() })
	defer stop()
	for {
		for !f.closed && ctx.Err() == nil && next >= f.firstSeq+uint64(len(f.events)) {
			f.cond.Wait()
		}
		if f.closed || ctx.Err() != nil {
			f.mu.Unlock()
			return io.EOF
		}
		// With max_batch, everything available up to the batch size goes
		// in one message.
		var batch []*mxgatewayv1.Event
		for len(batch) < max(1, int(req.GetMaxBatch())) && next < f.firstSeq+uint64(len(f.events)) {
			if f.skipSeq != 0 && next == f.skipSeq {
				next++
				f.skipSeq = 0
				continue
			}
			batch = append(batch, f.events[next-f.firstSeq])
			next++
		}
		if len(batch) == 0 {
			continue
		}
		f.mu.Unlock()
		resp := &mxgatewayv1.StreamEventsResponse{Events: batch}
		if req.GetMaxBatch() <= 1 {
			resp = &mxgatewayv1.StreamEventsResponse{Event: batch[0]}
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
		sent += len(batch)
		if drop > 0 && sent >= drop {
			return status.Error(codes.Unavailable, "fake: stream dropped")
		}
		f.mu.Lock()
	}
}

func (f *fakeGateway) afterSequences() []uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []uint64
	for _, r := range f.requests {
		out = append(out, r.GetAfterSequence())
	}
	return out
}
