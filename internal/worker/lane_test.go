package worker

import (
	"testing"

	workerv1 "github.com/mxgateway/mxgateway/api/mxgateway/worker/v1"
	"time"
)

// TestRepliesAndHeartbeatsOvertakeAQueuedBurst: a burst far larger than
// the pipe waits in the worker's event lane while the gateway reads
// nothing; a command's reply and a heartbeat made meanwhile reach the
// gateway ahead of the burst's tail, and every event still arrives, once,
// in sequence order.
func TestRepliesAndHeartbeatsOvertakeAQueuedBurst(t *testing.T) {
	const burst = 100_000 // about 6 MB of frames: far more than a socket holds
	f := newFake()
	pingGate := make(chan struct{})
	f.pingGate = pingGate
	h := start(t, f, harnessOpts{})
	h.ready(5 * time.Millisecond)
	<-f.pinging // the first heartbeat waits for its Ping

	// The burst is queued; the test reads nothing, so the pipe fills and
	// the writer is stuck inside it.
	f.storm <- burst
	<-f.stormDone

	// Reply 7 is queued once command 8 has started (commands run one at
	// a time, each answered before the next).
	addGate := f.gate("AddItem")
	h.command(7, register())
	h.command(8, addItem(1, "Tank1.Level"))
	if m := <-f.entered; m != "AddItem" {
		t.Fatalf("entered %s", m)
	}
	// The heartbeat is queued once the loop's next Ping has started.
	close(pingGate)
	<-f.pinging
	f.mu.Lock()
	f.pingGate = nil
	f.mu.Unlock()

	var events uint64
	replyAt, heartbeatAt := -1, -1
	var hbDepth uint32
	for events < burst || replyAt < 0 || heartbeatAt < 0 {
		env := h.recv()
		switch b := env.GetBody().(type) {
		case *workerv1.WorkerEnvelope_Event:
			if got := b.Event.GetEvent().GetSequence(); got != events+1 {
				t.Fatalf("event sequence %d after %d", got, events)
			}
			events++
		case *workerv1.WorkerEnvelope_CommandReply:
			if env.GetCorrelationId() != 7 || replyAt >= 0 {
				t.Fatalf("reply %d after %d events", env.GetCorrelationId(), events)
			}
			replyAt = int(events)
		case *workerv1.WorkerEnvelope_Heartbeat:
			if heartbeatAt < 0 {
				heartbeatAt, hbDepth = int(events), b.Heartbeat.GetEventQueueDepth()
			}
		default:
			t.Fatalf("unexpected %s", bodyName(env))
		}
	}
	t.Logf("reply after %d, heartbeat after %d (queue depth %d) of %d events", replyAt, heartbeatAt, hbDepth, burst)
	if replyAt >= burst || heartbeatAt >= burst {
		t.Fatalf("reply after %d and heartbeat after %d of %d events: they waited behind the burst", replyAt, heartbeatAt, burst)
	}
	if hbDepth == 0 {
		t.Fatal("the heartbeat reported an empty event queue under the burst")
	}
	close(addGate)
	for {
		env := h.next()
		if env.GetCommandReply() != nil {
			if env.GetCorrelationId() != 8 {
				t.Fatalf("reply %d, want 8", env.GetCorrelationId())
			}
			break
		}
	}
	h.shutdown()
}
