//go:build !unix

package gateway

import "time"

// processCPU is not measured here (the benchmark then reports 0).
func processCPU() time.Duration { return 0 }
