package e2e

import (
	"errors"
	"fmt"
	"os"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/test/e2e/harness"
)

// pidAlive reports whether a process exists (Linux /proc; zombies count as
// gone).
func pidAlive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	for i := len(stat) - 1; i >= 0; i-- {
		if stat[i] == ')' {
			return i+2 < len(stat) && stat[i+2] != 'Z'
		}
	}
	return true
}

// TestWorkerKilledMidStream kills one session's worker with SIGKILL while
// its stream is live and a command is pending: the session faults, the
// stream ends UNAVAILABLE with a reason after every earlier event, the
// pending command fails, and another session is untouched.
func TestWorkerKilledMidStream(t *testing.T) {
	t.Parallel()
	// No spare workers: with both sessions closed, no worker may be left.
	g := harness.Start(t, "--heartbeat-ceiling=60s", "--spare-workers=0")
	victim := openSession(t, g.Client(), "victim")
	bystander := openSession(t, g.Client(), "bystander")
	vs := victim.streamEvents(&mxgatewayv1.StreamEventsRequest{})
	bs := bystander.streamEvents(&mxgatewayv1.StreamEventsRequest{})
	victim.register()
	bystander.register()
	vLevel := victim.subscribe("Tank2.Level")
	vs.waitFor("first value", dataChangeOf(victim.hlmx, vLevel))

	// Make the next call take 30s so it is pending when the worker dies.
	victim.simFault("SlowCallMs", 30000)
	pending := make(chan error, 1)
	go func() {
		_, err := victim.invokeErr(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_AddItem{AddItem: &mxgatewayv1.AddItemCommand{
			ServerHandle: victim.hlmx, ItemDefinition: "Tank1.Level",
		}}})
		pending <- err
	}()
	eventually(t, "command pending", func() error {
		if n := victim.info().GetCommandsPending(); n != 1 {
			return fmt.Errorf("%d commands pending", n)
		}
		return nil
	})
	proc, err := os.FindProcess(victim.pid)
	if err != nil {
		t.Fatal(err)
	}
	if err := proc.Kill(); err != nil {
		t.Fatalf("kill worker %d: %v", victim.pid, err)
	}

	wantCode(t, <-pending, codes.Unavailable, mxgatewayv1.ReasonWorkerExited)
	evs, err := vs.end()
	wantCode(t, err, codes.Unavailable, mxgatewayv1.ReasonWorkerExited)
	checkContiguous(t, evs, evs[0].GetSequence())
	victim.wantFaultedAndGone()
	_, err = victim.invokeErr(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Register{Register: &mxgatewayv1.RegisterCommand{}}})
	wantCode(t, err, codes.FailedPrecondition, mxgatewayv1.ReasonSessionFaulted)

	// The bystander still works end to end.
	bLevel := bystander.subscribe("Tank2.Level")
	bs.waitFor("bystander value", dataChangeOf(bystander.hlmx, bLevel))
	if st := bystander.info().GetState(); st != mxgatewayv1.SessionState_SESSION_STATE_READY {
		t.Fatalf("bystander state %v", st)
	}

	if res := victim.close(); res.GetState() != mxgatewayv1.SessionState_SESSION_STATE_FAULTED {
		t.Fatalf("closing the faulted session: %v", res)
	}
	bystander.close()
	// With both sessions closed, no worker and no socket is left while the
	// gateway keeps running.
	eventually(t, "no leftovers", g.Leftovers)
	if pidAlive(victim.pid) || pidAlive(bystander.pid) {
		t.Fatal("a worker process is still alive")
	}
}

// TestHungWorker hangs the simulator's STA: heartbeats stop, the gateway
// faults the session with HEARTBEAT_EXPIRED and kills the worker.
func TestHungWorker(t *testing.T) {
	t.Parallel()
	g := harness.Start(t, "--heartbeat-interval=100ms", "--heartbeat-grace=600ms", "--heartbeat-ceiling=2s")
	s := openSession(t, g.Client(), "hang")
	ev := s.streamEvents(&mxgatewayv1.StreamEventsRequest{})
	s.register()
	h := s.subscribe("Sim.HangMs")
	ev.waitFor("first value of Sim.HangMs", dataChangeOf(s.hlmx, h))
	// The write is accepted at once; the hang starts when it is applied.
	if _, err := s.invokeErr(writeCmd(s.hlmx, h, intValue(60000))); err != nil {
		if code := status.Code(err); code != codes.Unavailable && code != codes.DeadlineExceeded {
			t.Fatalf("Write = %v", err)
		}
	}
	_, err := ev.end()
	wantCode(t, err, codes.Unavailable, mxgatewayv1.ReasonHeartbeatExpired)
	s.wantFaultedAndGone()
	eventually(t, "hung worker killed", func() error {
		if pidAlive(s.pid) {
			return errors.New("worker still alive")
		}
		return nil
	})
}

// TestLeaseExpiry: an idle session without a stream is closed when its
// lease runs out, and its worker goes away.
func TestLeaseExpiry(t *testing.T) {
	t.Parallel()
	g := harness.Start(t, "--lease=1s", "--detach-grace=1s") // the shortest the configuration allows
	s := openSession(t, g.Client(), "lease")
	s.register()
	// ListSessions does not renew leases (every session call does).
	eventually(t, "lease expiry", func() error {
		if in := s.info(); in != nil {
			return fmt.Errorf("session still listed: %v", in)
		}
		return nil
	})
	_, err := s.invokeErr(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Unregister{Unregister: &mxgatewayv1.UnregisterCommand{ServerHandle: s.hlmx}}})
	wantCode(t, err, codes.NotFound, mxgatewayv1.ReasonSessionNotFound)
	eventually(t, "worker gone", func() error {
		if pidAlive(s.pid) {
			return errors.New("worker still alive")
		}
		return nil
	})
}
