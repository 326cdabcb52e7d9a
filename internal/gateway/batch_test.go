package gateway

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/internal/protocol"
	"github.com/mxgateway/mxgateway/internal/session"
	"github.com/mxgateway/mxgateway/internal/testutil"
)

// TestStreamEventsBatches: with max_batch, queued events come several per
// message, in order, none lost or repeated; a batch never waits with
// max_delay_ms 0, so a lone live event comes at once.
func TestStreamEventsBatches(t *testing.T) {
	g := startGateway(t, Options{}, session.Options{})
	ctx := ctxT(t)
	open, err := g.client.OpenSession(ctx, &mxgatewayv1.OpenSessionRequest{ClientName: "t"})
	if err != nil {
		t.Fatal(err)
	}
	id := open.GetSessionId()
	w := g.worker(0)
	for seq := range uint64(10) {
		w.events <- &mxgatewayv1.Event{Sequence: seq + 1, Family: mxgatewayv1.EventFamily_EVENT_FAMILY_ON_DATA_CHANGE}
	}
	// Wait until the session holds all ten (a plain stream replays them).
	testutil.Eventually(t, 5*time.Second, func() error {
		list, err := g.client.ListSessions(ctx, &mxgatewayv1.ListSessionsRequest{})
		if err != nil {
			return err
		}
		if n := list.GetSessions()[0].GetLastSequence(); n != 10 {
			return fmt.Errorf("last sequence %d", n)
		}
		return nil
	})
	probe, err := g.client.StreamEvents(ctx, &mxgatewayv1.StreamEventsRequest{SessionId: id, AfterSequence: 9})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := probe.Recv(); err != nil || r.GetEvent().GetSequence() != 10 || len(r.GetEvents()) != 0 {
		t.Fatalf("unbatched Recv = %v, %v; want event 10 alone in event", r, err)
	}

	stream, err := g.client.StreamEvents(ctx, &mxgatewayv1.StreamEventsRequest{SessionId: id, MaxBatch: 4})
	if err != nil {
		t.Fatal(err)
	}
	var sizes []int
	var seqs []uint64
	recv := func() {
		t.Helper()
		r, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if r.GetEvent() != nil || r.GetDelayed() {
			t.Fatalf("batched stream sent %v; want events only", r)
		}
		sizes = append(sizes, len(r.GetEvents()))
		for _, ev := range r.GetEvents() {
			if ev.GetSessionId() != id {
				t.Fatalf("event %v not stamped with the session", ev)
			}
			seqs = append(seqs, ev.GetSequence())
		}
	}
	for range 3 {
		recv() // the replayed ten: 4, 4, 2
	}
	w.events <- &mxgatewayv1.Event{Sequence: 11, Family: mxgatewayv1.EventFamily_EVENT_FAMILY_ON_DATA_CHANGE}
	recv()
	if !slices.Equal(sizes, []int{4, 4, 2, 1}) || !slices.Equal(seqs, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}) {
		t.Fatalf("batches of %v carrying %v; want 4 4 2 1 carrying 1..11", sizes, seqs)
	}
}

// TestStreamEventsBatchBounds: batching fields beyond their bounds are
// refused with the field named.
func TestStreamEventsBatchBounds(t *testing.T) {
	g := startGateway(t, Options{}, session.Options{})
	ctx := ctxT(t)
	open, err := g.client.OpenSession(ctx, &mxgatewayv1.OpenSessionRequest{ClientName: "t"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		req   *mxgatewayv1.StreamEventsRequest
		field string
	}{
		{"batch too large", &mxgatewayv1.StreamEventsRequest{MaxBatch: maxBatchEvents + 1}, "max_batch"},
		{"delay too long", &mxgatewayv1.StreamEventsRequest{MaxBatch: 2, MaxDelayMs: maxBatchDelay + 1}, "max_delay_ms"},
		{"delay without batch", &mxgatewayv1.StreamEventsRequest{MaxBatch: 1, MaxDelayMs: 5}, "max_delay_ms"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.SessionId = open.GetSessionId()
			s, err := g.client.StreamEvents(ctx, tc.req)
			if err == nil {
				_, err = s.Recv()
			}
			wantStatus(t, err, codes.InvalidArgument, mxgatewayv1.ReasonInvalidRequest)
			st, _ := status.FromError(err)
			var fields []string
			for _, d := range st.Details() {
				if br, ok := d.(*errdetails.BadRequest); ok {
					for _, v := range br.GetFieldViolations() {
						fields = append(fields, v.GetField())
					}
				}
			}
			if !slices.Contains(fields, tc.field) {
				t.Fatalf("violations %q do not name %q", fields, tc.field)
			}
		})
	}
}

// captureStream records what a sender sends, decoded as a client would.
type captureStream struct {
	grpc.ServerStream
	sent []*mxgatewayv1.StreamEventsResponse
}

func (c *captureStream) SendMsg(m any) error {
	r, ok := m.(*encodedResponse)
	if !ok {
		return fmt.Errorf("sent a %T, not an encoded response", m)
	}
	resp := &mxgatewayv1.StreamEventsResponse{}
	if err := proto.Unmarshal(r.data.Materialize(), resp); err != nil {
		return err
	}
	c.sent = append(c.sent, resp)
	return nil
}

// TestBatchDelayedEventComesAlone: an event older than one already
// batched (held back by a filter) is sent alone and marked delayed, after
// the batch before it.
func TestBatchDelayedEventComesAlone(t *testing.T) {
	cs := &captureStream{}
	fs := &filteredSender{stream: cs, sent: func(*protocol.Event) {}, maxBatch: 4}
	for _, seq := range []uint64{1, 3, 2, 4} {
		if err := fs.send(protocol.EventOf(&mxgatewayv1.Event{Sequence: seq}, 10)); err != nil {
			t.Fatal(err)
		}
	}
	if err := fs.sendBatch(); err != nil {
		t.Fatal(err)
	}
	var got [][]uint64
	var delayed []bool
	for _, m := range cs.sent {
		var seqs []uint64
		if m.GetEvent() != nil {
			seqs = append(seqs, m.GetEvent().GetSequence())
		}
		for _, ev := range m.GetEvents() {
			seqs = append(seqs, ev.GetSequence())
		}
		got, delayed = append(got, seqs), append(delayed, m.GetDelayed())
	}
	want := [][]uint64{{1, 3}, {2}, {4}}
	if len(got) != len(want) || !slices.Equal(got[0], want[0]) || !slices.Equal(got[1], want[1]) || !slices.Equal(got[2], want[2]) ||
		!slices.Equal(delayed, []bool{false, true, false}) || cs.sent[1].GetEvent() == nil {
		t.Fatalf("sent %v (delayed %v); want %v with only the second, a lone event, delayed", got, delayed, want)
	}
}
