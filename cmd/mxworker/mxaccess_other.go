//go:build !(windows && 386)

package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/mxgateway/mxgateway/internal/backend"
	"github.com/mxgateway/mxgateway/internal/protocol"
)

// errNoMXAccess explains why --backend=mxaccess cannot work here: MXAccess is
// a 32-bit in-process COM server, so only a windows/386 worker can load it.
var errNoMXAccess = errors.New("mxworker: backend mxaccess is only available in the windows/386 build")

// newMXAccessBackend is the stand-in for the real COM backend on every
// platform but windows/386.
func newMXAccessBackend(progID string, logger *slog.Logger) (backend.Backend, error) {
	return nil, errNoMXAccess
}

// runSelftest is the stand-in for `mxworker selftest` on every platform but
// windows/386.
func runSelftest(args []string) int {
	fmt.Fprintln(os.Stderr, "mxworker: selftest checks a real MXAccess installation and is only available in the windows/386 build")
	return protocol.ExitBadArguments
}
