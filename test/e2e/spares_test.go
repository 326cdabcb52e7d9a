package e2e

import (
	"fmt"
	"slices"
	"testing"

	"github.com/mxgateway/mxgateway/test/e2e/harness"
)

// TestSpareWorkers: with spare_workers, OpenSession takes a worker that was
// started and handshaken before the call (its process already ran), the
// pool refills behind it, and a worker serves one session only: after that
// session closes, the next session gets another process.
func TestSpareWorkers(t *testing.T) {
	t.Parallel()
	g := harness.Start(t, "--spare-workers=1", "--data-watchdog-reference=off")
	var before []int
	// The gateway's start-up probe starts a worker of its own too: the one
	// worker process left while the pool reports its spare ready is the spare.
	eventually(t, "a spare worker", func() error {
		if ready, _ := scrape(t, g).sum("mxgateway_spare_workers_ready"); ready != 1 {
			return fmt.Errorf("spare_workers_ready %v, want 1", ready)
		}
		if before = g.WorkerPIDs(); len(before) != 1 {
			return fmt.Errorf("worker processes %v, want the one spare", before)
		}
		return nil
	})
	a := openSession(t, g.Client(), "a")
	if !slices.Contains(before, a.pid) {
		t.Fatalf("session worker %d was not the spare %v", a.pid, before)
	}
	eventually(t, "the pool refilled", func() error {
		if pids := g.WorkerPIDs(); len(pids) != 2 || !slices.Contains(pids, a.pid) {
			return fmt.Errorf("worker processes %v, want session %d's and a new spare", pids, a.pid)
		}
		return nil
	})
	a.close()
	eventually(t, "the used worker gone", func() error {
		if pids := g.WorkerPIDs(); slices.Contains(pids, a.pid) {
			return fmt.Errorf("worker %d of the closed session still runs", a.pid)
		}
		return nil
	})
	b := openSession(t, g.Client(), "b")
	if b.pid == a.pid {
		t.Fatalf("session b reused worker %d", a.pid)
	}
	b.register() // the spare serves
}
