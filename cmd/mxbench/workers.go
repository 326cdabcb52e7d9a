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

// pssBytes reads a process's proportional set size from
// /proc/<pid>/smaps_rollup (Linux only): its private pages plus its share
// of the pages it shares, such as the text of a binary every worker runs,
// so that a sum over workers counts shared pages once.
func pssBytes(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/smaps_rollup")
	if err != nil {
		return 0, err
	}
	for line := range bytes.SplitSeq(b, []byte{'\n'}) {
		if v, ok := bytes.CutPrefix(line, []byte("Pss:")); ok {
			f := bytes.Fields(v)
			if len(f) < 1 {
				break
			}
			kb, err := strconv.ParseInt(string(f[0]), 10, 64)
			if err != nil {
				return 0, err
			}
			return kb * 1024, nil
		}
	}
	return 0, os.ErrNotExist
}
