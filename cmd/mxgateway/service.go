package main

import (
	"fmt"
	"os"
)

func runService(args []string) int {
	fmt.Fprintln(os.Stderr, "mxgateway service: not built yet")
	return 1
}
