//go:build windows

package ipc

import "testing"

// shortTempDir is unused by the pipe implementation but keeps the shared
// tests portable.
func shortTempDir(t *testing.T) string { return t.TempDir() }
