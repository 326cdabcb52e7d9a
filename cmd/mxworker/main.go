// Command mxworker is the standalone mxgateway worker: one process per client
// session, launched by the gateway, which writes the one-time nonce on its
// stdin and reads its structured logs from stderr. Backends: sim (every OS)
// and mxaccess (windows/386 only).
//
// Usage:
//
//	mxworker --session-id ID --endpoint EP [--protocol-version N]
//	         [--backend sim|mxaccess] [--sim-model PATH] [--sim-profile default|test]
//	         [--sim-seed N] [--prog-id PROGID] [--log-level info] [--log-format json]
//	mxworker selftest [flags]   (windows/386: check the local MXAccess installation)
//	mxworker version
//
// docs/worker.md describes the bootstrap, the protocol and the exit codes.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/mxgateway/mxgateway/internal/backend"
	"github.com/mxgateway/mxgateway/internal/backend/sim"
	"github.com/mxgateway/mxgateway/internal/buildinfo"
	"github.com/mxgateway/mxgateway/internal/galaxy/client"
	"github.com/mxgateway/mxgateway/internal/ipc"
	"github.com/mxgateway/mxgateway/internal/worker"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) > 0 {
		switch args[0] {
		case "version", "--version", "-version":
			fmt.Println("mxworker", buildinfo.Get())
			return 0
		case "selftest":
			return runSelftest(args[1:])
		}
	}
	return worker.Main(context.Background(), args, worker.MainOptions{
		Prog:   "mxworker",
		Stdin:  os.Stdin,
		Stderr: os.Stderr,
		Dial:   ipc.Dial,
		Backends: map[string]worker.BackendFactory{
			"sim": newSimBackend,
			"mxaccess": func(f worker.Flags, logger *slog.Logger, _ func(int)) (backend.Backend, error) {
				return newMXAccessBackend(f.ProgID, logger)
			},
		},
	})
}

// newSimBackend builds the Galaxy simulator from the command line.
func newSimBackend(f worker.Flags, logger *slog.Logger, exit func(int)) (backend.Backend, error) {
	return client.SimBackend(context.Background(), sim.Options{
		ModelPath: f.SimModel,
		Profile:   f.SimProfile,
		Seed:      f.SimSeed,
		Exit:      exit,
		Logger:    logger,
	}, "sim worker")
}
