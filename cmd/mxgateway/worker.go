package main

import (
	"fmt"
	"os"
)

func runWorker(args []string) int {
	fmt.Fprintln(os.Stderr, "mxgateway worker: not built yet")
	return 1
}
