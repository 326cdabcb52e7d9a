package main

import (
	"context"
	"sync"

	"github.com/mxgateway/mxgateway/internal/opshttp"
)

// followChecks wraps the readiness checks so that set learns the overall
// result at the end of every round, including the first (opshttp's
// OnReadyChange reports changes only, and "not ready" is its starting
// point, so a first round that fails would otherwise leave the gRPC health
// status SERVING). opshttp runs the checks of a round in order, one at a
// time, so the last check's end is the end of the round.
func followChecks(checks []opshttp.Check, set func(ready bool)) []opshttp.Check {
	var mu sync.Mutex
	failed := make([]bool, len(checks))
	out := make([]opshttp.Check, len(checks))
	for i, c := range checks {
		out[i] = opshttp.Check{Name: c.Name, Func: func(ctx context.Context) error {
			err := c.Func(ctx)
			mu.Lock()
			failed[i] = err != nil
			ready := true
			for _, f := range failed {
				ready = ready && !f
			}
			mu.Unlock()
			if i == len(checks)-1 {
				set(ready)
			}
			return err
		}}
	}
	return out
}
