package worker

import (
	"testing"

	"google.golang.org/protobuf/proto"

	workerv1 "github.com/mxgateway/mxgateway/api/mxgateway/worker/v1"
)

// creditHarness reads events and checks their order.
type creditHarness struct {
	*harness
	t      *testing.T
	events uint64 // the last sequence read
	bytes  uint64 // encoded bytes read, for grants
	corr   uint64
}

// wantEvents reads exactly n events, in sequence.
func (c *creditHarness) wantEvents(n int) {
	c.t.Helper()
	for range n {
		env := c.recv()
		ev := env.GetEvent().GetEvent()
		if ev == nil {
			c.t.Fatalf("%s after event %d, want an event", bodyName(env), c.events)
		}
		if ev.GetSequence() != c.events+1 {
			c.t.Fatalf("event %d after %d", ev.GetSequence(), c.events)
		}
		c.events++
		c.bytes += uint64(proto.Size(ev))
	}
}

// wantNoMoreEvents: a command's reply is the next frame, although events
// are queued (they have no credit).
func (c *creditHarness) wantNoMoreEvents() {
	c.t.Helper()
	c.corr++
	c.command(c.corr, register())
	if env := c.recv(); env.GetCommandReply() == nil || env.GetCorrelationId() != c.corr {
		c.t.Fatalf("%s (correlation %d) after event %d, want reply %d: the worker sent beyond its credit",
			bodyName(env), env.GetCorrelationId(), c.events, c.corr)
	}
}

func (c *creditHarness) grant(events uint32, bytes uint64) {
	c.send(0, &workerv1.WorkerEnvelope{Body: &workerv1.WorkerEnvelope_EventCredit{
		EventCredit: &workerv1.EventCredit{Events: events, Bytes: bytes}}})
}

// TestEventCredit: the worker sends only the events its credit covers;
// the rest wait in its queue while replies still flow, and each grant
// lets exactly that many more through, in order.
func TestEventCredit(t *testing.T) {
	f := newFake()
	c := &creditHarness{harness: start(t, f, harnessOpts{}), t: t}
	c.ready(noHeartbeats, func(g *workerv1.GatewayHello) { g.EventCredit, g.EventCreditBytes = 3, 1<<20 })
	f.storm <- 10
	<-f.stormDone

	c.wantEvents(3)
	c.wantNoMoreEvents()
	read := c.bytes
	c.grant(2, read)
	c.wantEvents(2)
	c.wantNoMoreEvents()
	c.grant(3, c.bytes-read)
	c.wantEvents(3)
	c.wantNoMoreEvents()
	c.grant(2, 0) // events enough; the byte credit still covers two
	c.wantEvents(2)
	c.wantNoMoreEvents()
}

// TestEventCreditOversized: an event larger than the whole byte credit
// goes once the worker holds all of its credit, one at a time.
func TestEventCreditOversized(t *testing.T) {
	f := newFake()
	c := &creditHarness{harness: start(t, f, harnessOpts{}), t: t}
	c.ready(noHeartbeats, func(g *workerv1.GatewayHello) { g.EventCredit, g.EventCreditBytes = 100, 1 })
	f.storm <- 3
	<-f.stormDone
	for range 3 {
		before := c.bytes
		c.wantEvents(1)
		c.wantNoMoreEvents()
		c.grant(1, c.bytes-before)
	}
	c.wantNoMoreEvents()
}

// TestEventCreditOverGrant: a grant past the initial credit (more than the
// worker sent) is a protocol error.
func TestEventCreditOverGrant(t *testing.T) {
	f := newFake()
	c := &creditHarness{harness: start(t, f, harnessOpts{}), t: t}
	c.ready(noHeartbeats, func(g *workerv1.GatewayHello) { g.EventCredit, g.EventCreditBytes = 5, 1<<20 })
	c.grant(1, 0)
	if fault := c.expectFault(); fault.GetCode() != workerv1.FaultCode_FAULT_CODE_PROTOCOL {
		t.Fatalf("fault %v (%s), want PROTOCOL", fault.GetCode(), fault.GetMessage())
	}
}
