//go:build !linux

package harness

import "os"

// processesMatching needs /proc; elsewhere it finds nothing.
func processesMatching(string) []int { return nil }

// terminate asks the process to stop: SIGTERM where signals exist, a kill
// on Windows.
func terminate(p *os.Process) error { return terminateProcess(p) }
