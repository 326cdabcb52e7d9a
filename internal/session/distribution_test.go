package session

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/internal/protocol"
	"github.com/mxgateway/mxgateway/internal/testutil"
)

func TestRing(t *testing.T) {
	r := newRing(5, 1<<30)
	at := time.Unix(100, 0)
	for seq := uint64(1); seq <= 3; seq++ {
		if r.push(protocol.EventOf(&mxgatewayv1.Event{Sequence: seq}, 1), 1, at.Add(time.Duration(seq)*time.Second)) != 0 {
			t.Fatalf("push %d evicted with room left", seq)
		}
	}
	if got := seqsOf(r.since(0)); !equalSeqs(got, 1, 2, 3) {
		t.Fatalf("since(0) = %v", got)
	}
	if got := seqsOf(r.since(2)); !equalSeqs(got, 3) {
		t.Fatalf("since(2) = %v", got)
	}
	if got := r.since(3); len(got) != 0 {
		t.Fatalf("since(3) = %v", seqsOf(got))
	}
	evicted := 0
	for seq := uint64(4); seq <= 70; seq++ { // grows past ringInitial? no: size 5 bounds it
		evicted += r.push(protocol.EventOf(&mxgatewayv1.Event{Sequence: seq}, 1), 1, at.Add(time.Duration(seq)*time.Second))
	}
	if r.len() != 5 || evicted != 65 {
		t.Fatalf("len %d evicted %d, want 5 and 65", r.len(), evicted)
	}
	if first, _ := r.firstSeq(); first != 66 {
		t.Fatalf("first = %d, want 66", first)
	}
	if got := seqsOf(r.since(10)); !equalSeqs(got, 66, 67, 68, 69, 70) {
		t.Fatalf("since(10) = %v", got)
	}
	// Age: drop everything received before 69s.
	if n := r.trimBefore(at.Add(69 * time.Second)); n != 3 {
		t.Fatalf("trimBefore dropped %d, want 3", n)
	}
	if got := seqsOf(r.since(0)); !equalSeqs(got, 69, 70) {
		t.Fatalf("after trim since(0) = %v", got)
	}
	r.trimBefore(at.Add(time.Hour))
	if _, ok := r.firstSeq(); ok || r.len() != 0 {
		t.Fatal("ring not empty after trimming everything")
	}
}

func TestRingGrowsInOrder(t *testing.T) {
	r := newRing(1000, 1<<30)
	for seq := uint64(1); seq <= 700; seq++ {
		r.push(protocol.EventOf(&mxgatewayv1.Event{Sequence: seq}, 1), 1, time.Time{})
	}
	got := r.since(0)
	if len(got) != 700 {
		t.Fatalf("len %d", len(got))
	}
	for i, ev := range got {
		if ev.Sequence != uint64(i+1) {
			t.Fatalf("index %d holds %d", i, ev.Sequence)
		}
	}
	if len(r.buf) > 1000 {
		t.Fatalf("buffer grew to %d past the bound", len(r.buf))
	}
}

func seqsOf(evs []*protocol.Event) []uint64 {
	out := make([]uint64, len(evs))
	for i, ev := range evs {
		out[i] = ev.Sequence
	}
	return out
}

func equalSeqs(got []uint64, want ...uint64) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}

