package gateway

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/internal/protocol"
	"github.com/mxgateway/mxgateway/internal/session"
)

// BenchmarkStreamEvents measures the gateway's send path alone (session
// distribution, StreamEvents, gRPC over an in-memory connection, decoding
// in the test's reader), fed by the fake worker: one stream, one batched
// stream, and two streams sharing each event's encoding. ns/op is per event
// per stream.
func BenchmarkStreamEvents(b *testing.B) {
	for _, bc := range []struct {
		name    string
		streams int
		batch   uint32
	}{
		{"one", 1, 0},
		{"batched-1024", 1, 1024},
		{"two", 2, 0},
		{"eight", 8, 0},
	} {
		b.Run(bc.name, func(b *testing.B) { benchStream(b, bc.streams, bc.batch) })
	}
}

func benchStream(b *testing.B, streams int, batch uint32) {
	g := startGateway(b, Options{}, session.Options{})
	ctx := ctxT(b)
	open, err := g.client.OpenSession(ctx, &mxgatewayv1.OpenSessionRequest{ClientName: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	const window = 4096 // events ahead of the slowest reader, well inside the subscriber queue
	var received []atomic.Int64 = make([]atomic.Int64, streams)
	slowest := func() int64 {
		m := received[0].Load()
		for i := range received[1:] {
			m = min(m, received[i+1].Load())
		}
		return m
	}
	var wg sync.WaitGroup
	errs := make(chan error, streams)
	for i := range streams {
		st, err := g.client.StreamEvents(ctx, &mxgatewayv1.StreamEventsRequest{SessionId: open.GetSessionId(), MaxBatch: batch})
		if err == nil {
			_, err = st.Header()
		}
		if err != nil {
			b.Fatal(err)
		}
		wg.Go(func() {
			for received[i].Load() < int64(b.N) {
				r, err := st.Recv()
				if err != nil {
					errs <- err
					return
				}
				n := len(r.GetEvents())
				if r.GetEvent() != nil {
					n++
				}
				received[i].Add(int64(n))
			}
		})
	}
	w := g.worker(0)
	now := timestamppb.New(time.Now())
	b.ReportAllocs()
	cpu0 := processCPU()
	b.ResetTimer()
	for seq := range int64(b.N) {
		for seq-slowest() >= window {
			select {
			case err := <-errs:
				b.Fatal(err)
			default:
				time.Sleep(10 * time.Microsecond)
			}
		}
		w.events <- &mxgatewayv1.Event{Sequence: uint64(seq + 1), Family: mxgatewayv1.EventFamily_EVENT_FAMILY_ON_DATA_CHANGE,
			WorkerTime: now,
			Body: &mxgatewayv1.Event_DataChange{DataChange: &mxgatewayv1.OnDataChange{ServerHandle: 1, ItemHandle: 2,
				Value:   &mxgatewayv1.MxValue{DataType: mxgatewayv1.MxDataType_MX_DATA_TYPE_INTEGER, Kind: &mxgatewayv1.MxValue_Int32Value{Int32Value: int32(seq)}},
				Quality: &mxgatewayv1.Quality{Raw: 192}, Timestamp: now}}}
	}
	wg.Wait()
	b.StopTimer()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	b.ReportMetric(float64(b.N*streams)/b.Elapsed().Seconds(), "events/s")
	// CPU per event is far less disturbed by other load than time is.
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N*streams), "cpu-ns/event")
}

// BenchmarkSingleEventWork measures the gateway's own work on one event of
// an unbatched stream, without gRPC's and the goroutines' hand-offs: the
// copy of the worker's event out of the frame (with the room the frame
// reader leaves), its header decode, the session's stamp and the single
// response. ns/op and allocs/op are per event.
func BenchmarkSingleEventWork(b *testing.B) {
	now := timestamppb.New(time.Now())
	wire, err := proto.Marshal(&mxgatewayv1.Event{Sequence: 1, Family: mxgatewayv1.EventFamily_EVENT_FAMILY_ON_DATA_CHANGE,
		WorkerTime: now,
		Body: &mxgatewayv1.Event_DataChange{DataChange: &mxgatewayv1.OnDataChange{ServerHandle: 1, ItemHandle: 2,
			Value:   &mxgatewayv1.MxValue{DataType: mxgatewayv1.MxDataType_MX_DATA_TYPE_INTEGER, Kind: &mxgatewayv1.MxValue_Int32Value{Int32Value: 7}},
			Quality: &mxgatewayv1.Quality{Raw: 192}, Timestamp: now}}})
	if err != nil {
		b.Fatal(err)
	}
	const sid = "0123456789abcdef0123456789abcdef"
	at := time.Now()
	b.ReportAllocs()
	for i := range b.N {
		own := append(make([]byte, 0, len(wire)+protocol.EncodedRoom(len(sid))), wire...)
		ev, err := protocol.DecodeEventInPlace(own, len(own))
		if err != nil {
			b.Fatal(err)
		}
		ev.Stamp(sid, uint64(i+1), at)
		r, err := singleResponse(ev, false)
		if err != nil || r.data.Len() == 0 {
			b.Fatal(err)
		}
	}
}
