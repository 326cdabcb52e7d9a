package sim

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
)

// gateClock is a FakeClock whose next Now, once armed, waits for release:
// the STA reads the clock in drainInbox after it took the inbox and before
// it runs the first post, so the test can hold it there, with the batch in
// hand and not started.
type gateClock struct {
	*FakeClock
	armed   atomic.Bool
	release chan struct{}
}

func (c *gateClock) Now() time.Time {
	if c.armed.CompareAndSwap(true, false) {
		<-c.release
	}
	return c.FakeClock.Now()
}

// nullGalaxy is a runtime link that drops the session's writes (the test
// plays the runtime with Apply).
type nullGalaxy struct{}

func (nullGalaxy) Write(int32, *mxgatewayv1.MxValue, time.Time, bool, string) {}

// TestBatchServesWaitingCallAfterEachChange: a call that waits for the STA
// when a batch of the runtime's changes starts runs after the batch's
// first change, not at the end of the batch nor after some count of
// changes (a bulk command is one call per entry; serving every 64 changes
// held a 50,000-item SubscribeBulk under a steady stream for minutes).
//
// The bubble (testing/synctest) makes the order certain: synctest.Wait
// returns once the STA is parked on the gated clock with the batch taken
// from the inbox, and again once the caller is parked on its send to the
// STA; only then does the batch start.
func TestBatchServesWaitingCallAfterEachChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 1000
		m, err := ParseModel([]byte(testModelYAML), "test.yaml")
		if err != nil {
			t.Fatal(err)
		}
		clk := &gateClock{FakeClock: NewFakeClock(testStart), release: make(chan struct{})}
		b, err := New(Options{Model: m, Profile: ProfileTest, Clock: clk, Seed: 1, Galaxy: nullGalaxy{},
			Exit: func(c int) { t.Errorf("exit %d", c) }})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Open(context.Background(), discardSink{}); err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		ord, ok := m.SharedAttribute("Obj.Int")
		if !ok {
			t.Fatal("no Obj.Int")
		}
		read := func() int32 { return b.sharedAttr(ord).value.GetInt32Value() }
		batch := make([]Change, n)
		for i := range batch {
			batch[i] = Change{Attr: ord, Value: intValue(int32(i + 1)), Quality: 192, Time: testStart}
		}

		synctest.Wait() // the STA is idle, waiting for work
		clk.armed.Store(true)
		b.Apply(batch)
		synctest.Wait()
		if clk.armed.Load() || !b.inboxEmpty() {
			t.Fatalf("the STA is not holding the batch at its start (gate armed %v, inbox empty %v)",
				clk.armed.Load(), b.inboxEmpty())
		}

		var seen int32
		done := make(chan error, 1)
		go func() { done <- b.do(context.Background(), false, func() { seen = read() }) }()
		synctest.Wait() // the caller waits on its send to the busy STA
		select {
		case err := <-done:
			t.Fatalf("the call returned before the batch started: %v", err)
		default:
		}

		close(clk.release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if seen != 1 {
			t.Fatalf("the waiting call ran after %d changes of the batch, want 1", seen)
		}
		synctest.Wait() // the STA applied the rest of the batch and is idle
		var last int32
		if err := b.do(context.Background(), false, func() { last = read() }); err != nil || last != n {
			t.Fatalf("after the batch: value %d, err %v; want %d", last, err, n)
		}
	})
}
