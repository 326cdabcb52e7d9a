package metrics

import "github.com/mxgateway/mxgateway/internal/protocol"

// ExitReason turns a worker's exit into the bounded reason label of
// workers_exited_total: "killed" when the supervisor killed it, "signal"
// for another signal (code -1), the name of a documented worker exit code
// ("ok", "connection_lost", "backend_init", ...), or "other".
func ExitReason(code int, killed bool) string {
	if killed {
		return "killed"
	}
	switch code {
	case -1:
		return "signal"
	case protocol.ExitOK:
		return "ok"
	case protocol.ExitBadArguments:
		return "bad_arguments"
	case protocol.ExitVersionMismatch:
		return "version_mismatch"
	case protocol.ExitNoNonce:
		return "no_nonce"
	case protocol.ExitHandshakeFailed:
		return "handshake_failed"
	case protocol.ExitBackendInit:
		return "backend_init"
	case protocol.ExitConnectionLost:
		return "connection_lost"
	case protocol.ExitProtocolError:
		return "protocol_error"
	case protocol.ExitEventOverflow:
		return "event_overflow"
	case protocol.ExitInternal:
		return "internal"
	case protocol.ExitSimulatedCrash:
		return "simulated_crash"
	default:
		return "other"
	}
}

// Outcome returns the outcome label of a finished command: OutcomeError
// when err is not nil, OutcomeMXAccessFailure when MXAccess refused the
// call (a reply with status MXACCESS_FAILURE), else OutcomeOK.
func Outcome(err error, mxaccessFailure bool) string {
	switch {
	case err != nil:
		return OutcomeError
	case mxaccessFailure:
		return OutcomeMXAccessFailure
	default:
		return OutcomeOK
	}
}
