package session

import "errors"

// Sentinel errors. The gRPC layer maps each one to a status code and an
// ErrorInfo reason; test for them with errors.Is.
var (
	// ErrNotFound means the session id is unknown, expired or closed.
	ErrNotFound = errors.New("session: not found")
	// ErrNotReady means the session is not ready for commands yet.
	ErrNotReady = errors.New("session: not ready")
	// ErrFaulted means the session's worker failed earlier; the error text
	// carries the fault reason.
	ErrFaulted = errors.New("session: faulted")
	// ErrClosed means the session is closing or closed. A subscription that
	// ends with ErrClosed ended normally: the session was closed.
	ErrClosed = errors.New("session: closed")
	// ErrLimit means max_sessions sessions are already open or opening.
	ErrLimit = errors.New("session: too many sessions")
	// ErrKeyLimit means the opening key already has max_sessions_per_key
	// sessions open or opening.
	ErrKeyLimit = errors.New("session: too many sessions for this API key")
	// ErrPendingLimit means the session already has max_pending_commands
	// commands in flight.
	ErrPendingLimit = errors.New("session: too many pending commands")
	// ErrNoAlarmConsumer means the session's worker has no native alarm
	// consumer (only the gateway's alarm monitor asks).
	ErrNoAlarmConsumer = errors.New("session: the worker has no native alarm consumer")
	// ErrSubscriberLimit means the session already has the maximum number of
	// event subscribers.
	ErrSubscriberLimit = errors.New("session: too many subscribers")
	// ErrSlowConsumer means a subscriber's queue overflowed.
	ErrSlowConsumer = errors.New("session: slow consumer")
	// ErrShuttingDown means the manager refuses new work because it is
	// shutting down.
	ErrShuttingDown = errors.New("session: shutting down")
	// ErrStartFailed wraps the launcher's error when a worker could not be
	// started.
	ErrStartFailed = errors.New("session: worker start failed")
	// ErrWorkerFailed is in the chain of every *FaultError: the worker (or
	// the gateway on its behalf) ended the session abnormally.
	ErrWorkerFailed = errors.New("session: worker failed")
	// ErrSequence means the worker broke the contiguous event sequence.
	ErrSequence = errors.New("session: event sequence violation")
	// ErrReservedHandle means a command named the server handle of the data
	// watchdog's own registration.
	ErrReservedHandle = errors.New("session: server handle reserved by the gateway")
	// ErrAfterSequence means a subscriber asked to resume after a sequence
	// the session has not reached.
	ErrAfterSequence = errors.New("session: after_sequence beyond the last event")
)

// FaultError is the terminal error of a faulted session. It ends every
// subscription and is in the chain of ErrWorkerFailed and of its Cause (for
// example the worker client's heartbeat error, ErrSlowConsumer or
// ErrSequence), so the gRPC layer can map the precise reason.
type FaultError struct {
	// Reason is a one-line human description.
	Reason string
	// Cause is the underlying error; never nil.
	Cause error
}

// Error implements error.
func (e *FaultError) Error() string { return "session: faulted: " + e.Reason }

// Unwrap returns ErrWorkerFailed and the cause.
func (e *FaultError) Unwrap() []error { return []error{ErrWorkerFailed, e.Cause} }
