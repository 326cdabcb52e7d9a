//go:build unix

package supervisor

import (
	"errors"
	"sync"
	"syscall"
)

// unixProc is a worker leading its own process group (Setpgid), so that one
// signal to -pid reaches the worker and anything it started.
type unixProc struct {
	pid int

	mu     sync.Mutex
	reaped bool // set before the pid can be reaped; kill is a no-op after
}

func (u *unixProc) kill() (bool, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.reaped {
		return false, nil
	}
	err := syscall.Kill(-u.pid, syscall.SIGKILL)
	if errors.Is(err, syscall.ESRCH) {
		// The group is gone but the leader may not have set it up yet.
		err = syscall.Kill(u.pid, syscall.SIGKILL)
	}
	if errors.Is(err, syscall.ESRCH) {
		return false, nil
	}
	return err == nil, err
}

func (u *unixProc) awaitExit() {
	if !waitNoReap(u.pid) {
		// No way to wait without reaping: release marks it after Wait.
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	// The leader is a zombie, so -pid is still our group: clear out any
	// descendants the worker left behind, then let Wait reap it.
	_ = syscall.Kill(-u.pid, syscall.SIGKILL)
	u.reaped = true
}

func (u *unixProc) release() {
	u.mu.Lock()
	u.reaped = true
	u.mu.Unlock()
}

// killOrphan kills a worker of an earlier run (and its group); its parent is
// gone, so nobody will reap it but init.
func killOrphan(pid int) error {
	gerr := syscall.Kill(-pid, syscall.SIGKILL)
	perr := syscall.Kill(pid, syscall.SIGKILL)
	if perr == nil || gerr == nil || errors.Is(perr, syscall.ESRCH) {
		return nil
	}
	return perr
}
