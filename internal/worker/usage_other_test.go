//go:build !linux

package worker

import (
	"os"
	"testing"
)

// reportProcessUsage reports nothing off Linux (see usage_linux_test.go).
func reportProcessUsage(*testing.B, *os.ProcessState) {}
