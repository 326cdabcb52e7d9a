package main

import (
	"fmt"
	"os"
)

func runAPIKey(args []string) int {
	fmt.Fprintln(os.Stderr, "mxgateway apikey: not built yet")
	return 1
}
