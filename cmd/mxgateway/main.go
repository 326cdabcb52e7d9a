// Command mxgateway is the MXAccess gRPC gateway. Subcommands: serve, worker
// (the built-in simulator worker the gateway re-executes for sim sessions),
// galaxy (the simulated Galaxy runtime every sim worker attaches to), apikey,
// config, service and version.
package main

import (
	"fmt"
	"os"

	"github.com/mxgateway/mxgateway/internal/buildinfo"
)

const usage = `usage: mxgateway <command> [flags]

commands:
  serve     run the gateway (default: 127.0.0.1:5000 gRPC, 127.0.0.1:5001 HTTP, simulator)
  apikey    create, list, revoke and rotate API keys (offline, on the key store)
  config    print or validate the effective configuration
  service   install, uninstall, start or stop the Windows service
  worker    run a worker (launched by the gateway, not by hand)
  galaxy    run the simulated Galaxy runtime (serve starts its own), or send it an admin request
  version   print the version
`

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return runServe(args[1:])
	case "worker":
		return runWorker(args[1:])
	case "galaxy":
		return runGalaxy(args[1:])
	case "apikey":
		return runAPIKey(args[1:])
	case "config":
		return runConfig(args[1:])
	case "service":
		return runService(args[1:])
	case "version", "--version", "-version":
		fmt.Println("mxgateway", buildinfo.Get())
		return 0
	case "help", "-h", "--help":
		fmt.Print(usage)
		return 0
	default:
		fmt.Fprintf(os.Stderr, "mxgateway: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}
