// Package protocol holds the constants of the gateway-worker protocol: its
// version, frame limits, default timings and the worker's exit codes.
package protocol

import (
	"time"
)

// Version is the gateway-worker protocol version. Both sides refuse a peer
// that speaks another one. Version 2 added the item guard
// (WorkerCommand.item_guard, WorkerCommandReply.denial): a worker that
// ignored it would run writes the gateway's constraints no longer allow.
// Version 3 added event credit (GatewayHello.event_credit, EventCredit):
// a worker without it would send events the gateway has no room for.
const Version uint32 = 3

// DefaultMaxFrameBytes is the default largest frame payload (16 MiB).
const DefaultMaxFrameBytes = 16 << 20

// Default bounds of the worker's outbound event queue: the burst a worker
// buffers while the gateway is behind before it faults with
// FAULT_CODE_EVENT_OVERFLOW. Whichever is reached first gives. The gateway
// announces its configured bounds in GatewayHello.
const (
	DefaultWorkerQueueEvents = 1_000_000
	DefaultWorkerQueueBytes  = 256 << 20
)

// CommandQueueSize is how many commands a worker queues behind the one it
// runs; one more arriving is a protocol fault. The gateway's per-session
// command budget (max_pending_commands, session.Options.MaxPendingCommands)
// may not exceed it, so that a burst of commands is refused with
// PENDING_LIMIT at the gateway and never reaches a full worker queue.
const CommandQueueSize = 4096

// MaxWorkerProcs is the largest GOMAXPROCS a worker may be given
// (--max-procs, the gateway's worker_max_procs).
const MaxWorkerProcs = 256

// Default timings of the worker protocol.
const (
	DefaultHeartbeatInterval = 5 * time.Second
	DefaultHeartbeatGrace    = 15 * time.Second
	// DefaultHeartbeatCeiling bounds how long a running command may keep a
	// silent worker alive (long bulk reads must not self-fault).
	DefaultHeartbeatCeiling = 75 * time.Second
	DefaultShutdownTimeout  = 10 * time.Second
	DefaultStartupTimeout   = 15 * time.Second
)

// NonceBytes is the length of the one-time nonce passed on the worker's stdin.
const NonceBytes = 32

// Worker exit codes. They are documented in docs/worker.md.
const (
	ExitOK = 0 // clean shutdown after ShutdownAck
	// ExitCrashed is the Go runtime's own exit code (an unrecovered panic,
	// a fatal error): the worker never chooses it, so a process that exits
	// with it crashed.
	ExitCrashed         = 2
	ExitBadArguments    = 11 // missing or invalid command-line arguments
	ExitVersionMismatch = 3  // GatewayHello spoke another protocol version
	ExitNoNonce         = 4  // stdin did not carry a nonce
	ExitHandshakeFailed = 5  // dial, hello or nonce check failed
	ExitBackendInit     = 6  // the backend could not initialise (Fault sent)
	ExitConnectionLost  = 7  // the gateway connection ended without Shutdown
	ExitProtocolError   = 8  // the gateway broke the protocol
	ExitEventOverflow   = 9  // the outbound event queue overflowed (Fault sent)
	ExitInternal        = 10 // a panic or internal error (Fault sent if possible)
	ExitSimulatedCrash  = 42 // default code of the simulator's crash fault
)

// ExitReason turns a worker's exit into a bounded name (the reason label
// of the workers_exited_total metric): "killed" when the supervisor killed
// it, "signal" for another signal (code -1), "crashed" for the Go runtime's
// exit code and a Windows exception status (0xC0000000 and up), the name of
// a documented worker exit code ("ok", "connection_lost", "backend_init",
// ...), or "other".
func ExitReason(code int, killed bool) string {
	if killed {
		return "killed"
	}
	if uint32(code) >= 0xC0000000 && code != -1 {
		return "crashed" // an NTSTATUS such as STATUS_ACCESS_VIOLATION
	}
	switch code {
	case -1:
		return "signal"
	case ExitCrashed:
		return "crashed"
	case ExitOK:
		return "ok"
	case ExitBadArguments:
		return "bad_arguments"
	case ExitVersionMismatch:
		return "version_mismatch"
	case ExitNoNonce:
		return "no_nonce"
	case ExitHandshakeFailed:
		return "handshake_failed"
	case ExitBackendInit:
		return "backend_init"
	case ExitConnectionLost:
		return "connection_lost"
	case ExitProtocolError:
		return "protocol_error"
	case ExitEventOverflow:
		return "event_overflow"
	case ExitInternal:
		return "internal"
	case ExitSimulatedCrash:
		return "simulated_crash"
	default:
		return "other"
	}
}

// Default bounds of the gateway's per-session queue between the worker pipe
// and the session's distributor. While it is full the gateway stops reading
// the pipe and the worker buffers (flow control).
const (
	DefaultGatewayQueueEvents = 100_000
	DefaultGatewayQueueBytes  = 64 << 20
)

// KillReason says why the gateway killed a worker. Its values are the
// bounded reason labels of the workers_killed_total metric; the gateway
// passes them typed from where the decision is made to the metric.
type KillReason string

// Kill reasons.
const (
	KillSlowConsumer    KillReason = "slow_consumer"    // a subscriber stalled under fault-session
	KillAfterFault      KillReason = "after_fault"      // the session is closed after it faulted
	KillShutdownTimeout KillReason = "shutdown_timeout" // a graceful shutdown did not finish
	KillProtocolError   KillReason = "protocol_error"   // the worker broke the protocol (an event sequence gap)
	KillNotOpened       KillReason = "not_opened"       // the session could not be registered after the launch
	KillGateway         KillReason = "gateway"          // another decision of the gateway (readiness probe, shutdown)
)
