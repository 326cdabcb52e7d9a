// Command mxworker is the standalone mxgateway worker: one process per client
// session, launched by the gateway. Backends: sim (every OS) and mxaccess
// (windows/386 only).
package main

import (
	"fmt"
	"os"

	"github.com/mxgateway/mxgateway/internal/buildinfo"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "version" {
		fmt.Println("mxworker", buildinfo.Get())
		return
	}
	fmt.Fprintln(os.Stderr, "mxworker: not built yet")
	os.Exit(2)
}
