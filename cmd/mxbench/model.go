package main

import (
	"fmt"
	"os"
	"strings"
	"time"
)

// Bench model references.
const (
	refStorm      = "Sim.Storm"
	refStormValue = "Sim.StormValue"
	refWrite      = "Bench.W"
	// refRuntimeStorm is the shared attribute the Galaxy runtime storms
	// (`mxgateway galaxy admin storm`).
	refRuntimeStorm = "Bench.S"
)

// memRef is the i-th (0-based) constant attribute used for AddItem and the
// memory figures.
func memRef(i int) string { return fmt.Sprintf("Mem.A%04d", i) }

// peerRef is the i-th changing attribute of the peer workload.
func peerRef(i int) string { return fmt.Sprintf("Peer.P%05d", i) }

// writeModel writes the simulator model the benchmark gateways serve:
// Bench.W (a FreeAccess MxInteger to write), Bench.S (the runtime storm's
// MxInteger), memItems constant MxIntegers
// Mem.A0000... and, when peerItems > 0, peerItems MxDouble counters
// Peer.P00000... stepping by 1 every peerEvery. Nothing else moves.
func writeModel(path string, memItems, peerItems int, peerEvery time.Duration) error {
	var b strings.Builder
	b.WriteString("galaxy: Bench\ndescription: mxbench workload model\nobjects:\n")
	b.WriteString("  - tag: Bench\n    attributes:\n      - {name: W, type: MxInteger, value: 0}\n      - {name: S, type: MxInteger, value: 0}\n")
	if memItems > 0 {
		b.WriteString("  - tag: Mem\n    attributes:\n")
		for i := range memItems {
			fmt.Fprintf(&b, "      - {name: A%04d, type: MxInteger, value: %d}\n", i, i)
		}
	}
	if peerItems > 0 {
		b.WriteString("  - tag: Peer\n    attributes:\n")
		for i := range peerItems {
			fmt.Fprintf(&b, "      - {name: P%05d, type: MxDouble, value: 0, generator: {kind: counter, every: %s, min: 0, max: 1000000000, step: 1}}\n",
				i, peerEvery)
		}
	}
	return os.WriteFile(path, []byte(b.String()), 0o600)
}
