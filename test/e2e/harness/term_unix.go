//go:build !linux && !windows

package harness

import (
	"os"
	"syscall"
)

func terminateProcess(p *os.Process) error { return p.Signal(syscall.SIGTERM) }
