//go:build windows

package harness

import "os"

// terminateProcess kills: Windows has no SIGTERM for console-less children.
func terminateProcess(p *os.Process) error { return p.Kill() }
