package main

import (
	"fmt"
	"os"
)

func runConfig(args []string) int {
	fmt.Fprintln(os.Stderr, "mxgateway config: not built yet")
	return 1
}
