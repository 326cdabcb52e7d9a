package e2e

import (
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/test/e2e/harness"
)

// TestReadBulkReplyTooLarge: a ReadBulk whose reply exceeds the frame limit
// fails that one call with RESOURCE_EXHAUSTED (REPLY_TOO_LARGE); the same
// worker keeps serving the session, whose events keep flowing.
func TestReadBulkReplyTooLarge(t *testing.T) {
	t.Parallel()
	g := harness.Start(t, "--max-frame-bytes=64KiB")
	s := openSession(t, g.Client(), "large reply")
	ev := s.streamEvents(&mxgatewayv1.StreamEventsRequest{})
	s.hlmx = s.register()
	// 2,000 references fit the command frame (about 30 KB) but not their
	// reply (an entry with value, quality and timestamp each).
	refs := plantRefs(2000)
	_, err := s.invokeErr(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_ReadBulk{ReadBulk: &mxgatewayv1.ReadBulkCommand{
		ServerHandle: s.hlmx, ItemDefinitions: refs}}})
	wantCode(t, err, codes.ResourceExhausted, mxgatewayv1.ReasonReplyTooLarge)

	// The session and its worker serve on: a small read answers, and a new
	// subscription's first value arrives on the stream.
	read := s.invoke(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_ReadBulk{ReadBulk: &mxgatewayv1.ReadBulkCommand{
		ServerHandle: s.hlmx, ItemDefinitions: refs[:3]}}}).GetReadBulk().GetEntries()
	if len(read) != 3 || read[0].GetTimedOut() {
		t.Fatalf("ReadBulk after the refused one = %v", read)
	}
	h := s.subscribe("Tank1.Volume")
	ev.waitFor("first value of Tank1.Volume", dataChangeOf(s.hlmx, h))
	in := s.info()
	if in.GetState() != mxgatewayv1.SessionState_SESSION_STATE_READY || int(in.GetWorkerPid()) != s.pid {
		t.Fatalf("session %v worker %d, want READY on worker %d", in.GetState(), in.GetWorkerPid(), s.pid)
	}
}

// TestCrashedWorkerLabelled: a worker that exits with the Go runtime's own
// code (2: an unrecovered panic) is counted as crashed, not by the
// protocol's exit-code table, and its session faults with WORKER_EXITED.
func TestCrashedWorkerLabelled(t *testing.T) {
	t.Parallel()
	g := harness.Start(t)
	s := openSession(t, g.Client(), "crash 2")
	ev := s.streamEvents(&mxgatewayv1.StreamEventsRequest{})
	s.register()
	h := s.subscribe("Sim.Crash")
	_, _ = s.invokeErr(writeCmd(s.hlmx, h, intValue(2))) // the worker may die before it answers
	_, err := ev.end()
	wantCode(t, err, codes.Unavailable, mxgatewayv1.ReasonWorkerExited)
	eventually(t, "the exit counted as crashed", func() error {
		m := scrape(t, g)
		if v, _ := m.sum("mxgateway_workers_exited_total", `reason="crashed"`); v != 1 {
			return fmt.Errorf("workers_exited_total{reason=crashed} = %v", v)
		}
		if v, _ := m.sum("mxgateway_workers_exited_total", `reason="bad_arguments"`); v != 0 {
			return fmt.Errorf("workers_exited_total{reason=bad_arguments} = %v", v)
		}
		return nil
	})
}
