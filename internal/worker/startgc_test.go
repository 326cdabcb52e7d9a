package worker

import (
	"math"
	"runtime/debug"
	"testing"
)

// gcSettings reads GOGC and the memory limit without changing them.
func gcSettings() (percent int, limit int64) {
	percent = debug.SetGCPercent(100)
	debug.SetGCPercent(percent)
	return percent, debug.SetMemoryLimit(-1)
}

func keepGCSettings(t *testing.T) {
	t.Helper()
	percent, limit := gcSettings()
	t.Cleanup(func() {
		debug.SetGCPercent(percent)
		debug.SetMemoryLimit(limit)
	})
}

func TestRelaxStartupGCRestores(t *testing.T) {
	keepGCSettings(t)
	debug.SetGCPercent(150)
	debug.SetMemoryLimit(math.MaxInt64)

	restore := relaxStartupGC()
	if p, l := gcSettings(); p != -1 || l != StartupHeapLimit {
		t.Fatalf("during start-up: GOGC %d, limit %d; want off and %d", p, l, StartupHeapLimit)
	}
	restore()
	restore() // idempotent
	if p, l := gcSettings(); p != 150 || l != math.MaxInt64 {
		t.Fatalf("after: GOGC %d, limit %d; want 150 and no limit", p, l)
	}
}

func TestRelaxStartupGCKeepsWhatWasSetMeanwhile(t *testing.T) {
	keepGCSettings(t)
	debug.SetGCPercent(100)
	debug.SetMemoryLimit(math.MaxInt64)

	restore := relaxStartupGC()
	debug.SetMemoryLimit(1 << 30) // a backend's own limit (mxaccess hardening)
	debug.SetGCPercent(75)
	restore()
	if p, l := gcSettings(); p != 75 || l != 1<<30 {
		t.Fatalf("after: GOGC %d, limit %d; want 75 and 1 GiB", p, l)
	}
}

func TestRelaxStartupGCLeavesLowerLimitsAndGOGCOff(t *testing.T) {
	keepGCSettings(t)
	debug.SetGCPercent(100)
	debug.SetMemoryLimit(8 << 20)
	restore := relaxStartupGC()
	if p, l := gcSettings(); p != -1 || l != 8<<20 {
		t.Fatalf("lower limit: GOGC %d, limit %d; want off and 8 MiB", p, l)
	}
	restore()
	if p, l := gcSettings(); p != 100 || l != 8<<20 {
		t.Fatalf("after: GOGC %d, limit %d; want 100 and 8 MiB", p, l)
	}

	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(math.MaxInt64)
	restore = relaxStartupGC()
	if p, l := gcSettings(); p != -1 || l != math.MaxInt64 {
		t.Fatalf("GOGC off: GOGC %d, limit %d; want both untouched", p, l)
	}
	restore()
	if p, l := gcSettings(); p != -1 || l != math.MaxInt64 {
		t.Fatalf("GOGC off, after: GOGC %d, limit %d; want both untouched", p, l)
	}
}
