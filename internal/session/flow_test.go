package session

import (
	"strings"
	"testing"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
)

// TestFlowControlWaitsForSubscriber: a subscriber whose queue is full but
// that keeps reading is waited for, not treated as slow: a burst far larger
// than its queue arrives whole and in order, and the session stays READY.
func TestFlowControlWaitsForSubscriber(t *testing.T) {
	h := newHarness(t, Options{SubscriberQueue: 2, SubscriberStallTimeout: time.Hour})
	s, w := h.open()
	sub := subAfter(t, s, 0)
	const n = 5000
	go func() {
		for seq := uint64(1); seq <= n; seq++ {
			w.send(t, dataChange(seq, 1, 1, int32(seq)))
		}
	}()
	for seq := uint64(1); seq <= n; seq++ {
		expectSeqs(t, sub, seq)
	}
	if info := s.Info(); info.State != mxgatewayv1.SessionState_SESSION_STATE_READY || info.SlowConsumers != 0 {
		t.Fatalf("Info = %+v, want READY with no slow consumer", info)
	}
}

// TestReplayRingBoundedByBytes: a writer of 8 MiB values against a 64 MiB
// ring bound. The ring never holds more than its bound (but always the
// newest value), a subscriber that reads gets every value in order, and the
// session does not fault.
func TestReplayRingBoundedByBytes(t *testing.T) {
	const (
		value = 8 << 20
		bound = 64 << 20
		n     = 24 // 192 MiB written
	)
	h := newHarness(t, Options{ReplayBytes: bound, SubscriberQueueBytes: bound})
	s, w := h.open()
	sub := subAfter(t, s, 0)
	big := strings.Repeat("x", value)
	go func() {
		for seq := uint64(1); seq <= n; seq++ {
			ev := dataChange(seq, 1, 1, 0)
			ev.GetDataChange().Value = &mxgatewayv1.MxValue{Kind: &mxgatewayv1.MxValue_StringValue{StringValue: big}}
			w.send(t, ev)
		}
	}()
	peak := int64(0)
	for seq := uint64(1); seq <= n; seq++ {
		ev, err := next(t, sub)
		if err != nil || ev.GetSequence() != seq || len(ev.GetDataChange().GetValue().GetStringValue()) != value {
			t.Fatalf("event %d: got sequence %d (%v)", seq, ev.GetSequence(), err)
		}
		s.mu.Lock()
		held, count := s.ring.heldBytes(), s.ring.len()
		s.mu.Unlock()
		if held > bound || count == 0 {
			t.Fatalf("ring holds %d events, %d bytes, over the %d-byte bound", count, held, bound)
		}
		peak = max(peak, held)
	}
	if info := s.Info(); info.State != mxgatewayv1.SessionState_SESSION_STATE_READY || info.SlowConsumers != 0 {
		t.Fatalf("Info = %+v, want READY with no slow consumer", info)
	}
	// A late subscriber replays what the ring kept: the newest values, each
	// whole, contiguous up to the last.
	late := subAfter(t, s, 0)
	first, err := next(t, late)
	if err != nil {
		t.Fatal(err)
	}
	if first.GetFamily() != mxgatewayv1.EventFamily_EVENT_FAMILY_REPLAY_GAP {
		t.Fatalf("late subscriber's first event is %v, want a replay gap", first.GetFamily())
	}
	from := first.GetReplayGap().GetFirstAvailableSequence()
	if held := int64(n-from+1) * value; held > bound {
		t.Fatalf("ring kept %d values (%d bytes), over its bound", n-from+1, held)
	}
	for seq := from; seq <= n; seq++ {
		expectSeqs(t, late, seq)
	}
	t.Logf("ring peak %d bytes (bound %d) for %d values of %d bytes", peak, bound, n, value)
}
