package sim

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

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
