//go:build wine

package wine

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"syscall"
	"testing"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/client"
	"github.com/mxgateway/mxgateway/internal/testutil"
)

// openCOMSession opens a session, registers and returns the raw surface
// and the registration handle.
func openCOMSession(t *testing.T, g *gateway) (*client.Session, *client.MX, int32, *recorder) {
	t.Helper()
	s, err := g.client(t).OpenSession(stepCtx(t), t.Name())
	if err != nil {
		t.Fatalf("open session: %v", err)
	}
	h, err := s.MX().Register(stepCtx(t), t.Name())
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	return s, s.MX(), h, record(t, s)
}

// spawnChild makes the stand-in (inside the session's worker) start
// lmxchild.exe and returns the child's Linux pid.
func spawnChild(t *testing.T, mx *client.MX, rec *recorder, h int32) int {
	t.Helper()
	hi, err := mx.AddItem(stepCtx(t), h, "StandIn.SpawnChild")
	if err != nil {
		t.Fatal(err)
	}
	if err := mx.Advise(stepCtx(t), h, hi); err != nil {
		t.Fatal(err)
	}
	rec.next(t, "first value of StandIn.SpawnChild", dataChangeOf(h, hi))
	marker := int32(1000000 + rand.IntN(1000000))
	if err := mx.Write(stepCtx(t), h, hi, client.MustValue(marker), 0); err != nil {
		t.Fatal(err)
	}
	if err := rec.next(t, "OnWriteComplete", writeCompleteOf(h, hi)).WriteComplete().Err(); err != nil {
		t.Fatal(err)
	}
	var pid int
	testutil.Eventually(t, eventTimeout, func() error {
		pids := processesMatching("lmxchild.exe " + strconv.Itoa(int(marker)))
		if len(pids) != 1 {
			return fmt.Errorf("lmxchild.exe %d: processes %v", marker, pids)
		}
		pid = pids[0]
		return nil
	})
	return pid
}

// workerOf returns the Linux pid of the worker of session s.
func workerOf(t *testing.T, g *gateway, s *client.Session) int {
	t.Helper()
	var pid int
	testutil.Eventually(t, eventTimeout, func() error {
		pids := processesMatching("--session-id=" + s.ID())
		if len(pids) != 1 {
			return fmt.Errorf("worker of session %s: processes %v", s.ID(), pids)
		}
		pid = pids[0]
		return nil
	})
	return pid
}

func gone(pid int) error {
	if err := syscall.Kill(pid, 0); err == nil {
		return fmt.Errorf("process %d still runs", pid)
	}
	return nil
}

// checkServing opens and closes one more session: the gateway still
// serves after a worker failed.
func checkServing(t *testing.T, g *gateway) {
	t.Helper()
	s, err := g.client(t).OpenSession(stepCtx(t), "after-the-fault")
	if err != nil {
		t.Fatalf("the gateway no longer serves: %v", err)
	}
	if _, err := s.MX().Register(stepCtx(t), "after-the-fault"); err != nil {
		t.Fatalf("Register on a new session: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestWorkerKillJobTakesChildren kills a COM worker from outside (as Task
// Manager would) while the stand-in inside it has started a child
// process: the session faults with the worker's exit, the Job Object takes
// the child, and the gateway keeps serving.
func TestWorkerKillJobTakesChildren(t *testing.T) {
	g := startGateway(t, gwOptions{backend: "mxaccess"})
	s, _, h, rec := openCOMSession(t, g)
	child := spawnChild(t, s.MX(), rec, h)
	worker := workerOf(t, g, s)
	if err := syscall.Kill(worker, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, eventTimeout, func() error {
		err := rec.streamErr()
		if err == nil {
			return errors.New("the event stream still runs")
		}
		if !client.IsSessionFaulted(err) && client.GatewayReason(err) != mxgatewayv1.ReasonWorkerExited {
			t.Fatalf("the event stream ended with %v, want the session faulted", err)
		}
		return nil
	})
	testutil.Eventually(t, eventTimeout, func() error { return gone(worker) })
	testutil.Eventually(t, eventTimeout, func() error { return gone(child) })
	checkServing(t, g)
	g.stop(t)
}

// TestGatewayKillJobTakesWorkers kills the gateway itself: its Job Objects
// close with it (JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE), so the worker and the
// worker's child end too.
func TestGatewayKillJobTakesWorkers(t *testing.T) {
	g := startGateway(t, gwOptions{backend: "mxaccess"})
	s, _, h, rec := openCOMSession(t, g)
	child := spawnChild(t, s.MX(), rec, h)
	worker := workerOf(t, g, s)
	g.kill(t)
	testutil.Eventually(t, eventTimeout, func() error { return gone(worker) })
	testutil.Eventually(t, eventTimeout, func() error { return gone(child) })
}

// TestHungSTA blocks the worker's STA inside the stand-in (Sim.HangMs, as
// in the simulator: the window message that applies the write sleeps
// without pumping). The heartbeat includes an STA round trip, so the
// worker stops heartbeating although its pipe is healthy; the command
// waiting behind the hang fails with HEARTBEAT_EXPIRED, the worker is
// killed, and the gateway keeps serving.
func TestHungSTA(t *testing.T) {
	g := startGateway(t, gwOptions{backend: "mxaccess", args: []string{
		"--heartbeat-interval=500ms", "--heartbeat-grace=4s", "--heartbeat-ceiling=4s"}})
	s, mx, h, rec := openCOMSession(t, g)
	worker := workerOf(t, g, s)
	hi, err := mx.AddItem(stepCtx(t), h, "Sim.HangMs")
	if err != nil {
		t.Fatal(err)
	}
	if err := mx.Advise(stepCtx(t), h, hi); err != nil {
		t.Fatal(err)
	}
	rec.next(t, "first value of Sim.HangMs", dataChangeOf(h, hi))
	if err := mx.Write(stepCtx(t), h, hi, client.MustValue(int32(10*time.Minute/time.Millisecond)), 0); err != nil {
		t.Fatal(err)
	}
	// The completion and the echo go out before the STA blocks.
	rec.next(t, "OnWriteComplete", writeCompleteOf(h, hi))
	rec.next(t, "echo", dataChangeOf(h, hi))
	start := time.Now()
	_, err = mx.AddItem(stepCtx(t), h, "Types.Int")
	if client.GatewayReason(err) != mxgatewayv1.ReasonHeartbeatExpired {
		t.Fatalf("a call behind the hung STA returned %v (reason %q), want %s", err, client.GatewayReason(err),
			mxgatewayv1.ReasonHeartbeatExpired)
	}
	t.Logf("hung STA detected after %s", time.Since(start).Round(time.Millisecond))
	testutil.Eventually(t, eventTimeout, func() error { return gone(worker) })
	checkServing(t, g)
	g.stop(t)
}
