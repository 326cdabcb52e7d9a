// Package worker is the worker side of the gateway-worker protocol: it reads
// the one-time nonce from stdin, dials the gateway's endpoint, performs the
// handshake (GatewayHello → WorkerHello → WorkerReady or Fault) and then runs
// the protocol loop that turns Command frames into calls on a backend.Backend
// and backend events into Event frames.
//
// The loop has a fixed set of goroutines: one frame reader, one frame writer
// (the only user of the frame.Writer), one command goroutine that runs
// commands strictly one at a time (the STA discipline MXAccess demands) and
// one heartbeat goroutine that probes the backend's thread before each
// heartbeat. Events are numbered contiguously as the sink receives them and
// queued on a bounded outbound queue without ever blocking the backend; an
// overflow faults the worker instead of dropping anything.
//
// The bulk commands and ReadBulk (MXAccess has no synchronous read) are built
// here from the MXAccess primitives, so every backend gets them for free.
//
// Run is used by cmd/mxworker and by `mxgateway worker`; Main wraps it with
// the shared command line. docs/worker.md describes the process end to end.
package worker
