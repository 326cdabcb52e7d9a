package worker

import (
	"runtime/debug"
	"sync"
)

// StartupHeapLimit bounds the Go memory of a simulator worker's start-up,
// which runs with the collector off (relaxStartupGC): a model whose parse
// stays below it is never collected before the worker is ready; a larger
// one is collected whenever the bound is reached.
const StartupHeapLimit = 64 << 20

// relaxStartupGC turns the collector off for the start-up and returns
// what turns it back on: the GOGC and memory limit in force before, unless
// something changed them meanwhile. It changes nothing when GOGC is off
// already (the deployment's choice); a memory limit below
// StartupHeapLimit stays in force.
//
// Why: a start-up allocates a few MiB that are garbage once the worker is
// ready (the package descriptors' working set, the model's YAML tree and
// the decoder's maps, the handshake), and the worker returns them to the
// OS then (debug.FreeOSMemory). A collection in the middle of it (one or
// two, at the 4 MiB minimum heap) finds most of it still live, touches
// the pages it sweeps and grows the runtime's span sets for every size
// class; that is memory an idle worker keeps for good. Collecting once,
// when everything but the live state is garbage, left an idle worker of a
// 1,000-attribute model about 0.4 MiB smaller (docs/performance.md, "Lean
// workers"). Nothing of the event path changes: the collector is back
// before the loop starts.
func relaxStartupGC() (restore func()) {
	percent := debug.SetGCPercent(-1)
	if percent < 0 {
		debug.SetGCPercent(percent)
		return func() {}
	}
	limit := debug.SetMemoryLimit(-1)
	set := min(limit, StartupHeapLimit)
	debug.SetMemoryLimit(set)
	var once sync.Once
	return func() {
		once.Do(func() {
			// A backend that set its own limit keeps it.
			if debug.SetMemoryLimit(-1) == set {
				debug.SetMemoryLimit(limit)
			}
			if prev := debug.SetGCPercent(percent); prev != -1 {
				debug.SetGCPercent(prev) // set meanwhile: that one stands
			}
		})
	}
}
