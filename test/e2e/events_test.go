package e2e

import (
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	mxgatewayv1grpc "github.com/mxgateway/mxgateway/api/mxgateway/v1/mxgatewayv1grpc"
	"github.com/mxgateway/mxgateway/test/e2e/harness"
)

// storm subscribes Sim.StormValue, waits for its first value on ev and
// triggers a storm of n changes. It returns the item handle and the value
// the storm ends at. With mayFault the storm may fault the session before
// the triggering write's reply arrives (UNAVAILABLE is then fine).
func storm(t *testing.T, s *client, ev *stream, n int32, mayFault bool) (int32, int32) {
	t.Helper()
	h := s.subscribe("Sim.StormValue")
	first := ev.waitFor("first value of Sim.StormValue", dataChangeOf(s.hlmx, h))
	trigger := s.subscribe("Sim.Storm")
	r, err := s.invokeErr(writeCmd(s.hlmx, trigger, intValue(n)))
	switch {
	case err != nil && !(mayFault && status.Code(err) == codes.Unavailable):
		t.Fatalf("storm write: %v", err)
	case err == nil && r.GetStatus() != mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK:
		t.Fatalf("storm write: %v", r)
	}
	return h, first.GetDataChange().GetValue().GetInt32Value() + n
}

// lastSequence waits until the session's event sequence stops moving after
// at least min events, and returns it.
func settledSequence(t *testing.T, s *client, min uint64) uint64 {
	t.Helper()
	var last uint64
	eventually(t, "events settle", func() error {
		seq := s.info().GetLastSequence()
		if seq < min || seq != last {
			last = seq
			return fmt.Errorf("sequence %d (want >= %d and stable)", seq, min)
		}
		return nil
	})
	return last
}

// TestDetachGraceAndResume: an attached stream keeps the session alive past
// its lease; after the stream leaves, the session survives the detach grace
// and a new stream resumes with after_sequence with no gap and no duplicate.
func TestDetachGraceAndResume(t *testing.T) {
	t.Parallel()
	const lease = time.Second
	g := harness.Start(t, "--lease=1s", "--detach-grace=4s")
	s := openSession(t, g.Client(), "resume")
	a := s.streamEvents(&mxgatewayv1.StreamEventsRequest{})
	s.register()

	time.Sleep(lease + lease/2) // no calls, but the stream is attached
	if s.info() == nil {
		t.Fatal("session expired although a stream was attached")
	}

	h, final := storm(t, s, a, 300, false)
	var seen uint64
	for range 40 {
		ev := a.next()
		if seen != 0 && ev.GetSequence() != seen+1 {
			t.Fatalf("live stream: sequence %d after %d", ev.GetSequence(), seen)
		}
		seen = ev.GetSequence()
	}
	a.stop()

	time.Sleep(lease + lease/2) // past the lease, within the detach grace
	if s.info() == nil {
		t.Fatal("session expired within the detach grace")
	}
	b := s.streamEvents(&mxgatewayv1.StreamEventsRequest{AfterSequence: seen})
	next := seen + 1
	b.waitFor("the storm's last value", func(ev *mxgatewayv1.Event) bool {
		if ev.GetGatewayGenerated() || ev.GetSequence() != next {
			t.Fatalf("resumed stream: got sequence %d (generated=%v), want %d", ev.GetSequence(), ev.GetGatewayGenerated(), next)
		}
		next++
		return dataChangeOf(s.hlmx, h)(ev) && ev.GetDataChange().GetValue().GetInt32Value() == final
	})
	b.stop()
	// With no stream and no calls the session ends after the grace.
	eventually(t, "expiry after the detach grace", func() error {
		if in := s.info(); in != nil {
			return fmt.Errorf("still listed: %v", in.GetState())
		}
		return nil
	})
}

// TestReplayGap: when the ring no longer reaches back, the first message is
// the gateway's replay-gap marker, followed by contiguous events.
func TestReplayGap(t *testing.T) {
	t.Parallel()
	g := harness.Start(t, "--replay-size=5")
	s := openSession(t, g.Client(), "gap")
	live := s.streamEvents(&mxgatewayv1.StreamEventsRequest{LiveOnly: true})
	s.register()
	storm(t, s, live, 50, false)
	last := settledSequence(t, s, 50)
	live.stop()

	b := s.streamEvents(&mxgatewayv1.StreamEventsRequest{AfterSequence: 2})
	marker := b.next()
	gap := marker.GetReplayGap()
	if !marker.GetGatewayGenerated() || marker.GetFamily() != mxgatewayv1.EventFamily_EVENT_FAMILY_REPLAY_GAP ||
		gap.GetRequestedAfterSequence() != 2 || gap.GetFirstAvailableSequence() != last-4 || marker.GetSequence() != last-4 {
		t.Fatalf("first message %v, want a replay gap marker from 2 to %d", marker, last-4)
	}
	var evs []*mxgatewayv1.Event
	for range 5 {
		evs = append(evs, b.next())
	}
	checkContiguous(t, evs, last-4)
}

