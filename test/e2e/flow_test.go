package e2e

import (
	"fmt"
	"sync"
	"testing"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/test/e2e/harness"
)

// plantRefs returns n references of the demo Galaxy (repeated: MXAccess
// gives every AddItem its own handle and first value).
func plantRefs(n int) []string {
	base := []string{"Tank1.Level", "Tank1.Volume", "Tank1.Material", "Pump1.StartCount", "TIC101.SP", "TIC101.PV", "Valve1.Position"}
	refs := make([]string, n)
	for i := range refs {
		refs[i] = base[i%len(base)]
	}
	return refs
}

// subscribeBulk subscribes refs and returns the item handles, failing the
// test unless every entry was advised.
func (s *client) subscribeBulk(refs []string) ([]int32, error) {
	r, err := s.invokeErr(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_SubscribeBulk{SubscribeBulk: &mxgatewayv1.SubscribeBulkCommand{
		ServerHandle: s.hlmx, ItemDefinitions: refs}}})
	if err != nil {
		return nil, err
	}
	entries := r.GetBulk().GetEntries()
	if len(entries) != len(refs) {
		return nil, fmt.Errorf("SubscribeBulk: %d entries for %d references", len(entries), len(refs))
	}
	hs := make([]int32, len(entries))
	for i, e := range entries {
		if e.GetStatus() != mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK || e.GetItemHandle() <= 0 {
			return nil, fmt.Errorf("SubscribeBulk entry %d: %v", i, e)
		}
		hs[i] = e.GetItemHandle()
	}
	return hs, nil
}

// firstValues reads ev until every handle in want had a data change,
// checking that sequences are contiguous from the first event read.
func firstValues(t *testing.T, ev *stream, hlmx int32, want map[int32]bool) {
	t.Helper()
	var last uint64
	for len(want) > 0 {
		e := ev.next()
		if last != 0 && e.GetSequence() != last+1 {
			t.Fatalf("sequence %d after %d", e.GetSequence(), last)
		}
		last = e.GetSequence()
		if dc := e.GetDataChange(); dc != nil && dc.GetServerHandle() == hlmx {
			delete(want, dc.GetItemHandle())
		}
	}
}

func wantReady(t *testing.T, s *client) {
	t.Helper()
	if in := s.info(); in.GetState() != mxgatewayv1.SessionState_SESSION_STATE_READY {
		t.Fatalf("session %v (%s), want READY", in.GetState(), in.GetFaultReason())
	}
}

// TestFlowConcurrentBulkSubscribes: two concurrent 20,000-item
// SubscribeBulk calls on one session, with the default bounds. Their 40,000
// first values arrive in one burst, all of them, in sequence, and the session
// stays READY.
func TestFlowConcurrentBulkSubscribes(t *testing.T) {
	t.Parallel()
	g := harness.Start(t)
	s := openSession(t, g.Client(), "bulk burst")
	ev := s.streamEvents(&mxgatewayv1.StreamEventsRequest{})
	s.hlmx = s.register()
	const n = 20000
	var wg sync.WaitGroup
	handles := make([][]int32, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			handles[i], errs[i] = s.subscribeBulk(plantRefs(n))
		}()
	}
	wg.Wait()
	want := make(map[int32]bool, 2*n)
	for i := range 2 {
		if errs[i] != nil {
			t.Fatalf("SubscribeBulk %d: %v", i, errs[i])
		}
		for _, h := range handles[i] {
			want[h] = true
		}
	}
	if len(want) != 2*n {
		t.Fatalf("%d distinct handles, want %d", len(want), 2*n)
	}
	firstValues(t, ev, s.hlmx, want)
	wantReady(t, s)
}

// TestFlowReReportOfAdvisedItems: a plant of 50,000 advised items, then a
// platform-reconnect style re-report: a burst of 50,000 changes at once (the
// simulator's storm stands in for the re-report). Every change arrives, in
// order, and the session stays READY.
func TestFlowReReportOfAdvisedItems(t *testing.T) {
	t.Parallel()
	g := harness.Start(t)
	s := openSession(t, g.Client(), "re-report")
	ev := s.streamEvents(&mxgatewayv1.StreamEventsRequest{})
	s.hlmx = s.register()
	const n = 50000
	hs, err := s.subscribeBulk(plantRefs(n))
	if err != nil {
		t.Fatal(err)
	}
	want := make(map[int32]bool, n)
	for _, h := range hs {
		want[h] = true
	}
	firstValues(t, ev, s.hlmx, want)

	h, final := storm(t, s, ev, n, false)
	next := int32(-1)
	ev.waitFor("the re-report's last value", func(e *mxgatewayv1.Event) bool {
		if !dataChangeOf(s.hlmx, h)(e) {
			return false
		}
		v := e.GetDataChange().GetValue().GetInt32Value()
		if next >= 0 && v != next {
			t.Fatalf("storm value %d, want %d: lost or reordered", v, next)
		}
		next = v + 1
		return v == final
	})
	wantReady(t, s)
}