func TestReplayThenLive(t *testing.T) {
	h := newHarness(t, Options{})
	s, w := h.open()
	w.emit(t, 1, 2, 3, 4, 5)
	waitLastSeq(t, s, 5)
	sub, err := s.Subscribe(SubscribeRequest{AfterSequence: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	w.emit(t, 6)
	expectSeqs(t, sub, 3, 4, 5, 6)
	ev, _ := next(t, subAfter(t, s, 0))
	if ev.GetSequence() != 1 || ev.GetSessionId() != s.ID() || ev.GetGatewayTime() == nil {
		t.Fatalf("first replayed event %v: want sequence 1 stamped with the session id and gateway time", ev)
	}
}

func subAfter(t *testing.T, s *Session, after uint64) *Subscription {
	t.Helper()
	sub, err := s.Subscribe(SubscribeRequest{AfterSequence: after})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Close)
	return sub
}

func TestSessionAssignsMissingSequences(t *testing.T) {
	h := newHarness(t, Options{})
	s, w := h.open()
	sub := subAfter(t, s, 0)
	w.emit(t, 0, 0, 3, 0)
	expectSeqs(t, sub, 1, 2, 3, 4)
}

func TestLiveOnly(t *testing.T) {
	h := newHarness(t, Options{})
	s, w := h.open()
	w.emit(t, 1, 2)
	waitLastSeq(t, s, 2)
	sub, err := s.Subscribe(SubscribeRequest{LiveOnly: true, AfterSequence: 99})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	w.emit(t, 3)
	expectSeqs(t, sub, 3)
}

func TestAfterSequenceBeyondLast(t *testing.T) {
	h := newHarness(t, Options{})
	s, w := h.open()
	w.emit(t, 1)
	waitLastSeq(t, s, 1)
	if _, err := s.Subscribe(SubscribeRequest{AfterSequence: 2}); !errors.Is(err, ErrAfterSequence) {
		t.Fatalf("Subscribe(after 2) = %v, want ErrAfterSequence", err)
	}
	sub := subAfter(t, s, 1) // exactly the last: nothing to replay, then live
	w.emit(t, 2)
	expectSeqs(t, sub, 2)
}

func TestReplayGapByCount(t *testing.T) {
	h := newHarness(t, Options{ReplaySize: 3})
	s, w := h.open()
	w.emit(t, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
	waitLastSeq(t, s, 10)
	for _, after := range []uint64{0, 2, 6} {
		sub := subAfter(t, s, after)
		ev, err := next(t, sub)
		if err != nil {
			t.Fatal(err)
		}
		gap := ev.GetReplayGap()
		if !ev.GetGatewayGenerated() || ev.GetFamily() != mxgatewayv1.EventFamily_EVENT_FAMILY_REPLAY_GAP ||
			ev.GetSequence() != 8 || gap.GetRequestedAfterSequence() != after || gap.GetFirstAvailableSequence() != 8 || gap.GetReason() == "" {
			t.Fatalf("after %d: first event %v, want a gap marker to 8", after, ev)
		}
		expectSeqs(t, sub, 8, 9, 10)
	}
	sub := subAfter(t, s, 7) // the ring reaches back exactly: no marker
	expectSeqs(t, sub, 8, 9, 10)
}

func TestReplayGapByAge(t *testing.T) {
	clk := newFakeClock()
	h := newHarness(t, Options{Now: clk.Now, ReplayAge: time.Minute})
	s, w := h.open()
	w.emit(t, 1, 2)
	waitLastSeq(t, s, 2)
	clk.Add(2 * time.Minute)
	sub := subAfter(t, s, 0)
	ev, _ := next(t, sub)
	if ev.GetReplayGap().GetFirstAvailableSequence() != 3 || ev.GetSequence() != 3 {
		t.Fatalf("first event %v, want a gap marker to 3 (ring aged out)", ev)
	}
	w.emit(t, 3)
	expectSeqs(t, sub, 3)
}

// TestResumeNoGapNoDuplicate subscribes at arbitrary moments while the pump
// delivers, each subscriber resuming where a previous one stopped; every
// subscriber must see each sequence exactly once and in order.
func TestResumeNoGapNoDuplicate(t *testing.T) {
	const total = 900
	h := newHarness(t, Options{ReplaySize: total, SubscriberQueue: total, MaxSubscribers: 64})
	s, w := h.open()
	var wg sync.WaitGroup
	wg.Go(func() {
		for seq := uint64(1); seq <= total; seq++ {
			w.emit(t, seq)
		}
	})
	// A chain of subscribers: each reads a few events, detaches and the
	// next resumes after the last one seen.
	last := uint64(0)
	for last < total {
		sub, err := s.Subscribe(SubscribeRequest{AfterSequence: last})
		if err != nil {
			t.Fatal(err)
		}
		for range 37 {
			if last == total {
				break
			}
			ev, err := next(t, sub)
			if err != nil {
				t.Fatal(err)
			}
			if ev.GetSequence() != last+1 {
				t.Fatalf("resumed after %d, got %d", last, ev.GetSequence())
			}
			last = ev.GetSequence()
		}
		sub.Close()
	}
	wg.Wait()
}

func TestSubscriberLimit(t *testing.T) {
	h := newHarness(t, Options{MaxSubscribers: 2})
	s, _ := h.open()
	a := subAfter(t, s, 0)
	subAfter(t, s, 0)
	if _, err := s.Subscribe(SubscribeRequest{}); !errors.Is(err, ErrSubscriberLimit) {
		t.Fatalf("third Subscribe = %v, want ErrSubscriberLimit", err)
	}
	a.Close()
	subAfter(t, s, 0)
	if got := s.Info().Subscribers; got != 2 {
		t.Fatalf("Subscribers = %d", got)
	}
}

func TestSlowConsumerDisconnect(t *testing.T) {
	slow := 0
	var mu sync.Mutex
	h := newHarness(t, Options{SubscriberQueue: 2, SubscriberStallTimeout: time.Millisecond, SlowConsumerPolicy: PolicyDisconnectSubscriber, Hooks: Hooks{SlowConsumer: func(p SlowConsumerPolicy) {
		mu.Lock()
		slow++
		mu.Unlock()
	}}})
	s, w := h.open()
	stalled := subAfter(t, s, 0)
	fast := subAfter(t, s, 0)
	w.emit(t, 1, 2)
	expectSeqs(t, fast, 1, 2)
	w.emit(t, 3) // stalled's queue (1, 2) is full
	expectSeqs(t, fast, 3)
	_, err := next(t, stalled)
	if !errors.Is(err, ErrSlowConsumer) {
		t.Fatalf("stalled subscriber got %v, want ErrSlowConsumer after the stall timeout", err)
	}
	info := s.Info()
	if info.State != mxgatewayv1.SessionState_SESSION_STATE_READY || info.Subscribers != 1 || info.SlowConsumers != 1 {
		t.Fatalf("Info = %+v: the session must stay ready with one subscriber", info)
	}
	// The pump runs hooks after it has fanned the event out, so the hook may
	// trail the subscribers by a moment.
	testutil.Eventually(t, 5*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if slow != 1 {
			return fmt.Errorf("SlowConsumer hook ran %d times", slow)
		}
		return nil
	})
	// The disconnected client resumes from the ring with no gap.
	expectSeqs(t, subAfter(t, s, 0), 1, 2, 3)
}

func TestSlowConsumerFaultsSession(t *testing.T) {
	h := newHarness(t, Options{SubscriberQueue: 2, SubscriberStallTimeout: time.Millisecond, SlowConsumerPolicy: PolicyFaultSession})
	s, w := h.open()
	stalled := subAfter(t, s, 0)
	w.emit(t, 1, 2, 3)
	// Read nothing until the pump has overflowed the queue: reading first
	// would make room for event 3 and no fault would happen.
	testutil.Eventually(t, 5*time.Second, func() error {
		if st := s.State(); st != mxgatewayv1.SessionState_SESSION_STATE_FAULTED {
			return fmt.Errorf("state %v", st)
		}
		return nil
	})
	_, err := func() (*mxgatewayv1.Event, error) {
		expectSeqs(t, stalled, 1, 2) // what was queued before the fault
		return next(t, stalled)
	}()
	if !errors.Is(err, ErrSlowConsumer) || !errors.Is(err, ErrWorkerFailed) {
		t.Fatalf("stream end = %v, want a fault caused by ErrSlowConsumer", err)
	}
	if s.State() != mxgatewayv1.SessionState_SESSION_STATE_FAULTED {
		t.Fatalf("state %v, want FAULTED", s.State())
	}
	<-w.Done()
	if w.killCount() == 0 {
		t.Fatal("worker not killed")
	}
	if _, err := s.Invoke(context.Background(), &mxgatewayv1.Command{}, 0); !errors.Is(err, ErrFaulted) {
		t.Fatalf("Invoke = %v, want ErrFaulted", err)
	}
}

func TestConflation(t *testing.T) {
	h := newHarness(t, Options{SubscriberQueue: 4})
	s, w := h.open()
	sub, err := s.Subscribe(SubscribeRequest{Conflate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	w.send(t, dataChange(1, 1, 10, 100)) // item 10, superseded by 4
	w.send(t, dataChange(2, 1, 20, 200)) // item 20
	w.send(t, writeComplete(3, 1, 10))   // never conflated
	w.send(t, dataChange(4, 1, 10, 101)) // item 10 again
	w.send(t, dataChange(5, 2, 10, 300)) // same item handle, other server handle
	waitLastSeq(t, s, 5)
	var got []uint64
	for range 4 {
		ev, err := next(t, sub)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ev.Sequence)
	}
	if !equalSeqs(got, 2, 3, 4, 5) || sub.Conflated() != 1 {
		t.Fatalf("delivered %v with %d conflated; want 2 3 4 5 and 1", got, sub.Conflated())
	}
	if s.State() != mxgatewayv1.SessionState_SESSION_STATE_READY {
		t.Fatal("conflation must not trip the slow consumer policy")
	}
}

// TestConflationBoundsStorm: a stalled conflating subscriber on one item
// never overflows and finally sees the latest value.
func TestConflationBoundsStorm(t *testing.T) {
	h := newHarness(t, Options{SubscriberQueue: 2, SubscriberStallTimeout: time.Millisecond, SlowConsumerPolicy: PolicyFaultSession})
	s, w := h.open()
	sub, err := s.Subscribe(SubscribeRequest{Conflate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for seq := uint64(1); seq <= 500; seq++ {
		w.send(t, dataChange(seq, 1, 1+int32(seq%2), int32(seq)))
	}
	waitLastSeq(t, s, 500)
	expectSeqs(t, sub, 499, 500)
	sub.mu.Lock()
	n := cap(sub.q)
	sub.mu.Unlock()
	if n > 64 {
		t.Fatalf("queue storage grew to %d slots for 2 items", n)
	}
	if s.State() != mxgatewayv1.SessionState_SESSION_STATE_READY {
		t.Fatal("session faulted")
	}
}

func TestSequenceViolationFaults(t *testing.T) {
	h := newHarness(t, Options{})
	s, w := h.open()
	sub := subAfter(t, s, 0)
	w.emit(t, 1, 3)
	expectSeqs(t, sub, 1)
	if _, err := next(t, sub); !errors.Is(err, ErrSequence) {
		t.Fatalf("stream end = %v, want ErrSequence", err)
	}
	<-w.Done()
	if w.killCount() != 1 {
		t.Fatalf("kills = %d", w.killCount())
	}
}

func TestSessionCloseEndsStreamsCleanly(t *testing.T) {
	h := newHarness(t, Options{})
	s, w := h.open()
	sub := subAfter(t, s, 0)
	w.emit(t, 1)
	waitLastSeq(t, s, 1)
	s.Close(context.Background())
	expectSeqs(t, sub, 1)
	if _, err := next(t, sub); !errors.Is(err, ErrClosed) {
		t.Fatalf("stream end = %v, want ErrClosed", err)
	}
}

func TestNextHonoursContext(t *testing.T) {
	h := newHarness(t, Options{})
	s, _ := h.open()
	sub := subAfter(t, s, 0)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := sub.Next(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Next = %v", err)
	}
}

// TestDrainTakesQueuedEventsInOrder: Drain returns what Next would, replay
// before live, skipping conflated slots, never waiting, and leaves the
// terminal error to Next.
func TestDrainTakesQueuedEventsInOrder(t *testing.T) {
	h := newHarness(t, Options{})
	s, w := h.open()
	w.emit(t, 1, 2, 3)
	waitLastSeq(t, s, 3)
	sub, err := s.Subscribe(SubscribeRequest{AfterSequence: 1, Conflate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	w.send(t, dataChange(4, 1, 10, 100)) // superseded by 6
	w.send(t, dataChange(5, 1, 20, 200))
	w.send(t, dataChange(6, 1, 10, 101))
	waitLastSeq(t, s, 6)
	var got []uint64
	for _, ev := range sub.Drain(nil, 3) {
		got = append(got, ev.Sequence)
	}
	if !equalSeqs(got, 2, 3, 5) {
		t.Fatalf("first drain %v; want 2 3 5", got)
	}
	got = got[:0]
	for _, ev := range sub.Drain(nil, 10) {
		got = append(got, ev.Sequence)
	}
	if !equalSeqs(got, 6) {
		t.Fatalf("second drain %v; want 6", got)
	}
	if evs := sub.Drain(nil, 10); len(evs) != 0 {
		t.Fatalf("drain of an empty queue returned %d events", len(evs))
	}
	s.Close(t.Context())
	if _, err := next(t, sub); !errors.Is(err, ErrClosed) {
		t.Fatalf("after close, Next returned %v; want ErrClosed", err)
	}
}
