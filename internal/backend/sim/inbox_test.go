package sim

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/internal/testutil"
)

// TestPostsDoNotStarveCommands: the runtime's changes reach the STA as
// posts; a stream of them that never pauses (here a posted function that
// posts itself again, so the inbox is never empty) must still leave the
// STA to run a command. Draining the inbox until it was empty did not: a
// 10,000-item SubscribeBulk under 100,000 changes/s never ran.
func TestPostsDoNotStarveCommands(t *testing.T) {
	e := newEnv(t, envOpt{standalone: true})
	var stop atomic.Bool
	var passes atomic.Int64
	var again func()
	again = func() {
		passes.Add(1)
		if !stop.Load() {
			e.b.post(again)
		}
	}
	e.b.post(again)
	defer stop.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ran := false
	if err := e.b.do(ctx, false, func() { ran = true }); err != nil || !ran {
		t.Fatalf("a command behind a stream of posts: ran %v, err %v (%d posted passes ran)", ran, err, passes.Load())
	}
}

// TestApplyWaitsForRoom: the runtime's changes waiting for the session's
// STA are bounded; a batch that does not fit waits (holding its sender
// back) instead of growing the inbox, and once the STA makes room every
// change is applied, in order, none coalesced or lost.
func TestApplyWaitsForRoom(t *testing.T) {
	e := newEnv(t, envOpt{inbox: 2})
	h := e.reg()
	hi, _ := e.sub(h, "Obj.Int")
	ord := e.b.model.Object("Obj").Attribute("Int").ord
	change := func(v int32) Change {
		return Change{Attr: ord, Value: intValue(v), Quality: 192, Time: e.clk.Now()}
	}

	release := make(chan struct{})
	e.b.post(func() { <-release }) // the STA is busy until released
	e.b.Apply([]Change{change(10), change(11)})
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.b.Apply([]Change{change(12)}) // 3 > 2: waits for room
	}()
	testutil.Eventually(t, 30*time.Second, func() error {
		e.b.inMu.Lock()
		defer e.b.inMu.Unlock()
		if e.b.inWaiting != 1 {
			return fmt.Errorf("%d Apply calls waiting", e.b.inWaiting)
		}
		return nil
	})
	e.b.inMu.Lock()
	queued := e.b.inChanges
	e.b.inMu.Unlock()
	select {
	case <-done:
		t.Fatal("Apply returned while the inbox was full")
	default:
	}
	if queued != 2 {
		t.Fatalf("%d changes queued, bound 2", queued)
	}

	close(release)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Apply still waiting after the STA made room")
	}
	e.settle()
	var got []int32
	for _, dc := range dataChanges(e.rec.take()) {
		if dc.GetItemHandle() == hi {
			got = append(got, dc.GetValue().GetInt32Value())
		}
	}
	if fmt.Sprint(got) != "[10 11 12]" {
		t.Fatalf("values %v, want [10 11 12]", got)
	}
}

// TestApplyGivesUpOnClose: an Apply waiting for room returns when the
// simulator closes (nothing will ever apply it).
func TestApplyGivesUpOnClose(t *testing.T) {
	e := newEnv(t, envOpt{inbox: 1})
	ord := e.b.model.Object("Obj").Attribute("Int").ord
	release := make(chan struct{})
	e.b.post(func() { <-release })
	e.b.Apply([]Change{{Attr: ord, Value: intValue(1), Quality: 192, Time: e.clk.Now()}})
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.b.Apply([]Change{{Attr: ord, Value: intValue(2), Quality: 192, Time: e.clk.Now()}})
	}()
	testutil.Eventually(t, 30*time.Second, func() error {
		e.b.inMu.Lock()
		defer e.b.inMu.Unlock()
		if e.b.inWaiting != 1 {
			return fmt.Errorf("%d Apply calls waiting", e.b.inWaiting)
		}
		return nil
	})
	closed := make(chan struct{})
	go func() { defer close(closed); e.b.Close() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Apply still waiting after Close")
	}
	close(release)
	<-closed
}

// TestApplyRunsInlineWhenIdle: a batch from the runtime that finds the
// STA goroutine idle and nothing posted before it is applied on the
// caller's goroutine, its events made before Apply returns (no hand-off
// to the STA goroutine); batches applied either way keep their order.
func TestApplyRunsInlineWhenIdle(t *testing.T) {
	e := newEnv(t, envOpt{})
	h := e.reg()
	hi, _ := e.sub(h, "Obj.Int")
	ord := e.b.model.Object("Obj").Attribute("Int").ord
	e.settle()
	e.rec.take()
	var want, got []int32
	collect := func() {
		for _, dc := range dataChanges(e.rec.take()) {
			if dc.GetItemHandle() == hi {
				got = append(got, dc.GetValue().GetInt32Value())
			}
		}
	}
	// Whether an event was made on this test's goroutine (inside its
	// Apply) or on the STA goroutine.
	var onCaller atomic.Int64
	e.rec.hook = func(*mxgatewayv1.Event) {
		buf := make([]byte, 64<<10)
		if bytes.Contains(buf[:runtime.Stack(buf, false)], []byte("sim.applyFromTest(")) {
			onCaller.Add(1)
		}
	}
	v := int32(100)
	testutil.Eventually(t, 30*time.Second, func() error {
		v++
		want = append(want, v)
		applyFromTest(e.b, []Change{{Attr: ord, Value: intValue(v), Quality: 192, Time: e.clk.Now()}})
		collect()
		if onCaller.Load() == 0 || len(got) == 0 || got[len(got)-1] != v {
			return fmt.Errorf("change %d not applied on the caller's goroutine (got %v)", v, got)
		}
		return nil
	})
	e.settle()
	collect()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("values %v, want %v", got, want)
	}
}

