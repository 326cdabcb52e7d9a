package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/mxgateway/mxgateway/internal/backend"
	"github.com/mxgateway/mxgateway/internal/backend/sim"
	"github.com/mxgateway/mxgateway/internal/galaxy/client"
	"github.com/mxgateway/mxgateway/internal/ipc"
	"github.com/mxgateway/mxgateway/internal/worker"
)

// runWorker is `mxgateway worker`: the simulator worker the gateway
// re-executes itself as for sim sessions, so `mxgateway serve` works without
// a separate binary. It takes the same flags as mxworker; only --backend=sim
// is accepted (the real MXAccess backend lives in mxworker.exe, windows/386).
func runWorker(args []string) int {
	return worker.Main(context.Background(), args, worker.MainOptions{
		Prog:   "mxgateway worker",
		Stdin:  os.Stdin,
		Stderr: os.Stderr,
		Dial:   ipc.Dial,
		Backends: map[string]worker.BackendFactory{
			"sim": func(f worker.Flags, logger *slog.Logger, exit func(int)) (backend.Backend, error) {
				return client.SimBackend(context.Background(), sim.Options{
					ModelPath: f.SimModel,
					Profile:   f.SimProfile,
					Seed:      f.SimSeed,
					Exit:      exit,
					Logger:    logger,
				}, "sim worker")
			},
		},
	})
}
