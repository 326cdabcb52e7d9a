package workerclient

import (
	"fmt"
	"time"

	workerv1 "github.com/mxgateway/mxgateway/api/mxgateway/worker/v1"
	"github.com/mxgateway/mxgateway/internal/logging"
	"github.com/mxgateway/mxgateway/internal/protocol"
)

// Process is the worker process behind a connection, as its launcher
// (internal/supervisor) reaps it. The Client owns the process's life with
// the connection's: it kills the process on any fault, and its End reports
// the exit.
type Process interface {
	// PID is the process id (the supervisor verified it as the pipe's
	// peer).
	PID() int
	// Exited is closed once the process has exited and was reaped, after
	// the launcher logged the exit.
	Exited() <-chan struct{}
	// Exit is how the process ended; it is called only after Exited is
	// closed.
	Exit() Exit
	// Kill kills the process with its group or job. It is safe to call at
	// any time, and it never signals a reaped pid.
	Kill()
}

// Exit is how a worker process ended.
type Exit struct {
	// Code is the exit code, -1 when a signal ended the process.
	Code int
	// Status describes the exit ("exit status 3", "signal: killed").
	Status string
	// Killed reports that the gateway killed the process.
	Killed bool
}

// Cause is the first of the events that ended a worker's life, typed.
type Cause int

// Causes. CauseNone is a life that has not ended.
const (
	CauseNone Cause = iota
	// CauseClosed: Shutdown was acknowledged, then the worker exited.
	CauseClosed
	// CauseExited: the process exited (before its pipe ended).
	CauseExited
	// CausePipeEnded: the pipe ended (before the process exit was seen).
	CausePipeEnded
	// CauseHandshake: the handshake failed.
	CauseHandshake
	// CauseHeartbeat: the worker was silent past the heartbeat grace or
	// ceiling.
	CauseHeartbeat
	// CauseFault: the worker sent a Fault.
	CauseFault
	// CauseProtocol: the worker broke the protocol.
	CauseProtocol
	// CauseWriteFailed: a write to the pipe failed or was cut short.
	CauseWriteFailed
	// CauseShutdownTimeout: Shutdown's deadline passed.
	CauseShutdownTimeout
	// CauseKilled: Kill was called.
	CauseKilled
)

var causeNames = [...]string{"none", "closed", "exited", "pipe_ended", "handshake", "heartbeat",
	"fault", "protocol", "write_failed", "shutdown_timeout", "killed"}

// String names the cause (a bounded label).
func (c Cause) String() string {
	if c >= 0 && int(c) < len(causeNames) {
		return causeNames[c]
	}
	return fmt.Sprintf("cause(%d)", int(c))
}

// End is the one terminal point of a worker's life: the process and its
// connection end together, once, for the first cause.
type End struct {
	// Cause is what ended the life first.
	Cause Cause
	// Err is the terminal error, nil after a clean close (CauseClosed).
	Err error
	// Exit is how the process ended; nil without a Process. It is set
	// before Done is closed.
	Exit *Exit
}

// End returns the terminal point; its Cause is CauseNone before the client
// is terminal. After Done it is complete, Exit included.
func (c *Client) End() End {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.end
	if e.Exit != nil {
		x := *e.Exit
		e.Exit = &x
	}
	return e
}

// drainWait bounds the worker's life after its process exited. The pipe
// may still hold frames the worker wrote before it died (a ShutdownAck, a
// Fault, replies, events): they are read out, and its events handed to the
// session's queue, for at most this long. It normally ends at once, unless a
// grandchild holds the worker's end open, or the session is not taking
// events (the read loop waits for room in the queue): then run ends the life
// without the pipe's end, so the session, waiting on Done, ends with the
// worker's reason rather than its own stall bound.
const drainWait = 500 * time.Millisecond

// terminate is the terminal transition, taken once: it records the cause
// and err, stops the loops, closes the connection and fails every pending
// command. run then kills the process on a fault, waits for it and for
// the loops, and closes Done. Later calls do nothing.
func (c *Client) terminate(cause Cause, err error) {
	state := StateFaulted
	if cause == CauseClosed {
		state = StateClosed
	}
	c.mu.Lock()
	if c.state.terminal() {
		c.mu.Unlock()
		return
	}
	prev := c.state
	c.state = state
	c.end = End{Cause: cause, Err: err}
	pending := c.pending
	c.pending = make(map[uint64]*pendingCmd)
	c.abandoned = 0
	pid := c.pid
	c.mu.Unlock()

	if state == StateFaulted {
		c.log.Warn("workerclient: faulted", "from", prev.String(), "cause", cause.String(), logging.KeyWorkerPID, pid, logging.KeyErr, err)
	} else {
		c.log.Info("workerclient: closed", logging.KeyWorkerPID, pid)
	}
	close(c.stop)
	_ = c.conn.Close()
	perr := err
	if perr == nil {
		perr = ErrClosed
	}
	for _, p := range pending {
		p.ch <- result{err: perr}
	}
	c.startRun() // a client that never reached Ready is finished by run too
}

// startRun starts run once: at Ready, or at the terminal transition of a
// client that never got there.
func (c *Client) startRun() {
	c.runOnce.Do(func() { go c.run() })
}

// exited is the process's exit channel; nil (never ready) without a
// process.
func (c *Client) exited() <-chan struct{} {
	if c.opts.Process == nil {
		return nil
	}
	return c.opts.Process.Exited()
}

