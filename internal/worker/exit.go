package worker

import (
	"sync"
	"time"

	"github.com/mxgateway/mxgateway/internal/protocol"
)

// Bounds of Exiter's flush.
const (
	exitCommandWait = 200 * time.Millisecond
	exitFlushWait   = time.Second
)

// Exiter ends the process when a backend asks for it (the simulator's crash
// fault), after giving the worker a moment to deliver what it already has:
// the reply of the command that was running (the Write that requested the
// crash) and the events and replies already queued. Only then does it call
// the exit function. Give a backend Exiter.Exit instead of os.Exit, and the
// same Exiter to Run through Config.Exiter.
type Exiter struct {
	exit func(code int)

	mu sync.Mutex
	w  *worker
}

// NewExiter returns an Exiter that finally calls exit (os.Exit in a worker
// process; a recorder in tests).
func NewExiter(exit func(code int)) *Exiter {
	return &Exiter{exit: exit}
}

// Exit flushes (bounded by about a second) and calls the exit function with
// code, or with protocol.ExitSimulatedCrash when the backend chose none
// (code <= 0). It may be called from any goroutine, including the backend's
// event thread.
func (e *Exiter) Exit(code int) {
	if code <= 0 {
		code = protocol.ExitSimulatedCrash
	}
	e.mu.Lock()
	w := e.w
	e.mu.Unlock()
	if w != nil {
		w.flushForExit(code)
	}
	e.exit(code)
}

func (e *Exiter) attach(w *worker) {
	e.mu.Lock()
	e.w = w
	e.mu.Unlock()
}

func (e *Exiter) detach() { e.attach(nil) }

// flushForExit waits briefly for the running command's reply to be queued,
// then for the queue to reach the connection.
func (w *worker) flushForExit(code int) {
	w.log.Error("worker: backend requested process exit", "exit_code", code)
	_, running, _, _ := w.cmds.snapshot()
	deadline := time.Now().Add(exitCommandWait)
	for running != 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
		if _, now, _, _ := w.cmds.snapshot(); now != running {
			break
		}
	}
	deadline = time.Now().Add(exitFlushWait)
	for w.out.unsent.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
}
