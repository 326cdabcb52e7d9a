//go:build !windows

package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "quirks: a Windows program, run by the Wine suite (test/wine)")
	os.Exit(2)
}
