package repo

import (
	"strings"
	"testing"
)

// workerForbidden are the packages (with everything under them) the worker
// binary must never link (issue 14, "lean workers"): a worker speaks the
// pipe protocol to its gateway and nothing else, so it has no use for a
// gRPC stack, an HTTP stack, the key store's database or metrics, and each
// costs resident memory in every one of a gateway's many workers. Nor
// encoding/xml: the simulator's one XML element (the alarm consumer's) is
// written by hand, since a linked package's initialisation and pages count
// in every worker's RSS (docs/performance.md, "Lean workers").
var workerForbidden = []string{
	"google.golang.org/grpc",
	"net/http",
	"modernc.org/sqlite",
	"github.com/prometheus",
	"encoding/xml",
}

// TestWorkerIsLean fails when cmd/mxworker, on any target we build, links a
// package of workerForbidden, and names the import chain that brought it in.
func TestWorkerIsLean(t *testing.T) {
	for _, env := range buildTargets {
		pkgs := goList(t, env, "-deps", "./cmd/mxworker")
		byPath := map[string]listedPackage{}
		for _, p := range pkgs {
			byPath[p.ImportPath] = p
		}
		// One report per forbidden entry: the package of it that is
		// closest to main, with the chain that reaches it.
		worst := map[string][]string{}
		for _, p := range pkgs {
			if bad := forbiddenFor(p.ImportPath); bad != "" {
				chain := importChain(byPath, module+"/cmd/mxworker", p.ImportPath)
				if prev, ok := worst[bad]; !ok || len(chain) < len(prev) {
					worst[bad] = chain
				}
			}
		}
		for _, bad := range workerForbidden {
			if chain, ok := worst[bad]; ok {
				t.Errorf("%s: cmd/mxworker links %s (forbidden), via %s", strings.Join(env, " "), bad, strings.Join(chain, " -> "))
			}
		}
	}
}

// forbiddenFor returns the entry of workerForbidden that covers path, or "".
func forbiddenFor(path string) string {
	// The standard library's vendored copies (vendor/golang.org/x/net/http/...)
	// come with net/http and are reported through it.
	for _, f := range workerForbidden {
		if path == f || strings.HasPrefix(path, f+"/") {
			return f
		}
	}
	return ""
}

// importChain finds a shortest import path from one package to another
// among the listed packages (breadth first over their imports).
func importChain(pkgs map[string]listedPackage, from, to string) []string {
	prev := map[string]string{from: ""}
	queue := []string{from}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		if cur == to {
			var chain []string
			for p := to; p != ""; p = prev[p] {
				chain = append([]string{p}, chain...)
			}
			return chain
		}
		for _, imp := range pkgs[cur].Imports {
			if _, seen := prev[imp]; !seen {
				prev[imp] = cur
				queue = append(queue, imp)
			}
		}
	}
	return []string{from, "?", to}
}
