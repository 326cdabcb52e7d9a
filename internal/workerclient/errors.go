package workerclient

import (
	"errors"
	"fmt"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	workerv1 "github.com/mxgateway/mxgateway/api/mxgateway/worker/v1"
	"github.com/mxgateway/mxgateway/internal/protocol"
)

// Sentinel errors. Terminal errors wrap one of them with detail
// (fmt.Errorf("%w: ...")); test them with errors.Is.
var (
	// ErrNotReady: the client is not (yet, or no longer) Ready for commands.
	ErrNotReady = errors.New("workerclient: not ready")
	// ErrClosed: the client was closed cleanly; pending and later commands
	// fail with it.
	ErrClosed = errors.New("workerclient: closed")
	// ErrWorkerGone: the pipe ended or the worker process exited.
	ErrWorkerGone = errors.New("workerclient: worker gone")
	// ErrCommandTimeout: a command's reply did not arrive within its timeout.
	// It fails only that command; the client stays Ready.
	ErrCommandTimeout = errors.New("workerclient: command timeout")
	// ErrHeartbeatExpired: the worker sent no heartbeat within the grace (or,
	// while a command was pending, within the ceiling).
	ErrHeartbeatExpired = errors.New("workerclient: heartbeat expired")
	// ErrProtocol: the worker broke the protocol (bad frame, wrong session,
	// unexpected body, sequence gap or duplicate, unknown correlation id).
	ErrProtocol = errors.New("workerclient: protocol violation")
	// ErrHandshake: the handshake failed; it is wrapped together with the
	// specific cause (ErrNonceMismatch, ErrVersionMismatch, ErrWorkerGone,
	// ErrWorkerFault, ErrProtocol or a context error).
	ErrHandshake = errors.New("workerclient: handshake failed")
	// ErrNonceMismatch: WorkerHello echoed another nonce.
	ErrNonceMismatch = errors.New("workerclient: nonce mismatch")
	// ErrVersionMismatch: the worker speaks another protocol version.
	ErrVersionMismatch = errors.New("workerclient: protocol version mismatch")
	// ErrWorkerFault: the worker sent a Fault; the error text carries its
	// code and message.
	ErrWorkerFault = errors.New("workerclient: worker fault")
	// ErrShutdownTimeout: the worker did not acknowledge Shutdown and exit
	// before the deadline, and was killed.
	ErrShutdownTimeout = errors.New("workerclient: shutdown timeout")
	// ErrKilled: Kill was called.
	ErrKilled = errors.New("workerclient: killed")
	// ErrCommandTooLarge: the command's frame would exceed the frame limit;
	// it was not sent, and only that command fails.
	ErrCommandTooLarge = errors.New("workerclient: command exceeds the frame limit")
	// ErrWorkerOverflow: the worker's outbound event queue reached its
	// bounds (GatewayHello.max_queued_events, max_queued_event_bytes): the
	// gateway did not keep up with the worker at all. A *FaultError with
	// FAULT_CODE_EVENT_OVERFLOW matches it.
	ErrWorkerOverflow = errors.New("workerclient: the worker's event queue overflowed")
	// ErrReplyTooLarge: the command ran but its reply would not fit one
	// frame (max_frame_bytes); only that command fails, and it changed no
	// item.
	ErrReplyTooLarge = errors.New("workerclient: reply exceeds the frame limit")
	// ErrGuardRefused: the worker's item guard refused the command before
	// MXAccess saw it (a *GuardError carries the worker's explanation).
	ErrGuardRefused = errors.New("workerclient: refused by the worker's item guard")
)

// KillError is the terminal error of a Client that Kill ended: why the
// gateway killed the worker, typed. It matches ErrKilled.
type KillError struct {
	Reason protocol.KillReason
}

// Error implements error.
func (e *KillError) Error() string { return ErrKilled.Error() + ": " + string(e.Reason) }

// Is makes errors.Is(err, ErrKilled) true.
func (e *KillError) Is(target error) bool { return target == ErrKilled }

// FaultError is the terminal error of a Client whose worker sent a Fault:
// its code, typed, and message. It matches ErrWorkerFault.
type FaultError struct {
	Code    workerv1.FaultCode
	Message string
}

// Error implements error.
func (e *FaultError) Error() string {
	return fmt.Sprintf("%s: %s: %s", ErrWorkerFault.Error(), e.Code, e.Message)
}

// Is makes errors.Is(err, ErrWorkerFault) true, and errors.Is(err,
// ErrWorkerOverflow) for an event overflow.
func (e *FaultError) Is(target error) bool {
	return target == ErrWorkerFault || target == ErrWorkerOverflow && e.Code == workerv1.FaultCode_FAULT_CODE_EVENT_OVERFLOW
}

// GuardError is a single command the worker's item guard refused: a handle
// it writes does not name, in the worker's item table, the reference the
// gateway approved. It matches ErrGuardRefused.
type GuardError struct {
	// Denial is the worker's refusal (reason REFERENCE_NOT_ALLOWED).
	Denial *mxgatewayv1.EntryDenial
}

// Error implements error.
func (e *GuardError) Error() string { return ErrGuardRefused.Error() + ": " + e.Denial.GetMessage() }

// Is makes errors.Is(err, ErrGuardRefused) true.
func (e *GuardError) Is(target error) bool { return target == ErrGuardRefused }
