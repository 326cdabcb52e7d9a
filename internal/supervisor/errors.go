package supervisor

import "errors"

// Sentinel errors. Launch errors wrap one of them with detail; test them with
// errors.Is.
var (
	// ErrStartTimeout: the worker was not Ready within Options.StartupTimeout
	// (or the caller's context ended first).
	ErrStartTimeout = errors.New("supervisor: worker start timed out")
	// ErrPeerMismatch: the process that connected to the endpoint is not the
	// process the supervisor started.
	ErrPeerMismatch = errors.New("supervisor: endpoint peer is not the launched worker")
	// ErrWorkerExited: the worker exited before it was Ready; the error
	// carries its exit status and its last stderr lines.
	ErrWorkerExited = errors.New("supervisor: worker exited during start-up")
	// ErrClosed: the supervisor is closed.
	ErrClosed = errors.New("supervisor: closed")
)
