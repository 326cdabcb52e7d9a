// Command mxctl is the mxgateway client CLI, built on the Go SDK
// (package client): health, sessions, read, write, subscribe, apikey, bench
// and version. Run `mxctl help` for usage.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
