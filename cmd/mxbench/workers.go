package main

import (
	"bytes"
	"os"
	"strconv"
)

// sessionWorkers lists the gateway's worker processes: its children that
// run a worker (mxworker, or the gateway as `mxgateway worker`), leaving out
// the Galaxy runtime (`mxgateway galaxy`), whose memory is the model's and
// not a session's (Linux only; nil elsewhere).
func (g *gatewayProc) sessionWorkers() []int {
	var out []int
	for _, pid := range g.workers() {
		if isWorker(pid) {
			out = append(out, pid)
		}
	}
	return out
}

// isWorker reports whether pid's command line is a worker's: every worker
// is started with --session-id.
func isWorker(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	for _, arg := range bytes.Split(b, []byte{0}) {
		if bytes.HasPrefix(arg, []byte("--session-id")) {
			return true
		}
	}
	return false
}
