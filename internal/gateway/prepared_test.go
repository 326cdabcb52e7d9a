package gateway

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/internal/session"
	"github.com/mxgateway/mxgateway/internal/testutil"
)

// countingPreparer encodes nothing; it counts calls and reports a size.
type countingPreparer struct{ n int }

func (p *countingPreparer) size(resp *mxgatewayv1.StreamEventsResponse) int {
	return len(resp.GetEvent().GetSessionId())
}

func (p *countingPreparer) prepare(*mxgatewayv1.StreamEventsResponse, *grpc.PreparedMsg) error {
	p.n++
	return nil
}

// TestPreparedCacheSharesOneEncoding: an event is encoded once for all
// streams; a later event in the same slot, or one too large to keep, is
// not served a stale or shared encoding.
func TestPreparedCacheSharesOneEncoding(t *testing.T) {
	var c preparedCache
	p := &countingPreparer{}
	ev := &mxgatewayv1.Event{Sequence: 7, SessionId: "s"}
	a, err := c.get(ev, p)
	if err != nil || a == nil {
		t.Fatalf("first get = %v, %v", a, err)
	}
	b, _ := c.get(ev, p)
	if b != a || p.n != 1 || c.hits.Load() != 1 || c.encodes.Load() != 1 {
		t.Fatalf("second get: same message %v, %d encodes, %d hits; want the same message, 1 encode, 1 hit", b == a, p.n, c.hits.Load())
	}
	later := &mxgatewayv1.Event{Sequence: 7 + preparedSlots, SessionId: "s"}
	if m, _ := c.get(later, p); m == a || p.n != 2 {
		t.Fatalf("an event in a reused slot got the old encoding (%d encodes)", p.n)
	}
	big := &mxgatewayv1.Event{Sequence: 8, SessionId: strings.Repeat("x", maxPreparedBytes+1)}
	if m, err := c.get(big, p); m != nil || err != nil || p.n != 2 {
		t.Fatalf("an event over %d bytes: %v, %v after %d encodes; want nil, nil and no encode", maxPreparedBytes, m, err, p.n)
	}
}

// TestPreparedCachesOnlyWhileShared: a session's cache exists while at
// least two of its streams are attached.
func TestPreparedCachesOnlyWhileShared(t *testing.T) {
	var pc preparedCaches
	s := &session.Session{}
	a, detachA := pc.attach(s)
	if a.current() != nil {
		t.Fatal("a lone stream has a shared cache")
	}
	b, detachB := pc.attach(s)
	if a.current() == nil || a.current() != b.current() {
		t.Fatal("two streams of a session do not share one cache")
	}
	detachB()
	detachB()
	if a.current() != nil {
		t.Fatal("the cache outlived the second stream")
	}
	detachA()
	if len(pc.m) != 0 {
		t.Fatalf("%d sessions still registered after every stream left", len(pc.m))
	}
}

// TestStreamsShareEncodings: two unbatched streams of one session receive
// every event, each sent through the shared encodings.
func TestStreamsShareEncodings(t *testing.T) {
	g := startGateway(t, Options{}, session.Options{})
	ctx := ctxT(t)
	open, err := g.client.OpenSession(ctx, &mxgatewayv1.OpenSessionRequest{ClientName: "t"})
	if err != nil {
		t.Fatal(err)
	}
	id := open.GetSessionId()
	var streams []grpc.ServerStreamingClient[mxgatewayv1.StreamEventsResponse]
	for range 2 {
		st, err := g.client.StreamEvents(ctx, &mxgatewayv1.StreamEventsRequest{SessionId: id})
		if err == nil {
			_, err = st.Header()
		}
		if err != nil {
			t.Fatal(err)
		}
		streams = append(streams, st)
	}
	const n = 50
	w := g.worker(0)
	go func() {
		for seq := range uint64(n) {
			w.events <- &mxgatewayv1.Event{Sequence: seq + 1, Family: mxgatewayv1.EventFamily_EVENT_FAMILY_ON_DATA_CHANGE,
				Body: &mxgatewayv1.Event_DataChange{DataChange: &mxgatewayv1.OnDataChange{ItemHandle: int32(seq)}}}
		}
	}()
	for i, st := range streams {
		for seq := range uint64(n) {
			r, err := st.Recv()
			if err != nil {
				t.Fatalf("stream %d: %v", i, err)
			}
			ev := r.GetEvent()
			if ev.GetSequence() != seq+1 || ev.GetSessionId() != id || ev.GetDataChange().GetItemHandle() != int32(seq) || r.GetDelayed() {
				t.Fatalf("stream %d: got %v, want event %d of %s", i, r, seq+1, id)
			}
		}
	}
	s, err := g.srv.service.sessions.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	g.srv.service.prepared.mu.Lock()
	c := g.srv.service.prepared.m[s].current()
	g.srv.service.prepared.mu.Unlock()
	if c == nil {
		t.Fatal("no shared cache with two streams attached")
	}
	if got := c.encodes.Load() + c.hits.Load(); got != 2*n {
		t.Fatalf("%d sends went through the shared encodings, want %d", got, 2*n)
	}
}

// TestSharedSendsKeepWriteDeadline: sends of shared encodings are bounded
// by the write timeout like any other: two streams that stop reading both
// end, and the session stays READY.
func TestSharedSendsKeepWriteDeadline(t *testing.T) {
	g := startGateway(t, Options{StreamWriteTimeout: 200 * time.Millisecond}, session.Options{},
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	ctx := ctxT(t)
	open, err := g.client.OpenSession(ctx, &mxgatewayv1.OpenSessionRequest{ClientName: "stuck"})
	if err != nil {
		t.Fatal(err)
	}
	var streams []grpc.ServerStreamingClient[mxgatewayv1.StreamEventsResponse]
	for range 2 {
		st, err := g.client.StreamEvents(ctx, &mxgatewayv1.StreamEventsRequest{SessionId: open.GetSessionId()})
		if err == nil {
			_, err = st.Header()
		}
		if err != nil {
			t.Fatal(err)
		}
		streams = append(streams, st)
	}
	const n = 1000 // ~1 MiB each, far more than the windows
	w := g.worker(0)
	for i := range uint64(n) {
		w.events <- bigEvent(i + 1)
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		list, err := g.client.ListSessions(ctx, &mxgatewayv1.ListSessionsRequest{})
		if err != nil || len(list.GetSessions()) != 1 {
			return fmt.Errorf("ListSessions = %v, %v", list, err)
		}
		if in := list.GetSessions()[0]; in.GetSubscribers() != 0 || in.GetState() != mxgatewayv1.SessionState_SESSION_STATE_READY {
			return fmt.Errorf("%d subscribers, state %v; want 0, READY", in.GetSubscribers(), in.GetState())
		}
		return nil
	})
	for i, st := range streams {
		for {
			if _, err := st.Recv(); err != nil {
				if status.Code(err) != codes.ResourceExhausted || reasonOf(t, err) != mxgatewayv1.ReasonSlowConsumer {
					t.Fatalf("stream %d ended with %v; want RESOURCE_EXHAUSTED SLOW_CONSUMER", i, err)
				}
				break
			}
		}
	}
}
