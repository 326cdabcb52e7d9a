//go:build unix && !linux

package supervisor

import (
	"os/exec"
	"syscall"
)

// platform on Unix systems other than Linux gives each worker its own
// process group. There is no parent-death signal, so workers rely on the
// pipe's end to notice the gateway is gone. The product targets Linux and
// Windows; this keeps development on other systems working.
type platform struct{}

func newPlatform() (*platform, error) { return &platform{}, nil }

func (p *platform) start(cmd *exec.Cmd) (osProcess, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &unixProc{pid: cmd.Process.Pid}, nil
}

func (p *platform) close() {}

// waitNoReap is not available here; the unixProc falls back to marking the
// process reaped after Wait.
func waitNoReap(int) bool { return false }

// processIdentity reports only whether the pid exists: there is no portable
// start time, so orphans are never killed on these systems.
func processIdentity(pid int) (string, error) {
	if err := syscall.Kill(pid, 0); err != nil && err != syscall.EPERM {
		return "", err
	}
	return "", nil
}