// run is the owner of the worker's life once Ready. Every sign that the
// worker is going comes here: the pipe's end (from the read loop) and the
// process exit; the heartbeat check runs here too. The worker is gone when
// both happened (the pipe alone without a process): then the life ends,
// cleanly after a ShutdownAck, otherwise as a fault whose cause is the
// first of the two. A fault decided elsewhere (terminate) stops the loop;
// the process is then killed. Either way run waits for the read loop and
// the process, completes the End with the exit, and closes Done.
func (c *Client) run() {
	check := min(c.opts.HeartbeatGrace/4, time.Second)
	check = max(check, time.Millisecond)
	ticker := time.NewTicker(check)
	exited, pipeEnd := c.exited(), c.pipeEnd
	var first Cause // the first of CausePipeEnded and CauseExited (c.going)
	var pipeErr error
	var drained <-chan time.Time // the drainWait bound, running once the process exited
	var drain *time.Timer
loop:
	for {
		select {
		case <-c.stop:
			break loop
		case pipeErr = <-pipeEnd:
			pipeEnd = nil
			first = c.goingBy(first, CausePipeEnded)
		case <-exited:
			exited = nil
			first = c.goingBy(first, CauseExited)
			if pipeEnd != nil {
				// The pipe holds what the worker wrote before it died: the
				// read loop reads it out, for a bounded while.
				drain = time.NewTimer(c.drainWait)
				drained = drain.C
			}
		case <-drained:
			// The pipe did not end within the bound (a grandchild holds
			// it, or the read loop waits for the session to take events).
			drained = nil
			c.workerGone(first, nil, true) // terminal: the next round stops
			continue
		case now := <-ticker.C:
			c.checkHeartbeat(now, first)
			continue
		}
		if pipeEnd == nil && exited == nil {
			c.workerGone(first, pipeErr, false) // terminal: the next round stops
		}
	}
	ticker.Stop()
	if drain != nil {
		drain.Stop()
	}
	_ = c.conn.Close()
	c.loops.Wait()
	if p := c.opts.Process; p != nil {
		if c.State() == StateFaulted {
			select {
			case <-p.Exited():
			default:
				p.Kill()
			}
		}
		<-p.Exited()
		x := p.Exit()
		c.mu.Lock()
		c.end.Exit = &x
		c.mu.Unlock()
	}
	c.events.close()
	close(c.done)
}

// goingBy records the first sign of the worker's going and returns it.
func (c *Client) goingBy(first, sign Cause) Cause {
	if first != CauseNone {
		return first
	}
	c.mu.Lock()
	c.going = sign
	c.mu.Unlock()
	return sign
}

// workerGone ends the life of a worker whose pipe ended and whose process
// exited: a clean close after a ShutdownAck, otherwise a fault caused by
// the first of the two. pipeOpen is a pipe that had not ended drainWait
// after the exit (the cause is then CauseExited).
func (c *Client) workerGone(first Cause, pipeErr error, pipeOpen bool) {
	c.mu.Lock()
	clean := c.state == StateClosing && c.ackReceived
	c.mu.Unlock()
	if clean {
		c.terminate(CauseClosed, nil)
		return
	}
	var x Exit
	if p := c.opts.Process; p != nil {
		x = p.Exit()
		if x.Code == protocol.ExitEventOverflow {
			// The worker overflowed; its Fault may not have reached the
			// pipe (flow control had filled it).
			c.terminate(first, &FaultError{Code: workerv1.FaultCode_FAULT_CODE_EVENT_OVERFLOW,
				Message: fmt.Sprintf("the worker exited with code %d: its event queue overflowed; the gateway did not keep up", protocol.ExitEventOverflow)})
			return
		}
	}
	detail := "pipe closed"
	if pipeErr != nil {
		detail += ": " + pipeErr.Error()
	}
	switch {
	case c.opts.Process == nil:
	case pipeOpen:
		detail = fmt.Sprintf("process exited: %s; its pipe was not read out within %v", x.Status, c.drainWait)
	case first == CauseExited:
		detail = "process exited: " + x.Status
	default:
		detail += "; process exited: " + x.Status
	}
	c.terminate(first, fmt.Errorf("%w: %s", ErrWorkerGone, detail))
}

// checkHeartbeat faults the client when the worker has been silent too long.
// Only Ready is watched: during Closing the worker stops heartbeating to tear
// down, and the Shutdown deadline bounds it instead. first is the first sign
// of the worker's going seen so far: a worker whose pipe ended is silent by
// then, and a fault then keeps that cause.
func (c *Client) checkHeartbeat(now time.Time, first Cause) {
	c.mu.Lock()
	if c.state != StateReady {
		c.mu.Unlock()
		return
	}
	silence := now.Sub(c.lastHeartbeat)
	pending := len(c.pending)
	if silence <= c.opts.HeartbeatGrace {
		c.ceilingLogged = false
		c.mu.Unlock()
		return
	}
	if pending > 0 && silence <= c.opts.HeartbeatCeiling {
		first := !c.ceilingLogged
		c.ceilingLogged = true
		c.mu.Unlock()
		if first {
			c.log.Warn("workerclient: worker silent past the heartbeat grace while a command runs",
				"silence", silence.String(), "ceiling", c.opts.HeartbeatCeiling.String(), "pending", pending)
		}
		return
	}
	c.mu.Unlock()
	limit := c.opts.HeartbeatGrace
	if pending > 0 {
		limit = c.opts.HeartbeatCeiling
	}
	if first == CausePipeEnded {
		c.terminate(first, fmt.Errorf("%w: pipe closed, and the process did not exit within %v", ErrWorkerGone, limit))
		return
	}
	c.terminate(CauseHeartbeat, fmt.Errorf("%w: no heartbeat for %v (limit %v, %d commands pending)",
		ErrHeartbeatExpired, silence.Round(time.Millisecond), limit, pending))
}
