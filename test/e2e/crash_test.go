package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/test/e2e/harness"
)

// TestGatewayKilled: when the gateway itself is SIGKILLed its workers die
// with it, and the next start removes the endpoints the dead run left.
func TestGatewayKilled(t *testing.T) {
	t.Parallel()
	g := harness.Start(t)
	a := openSession(t, g.Client(), "a")
	b := openSession(t, g.Client(), "b")
	if pids := g.WorkerPIDs(); !slices.Contains(pids, a.pid) || !slices.Contains(pids, b.pid) {
		t.Fatalf("worker processes %v, want %d and %d", pids, a.pid, b.pid)
	}
	// The supervisor keeps each run's records in a gw-<pid> directory under
	// its runtime directory ($TMPDIR/mxgateway-<uid>).
	runDir := "gw-" + strconv.Itoa(g.PID())
	if !hasDir(g.TempDir, runDir) {
		t.Fatalf("no %s directory under %s", runDir, g.TempDir)
	}
	g.Kill()
	eventually(t, "workers die with the gateway", func() error {
		if pids := g.WorkerPIDs(); len(pids) > 0 {
			return fmt.Errorf("workers %v still alive", pids)
		}
		return nil
	})

	g2 := g.Restart(t)
	eventually(t, "the dead run's leftovers removed at start-up", func() error {
		if hasDir(g.TempDir, runDir) {
			return fmt.Errorf("%s still exists", runDir)
		}
		if socks := g2.Sockets(); len(socks) > 0 {
			return fmt.Errorf("sockets left: %v", socks)
		}
		return nil
	})
	s := openSession(t, g2.Client(), "after restart")
	s.register()
	if res := s.close(); res.GetState() != mxgatewayv1.SessionState_SESSION_STATE_CLOSED {
		t.Fatalf("close after restart: %v", res)
	}
}

// hasDir reports whether a directory called name exists below root.
func hasDir(root, name string) bool {
	found := false
	filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() && d.Name() == name {
			found = true
		}
		return nil
	})
	return found
}