// slowSetup opens a session with two subscribers: a conflating one that
// keeps up on the default connection, and a stalled one on a connection
// with minimal HTTP/2 windows that never reads. Then it storms.
func slowSetup(t *testing.T, g *harness.Gateway, mayFault bool) (s *client, fast *stream, stalled grpc.ServerStreamingClient[mxgatewayv1.StreamEventsResponse], h, final int32) {
	t.Helper()
	s = openSession(t, g.Client(), "slow")
	fast = s.streamEvents(&mxgatewayv1.StreamEventsRequest{Conflate: true})
	conn := g.Dial(t, g.AdminKey, grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	slowClient := &client{t: t, c: mxgatewayv1grpc.NewGatewayClient(conn), id: s.id}
	stalled, _ = slowClient.rawStream(&mxgatewayv1.StreamEventsRequest{})
	s.register()
	h, final = storm(t, s, fast, 8000, mayFault)
	return s, fast, stalled, h, final
}

// drain reads a stalled stream to its end and checks that what it got was
// contiguous.
func drain(t *testing.T, st grpc.ServerStreamingClient[mxgatewayv1.StreamEventsResponse]) (uint64, error) {
	t.Helper()
	var last uint64
	for {
		resp, err := st.Recv()
		if err != nil {
			return last, err
		}
		seq := resp.GetEvent().GetSequence()
		if last != 0 && seq != last+1 {
			t.Fatalf("stalled stream: sequence %d after %d", seq, last)
		}
		last = seq
	}
}

// TestSlowSubscriberDisconnected: under disconnect-subscriber the stalled
// subscriber is cut off with SLOW_CONSUMER, everyone else carries on, and
// the cut-off client resumes from the ring without a gap.
func TestSlowSubscriberDisconnected(t *testing.T) {
	t.Parallel()
	g := harness.Start(t, "--subscriber-queue=16", "--subscriber-stall-timeout=100ms", "--slow-consumer-policy=disconnect-subscriber", "--replay-size=100000")
	s, fast, stalled, h, final := slowSetup(t, g, false)
	eventually(t, "slow subscriber disconnected", func() error {
		if n := s.info().GetSubscribers(); n != 1 {
			return fmt.Errorf("%d subscribers", n)
		}
		return nil
	})
	got, err := drain(t, stalled)
	wantCode(t, err, codes.ResourceExhausted, mxgatewayv1.ReasonSlowConsumer)

	// The conflating subscriber was not affected and sees the end.
	fast.waitFor("the storm's last value", func(ev *mxgatewayv1.Event) bool {
		return dataChangeOf(s.hlmx, h)(ev) && ev.GetDataChange().GetValue().GetInt32Value() == final
	})
	if st := s.info().GetState(); st != mxgatewayv1.SessionState_SESSION_STATE_READY {
		t.Fatalf("session state %v, want READY", st)
	}
	last := settledSequence(t, s, got+1)

	// Resume where the stalled stream stopped.
	r := s.streamEvents(&mxgatewayv1.StreamEventsRequest{AfterSequence: got})
	next := got + 1
	r.waitFor(fmt.Sprintf("sequence %d", last), func(ev *mxgatewayv1.Event) bool {
		if ev.GetSequence() != next {
			t.Fatalf("resume after %d: got %d, want %d", got, ev.GetSequence(), next)
		}
		next++
		return ev.GetSequence() == last
	})
}

// TestSlowSubscriberFaultsSession: under fault-session a stalled subscriber
// faults the whole session and its worker is killed.
func TestSlowSubscriberFaultsSession(t *testing.T) {
	t.Parallel()
	g := harness.Start(t, "--subscriber-queue=16", "--subscriber-stall-timeout=100ms", "--slow-consumer-policy=fault-session")
	s, fast, stalled, _, _ := slowSetup(t, g, true)
	_, err := fast.end()
	wantCode(t, err, codes.ResourceExhausted, mxgatewayv1.ReasonSlowConsumer)
	_, err = drain(t, stalled)
	wantCode(t, err, codes.ResourceExhausted, mxgatewayv1.ReasonSlowConsumer)
	s.wantFaultedAndGone()
	_, err = s.invokeErr(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Register{Register: &mxgatewayv1.RegisterCommand{}}})
	wantCode(t, err, codes.FailedPrecondition, mxgatewayv1.ReasonSessionFaulted)
	eventually(t, "worker killed", func() error {
		if pidAlive(s.pid) {
			return fmt.Errorf("worker %d alive", s.pid)
		}
		return nil
	})
}

// TestBatchedStream: a stream with max_batch gets the same contiguous
// events as one without, several per message; a replay that is all queued
// fills whole batches.
func TestBatchedStream(t *testing.T) {
	t.Parallel()
	g := harness.Start(t)
	s := openSession(t, g.Client(), "batched")
	live := s.streamEvents(&mxgatewayv1.StreamEventsRequest{})
	s.register()
	h, final := storm(t, s, live, 1000, false)
	live.waitFor("the storm's last value", func(ev *mxgatewayv1.Event) bool {
		return dataChangeOf(s.hlmx, h)(ev) && ev.GetDataChange().GetValue().GetInt32Value() == final
	})
	last := settledSequence(t, s, 1000)

	const batch = 128
	st, cancel := s.rawStream(&mxgatewayv1.StreamEventsRequest{MaxBatch: batch})
	defer cancel()
	var got []*mxgatewayv1.Event
	var sizes []int
	for uint64(len(got)) < last {
		resp, err := st.Recv()
		if err != nil {
			t.Fatalf("after %d events: %v", len(got), err)
		}
		if resp.GetEvent() != nil {
			t.Fatalf("batched stream sent a lone event %v", resp.GetEvent())
		}
		sizes = append(sizes, len(resp.GetEvents()))
		got = append(got, resp.GetEvents()...)
	}
	checkContiguous(t, got, 1)
	for i, n := range sizes[:len(sizes)-1] {
		if n != batch {
			t.Fatalf("replay batch %d carries %d events, want %d (sizes %v)", i, n, batch, sizes)
		}
	}
}
