// Command mxctl is the mxgateway client CLI, built on the Go SDK.
package main

import (
	"fmt"
	"os"

	"github.com/mxgateway/mxgateway/internal/buildinfo"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "version" {
		fmt.Println("mxctl", buildinfo.Get())
		return
	}
	fmt.Fprintln(os.Stderr, "mxctl: not built yet")
	os.Exit(2)
}