// applyFromTest calls Apply; its frame marks the test's goroutine in a
// stack (TestApplyRunsInlineWhenIdle).
//
//go:noinline
func applyFromTest(b *Backend, changes []Change) { b.Apply(changes) }

// TestInlineApplyKeepsTheCallsTurn: a call made while a batch is applied
// inline waits for at most applyYield of its changes, as in an inbox pass
// (the rest of the batch follows the call), and every change still
// arrives, in order.
func TestInlineApplyKeepsTheCallsTurn(t *testing.T) {
	e := newEnv(t, envOpt{})
	h := e.reg()
	hi, _ := e.sub(h, "Obj.Int")
	ord := e.b.model.Object("Obj").Attribute("Int").ord
	e.settle()
	e.rec.take()
	const n = inlineMax
	batch := make([]Change, n)
	for i := range batch {
		batch[i] = Change{Attr: ord, Value: intValue(int32(1000 + i)), Quality: 192, Time: e.clk.Now()}
	}
	var events, atCall atomic.Int64
	var inline atomic.Bool
	atCall.Store(-1)
	called := make(chan error, 1)
	e.rec.hook = func(*mxgatewayv1.Event) {
		buf := make([]byte, 64<<10)
		if events.Add(1) != 1 || !bytes.Contains(buf[:runtime.Stack(buf, false)], []byte("sim.applyFromTest(")) {
			return
		}
		// The first change, applied inline: a call arrives now, and the
		// STA goroutine takes it and waits for the STA.
		inline.Store(true)
		go func() {
			called <- e.b.do(context.Background(), false, func() { atCall.Store(events.Load()) })
		}()
		deadline := time.Now().Add(30 * time.Second)
		for e.b.staWant.Load() == 0 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
	}
	testutil.Eventually(t, 30*time.Second, func() error {
		events.Store(0)
		applyFromTest(e.b, batch)
		if inline.Load() {
			return nil
		}
		// Applied by the STA goroutine: let it finish before the next try.
		deadline := time.Now().Add(30 * time.Second)
		for events.Load() < n && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		e.rec.take()
		return fmt.Errorf("the batch was not applied inline")
	})
	if err := <-called; err != nil {
		t.Fatal(err)
	}
	if got := atCall.Load(); got < 1 || got > applyYield {
		t.Fatalf("the call ran after %d changes of the batch, want 1..%d", got, applyYield)
	}
	// settle may be served between two changes of the rest's pass (the
	// call's turn), so wait for the values themselves.
	var got []int32
	testutil.Eventually(t, 30*time.Second, func() error {
		for _, dc := range dataChanges(e.rec.take()) {
			if dc.GetItemHandle() == hi {
				got = append(got, dc.GetValue().GetInt32Value())
			}
		}
		if len(got) < n {
			return fmt.Errorf("%d of %d values", len(got), n)
		}
		return nil
	})
	if len(got) != n || got[0] != 1000 || got[n-1] != 1000+n-1 {
		t.Fatalf("%d values from %v, want %d in order", len(got), got[:min(3, len(got))], n)
	}
	for i := range got {
		if got[i] != int32(1000+i) {
			t.Fatalf("value %d is %d, want %d", i, got[i], 1000+i)
		}
	}
}

// TestApplyYieldsToAWaitingCall: while the STA goroutine waits for the
// STA with a call in hand (staWant, set here as run sets it), a batch is
// left to the inbox instead of being applied inline ahead of the call.
func TestApplyYieldsToAWaitingCall(t *testing.T) {
	e := newEnv(t, envOpt{})
	h := e.reg()
	hi, _ := e.sub(h, "Obj.Int")
	ord := e.b.model.Object("Obj").Attribute("Int").ord
	e.settle()
	e.rec.take()
	var onCaller atomic.Int64
	e.rec.hook = func(*mxgatewayv1.Event) {
		buf := make([]byte, 64<<10)
		if bytes.Contains(buf[:runtime.Stack(buf, false)], []byte("sim.applyFromTest(")) {
			onCaller.Add(1)
		}
	}
	e.b.staWant.Add(1)
	for v := range int32(20) {
		applyFromTest(e.b, []Change{{Attr: ord, Value: intValue(200 + v), Quality: 192, Time: e.clk.Now()}})
	}
	e.b.staWant.Add(-1)
	var got []int32
	testutil.Eventually(t, 30*time.Second, func() error {
		for _, dc := range dataChanges(e.rec.take()) {
			if dc.GetItemHandle() == hi {
				got = append(got, dc.GetValue().GetInt32Value())
			}
		}
		if len(got) < 20 {
			return fmt.Errorf("%d of 20 values", len(got))
		}
		return nil
	})
	if n := onCaller.Load(); n != 0 {
		t.Fatalf("%d changes applied inline ahead of the waiting call", n)
	}
	if got[0] != 200 || got[19] != 219 {
		t.Fatalf("values %v, want 200..219 in order", got)
	}
}
