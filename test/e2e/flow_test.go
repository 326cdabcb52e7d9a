package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	mxgatewayv1grpc "github.com/mxgateway/mxgateway/api/mxgateway/v1/mxgatewayv1grpc"
	"github.com/mxgateway/mxgateway/internal/testutil"
	"github.com/mxgateway/mxgateway/test/e2e/harness"
)

// plantRefs returns n references of the demo Galaxy (repeated: MXAccess
// gives every AddItem its own handle and first value). They have no
// generator, so the burst is exactly the first values.
func plantRefs(n int) []string {
	base := []string{"Tank1.Volume", "Tank1.Material", "Pump1.StartCount", "TIC101.SP", "TIC101.HiLimit", "Tank2.Volume", "Valve1.Position"}
	refs := make([]string, n)
	for i := range refs {
		refs[i] = base[i%len(base)]
	}
	return refs
}

// burstWait bounds one large bulk call and the reading of one burst:
// 20,000 AddItem and Advise calls take about a second, ten times that under
// the race detector on a busy machine.
const burstWait = 2 * time.Minute

// burstArgs lets the gateway wait as long as the test does for a bulk call.
var burstArgs = []string{"--command-timeout=2m"}

// read reads ev until match returns true, within burstWait.
func (s *stream) read(what string, match func(*mxgatewayv1.Event) bool) {
	s.t.Helper()
	deadline := time.After(burstWait)
	for {
		select {
		case e := <-s.events:
			if match(e) {
				return
			}
		case <-s.done:
			select {
			case e := <-s.events:
				if match(e) {
					return
				}
				continue
			default:
			}
			s.t.Fatalf("stream ended while waiting for %s: %v", what, s.err)
		case <-deadline:
			s.t.Fatalf("no %s within %v", what, burstWait)
		}
	}
}

// subscribeBulk subscribes refs and returns the item handles, or why not
// every entry was advised.
func (s *client) subscribeBulk(refs []string) ([]int32, error) {
	ctx, cancel := context.WithTimeout(context.Background(), burstWait)
	defer cancel()
	resp, err := s.c.Invoke(ctx, &mxgatewayv1.InvokeRequest{SessionId: s.id, Command: &mxgatewayv1.Command{
		Kind: &mxgatewayv1.Command_SubscribeBulk{SubscribeBulk: &mxgatewayv1.SubscribeBulkCommand{
			ServerHandle: s.hlmx, ItemDefinitions: refs}}}})
	if err != nil {
		return nil, err
	}
	r := resp.GetReply()
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

// collector reads a stream on its own goroutine, as a client that keeps
// up does, checking that sequences are contiguous and recording which item
// handles of hlmx had a data change.
type collector struct {
	mu   sync.Mutex
	seen map[int32]bool
	bad  error
	last uint64
}

func collect(t *testing.T, ev *stream, hlmx int32) *collector {
	c := &collector{seen: make(map[int32]bool)}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case e := <-ev.events:
				c.mu.Lock()
				if c.last != 0 && e.GetSequence() != c.last+1 && c.bad == nil {
					c.bad = fmt.Errorf("sequence %d after %d", e.GetSequence(), c.last)
				}
				c.last = e.GetSequence()
				if dc := e.GetDataChange(); dc != nil && dc.GetServerHandle() == hlmx {
					c.seen[dc.GetItemHandle()] = true
				}
				c.mu.Unlock()
			case <-stop:
				return
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
	return c
}

// waitAll waits until every handle in want had a data change.
func (c *collector) waitAll(t *testing.T, want map[int32]bool) {
	t.Helper()
	testutil.Eventually(t, burstWait, func() error {
		c.mu.Lock()
		bad, missing := c.bad, 0
		for h := range want {
			if !c.seen[h] {
				missing++
			}
		}
		c.mu.Unlock()
		if bad != nil {
			t.Fatal(bad) // out of order or unexpected: no point waiting
		}
		if missing > 0 {
			return fmt.Errorf("%d of %d first values missing", missing, len(want))
		}
		return nil
	})
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
	g := harness.Start(t, burstArgs...)
	s := openSession(t, g.Client(), "bulk burst")
	ev := s.streamEvents(&mxgatewayv1.StreamEventsRequest{})
	s.hlmx = s.register()
	got := collect(t, ev, s.hlmx)
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
	got.waitAll(t, want)
	wantReady(t, s)
}

// TestFlowReReportOfAdvisedItems: a platform that reconnects re-reports
// every advised value at once; the simulator's storm of 50,000 changes
// stands in for the re-report of 50,000 advised items, with the default
// bounds. Every change arrives, in order, and the session stays READY.
func TestFlowReReportOfAdvisedItems(t *testing.T) {
	t.Parallel()
	g := harness.Start(t)
	s := openSession(t, g.Client(), "re-report")
	ev := s.streamEvents(&mxgatewayv1.StreamEventsRequest{})
	s.hlmx = s.register()
	const n = 50000
	h, final := storm(t, s, ev, n, false)
	next := int32(-1)
	ev.read("the re-report's last value", func(e *mxgatewayv1.Event) bool {
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

// TestFlowGatewayCannotKeepUp: only a gateway that cannot keep up with the
// worker at all faults the session, with its own reason. A subscriber that
// reads nothing, under a stall timeout longer than the test, holds the
// session's events; the pipe and then the worker's queue (made small here)
// fill, and the session faults with UNAVAILABLE EVENT_OVERFLOW.
func TestFlowGatewayCannotKeepUp(t *testing.T) {
	t.Parallel()
	g := harness.Start(t, "--worker-event-queue=1000", "--event-buffer=16", "--subscriber-queue=16",
		"--subscriber-stall-timeout=1h", "--shutdown-timeout=1s")
	s := openSession(t, g.Client(), "cannot keep up")
	conn := g.Dial(t, g.AdminKey, grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	stalled := &client{t: t, c: mxgatewayv1grpc.NewGatewayClient(conn), id: s.id}
	st, _ := stalled.rawStream(&mxgatewayv1.StreamEventsRequest{})
	s.hlmx = s.register()
	s.subscribe("Sim.StormValue")
	trigger := s.subscribe("Sim.Storm")
	_, _ = s.invokeErr(writeCmd(s.hlmx, trigger, intValue(500000))) // the storm outlives the reply
	// Read nothing until the session faulted: reading would keep up.
	testutil.Eventually(t, burstWait, func() error {
		if in := s.info(); in != nil && in.GetState() != mxgatewayv1.SessionState_SESSION_STATE_FAULTED {
			return fmt.Errorf("session still %v", in.GetState())
		}
		return nil
	})
	var last uint64
	for {
		resp, err := st.Recv()
		if err != nil {
			wantCode(t, err, codes.Unavailable, mxgatewayv1.ReasonEventOverflow)
			break
		}
		if seq := resp.GetEvent().GetSequence(); last != 0 && seq != last+1 {
			t.Fatalf("sequence %d after %d", seq, last)
		} else {
			last = seq
		}
	}
}
