package mxgatewayv1

// ErrorDomain is the google.rpc.ErrorInfo domain of every gateway error.
const ErrorDomain = "mxgateway"

// ErrorInfo reasons. Every gateway failure carries exactly one of these in a
// google.rpc.ErrorInfo detail; clients branch on them, never on messages.
const (
	ReasonSessionNotFound    = "SESSION_NOT_FOUND"     // NOT_FOUND: unknown or expired session id
	ReasonSessionNotReady    = "SESSION_NOT_READY"     // FAILED_PRECONDITION: starting or closing
	ReasonSessionFaulted     = "SESSION_FAULTED"       // FAILED_PRECONDITION: the worker failed earlier
	ReasonWorkerExited       = "WORKER_EXITED"         // UNAVAILABLE: the worker died or its pipe broke
	ReasonWorkerStartFailed  = "WORKER_START_FAILED"   // UNAVAILABLE: the worker could not be started
	ReasonHeartbeatExpired   = "HEARTBEAT_EXPIRED"     // UNAVAILABLE: the worker stopped sending heartbeats
	ReasonCommandTimeout     = "COMMAND_TIMEOUT"       // DEADLINE_EXCEEDED: no reply in time
	ReasonSessionLimit       = "SESSION_LIMIT"         // RESOURCE_EXHAUSTED: max_sessions reached
	ReasonPendingLimit       = "PENDING_LIMIT"         // RESOURCE_EXHAUSTED: max_pending_commands reached
	ReasonSubscriberLimit    = "SUBSCRIBER_LIMIT"      // RESOURCE_EXHAUSTED: too many subscribers
	ReasonSlowConsumer       = "SLOW_CONSUMER"         // RESOURCE_EXHAUSTED: a subscriber fell behind
	ReasonInvalidRequest     = "INVALID_REQUEST"       // INVALID_ARGUMENT: malformed request
	ReasonShuttingDown       = "SHUTTING_DOWN"         // UNAVAILABLE: the gateway is stopping
	ReasonSessionClosed      = "SESSION_CLOSED"        // UNAVAILABLE/FAILED_PRECONDITION: closed while in use
	ReasonUnauthenticated    = "UNAUTHENTICATED"       // UNAUTHENTICATED: no, malformed, unknown or revoked key
	ReasonPermissionDenied   = "PERMISSION_DENIED"     // PERMISSION_DENIED: scope missing
	ReasonNotSessionOwner    = "NOT_SESSION_OWNER"     // PERMISSION_DENIED: the session belongs to another key
	ReasonReferenceForbidden = "REFERENCE_NOT_ALLOWED" // per-entry or PERMISSION_DENIED: key constraint
	ReasonInternal           = "INTERNAL"              // INTERNAL: details only in the gateway log
	ReasonReplyTooLarge      = "REPLY_TOO_LARGE"       // RESOURCE_EXHAUSTED: the reply exceeds max_frame_bytes; only that call failed
	ReasonEventOverflow      = "EVENT_OVERFLOW"        // UNAVAILABLE: the worker's event queue filled; the gateway did not keep up at all
	ReasonHandleReserved     = "HANDLE_RESERVED"       // INVALID_ARGUMENT: the server handle is the data watchdog's registration
)

// ErrorInfo reasons of the hardening limits (docs/security.md).
const (
	ReasonAPIKeyRevoked       = "API_KEY_REVOKED"      // UNAUTHENTICATED: the key was revoked while a stream was open
	ReasonKeySessionLimit     = "KEY_SESSION_LIMIT"    // RESOURCE_EXHAUSTED: max_sessions_per_key reached
	ReasonKeyStreamLimit      = "KEY_STREAM_LIMIT"     // RESOURCE_EXHAUSTED: max_streams_per_key reached
	ReasonCredentialThrottled = "CREDENTIAL_THROTTLED" // RESOURCE_EXHAUSTED: too many failed credential checks; retry later
	ReasonWatchLimit          = "HEALTH_WATCH_LIMIT"   // RESOURCE_EXHAUSTED: max_health_watches reached
)

// ErrorInfo reasons of the Galaxy service (docs/browse.md).
const (
	ReasonObjectNotFound    = "OBJECT_NOT_FOUND"   // NOT_FOUND: the selector names no object the key may see
	ReasonPageTokenInvalid  = "PAGE_TOKEN_INVALID" // INVALID_ARGUMENT: a malformed token, or one made for another request
	ReasonPageTokenStale    = "PAGE_TOKEN_STALE"   // INVALID_ARGUMENT: the token was made before the last deploy
	ReasonGalaxyUnavailable = "GALAXY_UNAVAILABLE" // UNAVAILABLE: no Galaxy model yet (or no source on this gateway)
)

// Reasons of shared subscriptions on NATS (docs/nats.md), carried in the
// reason fields of SharedLeaseReply, SharedLeaseEntry and SharedWriteReply.
const (
	ReasonLeaseLimit   = "LEASE_LIMIT"   // nats_max_references or nats_max_leases_per_key reached
	ReasonAdviseFailed = "ADVISE_FAILED" // MXAccess refused AddItem or Advise of the reference (message has the HRESULT)
	ReasonUnavailable  = "UNAVAILABLE"   // the gateway-owned session could not be opened or failed; retry
)

// ErrorInfo reasons of the Alarms service (docs/alarms.md).
const (
	ReasonAlarmNotFound      = "ALARM_NOT_FOUND"      // NOT_FOUND: the reference names no watched alarm
	ReasonAlarmInstanceStale = "ALARM_INSTANCE_STALE" // FAILED_PRECONDITION: the alarm was raised again since that instance
	ReasonAlarmsUnavailable  = "ALARMS_UNAVAILABLE"   // UNAVAILABLE: the alarm monitor has no provider yet (or none on this gateway)
	ReasonAlarmFeedBehind    = "ALARM_FEED_BEHIND"    // RESOURCE_EXHAUSTED: a StreamAlarms client fell too far behind
	ReasonAlarmAckRefused    = "ALARM_ACK_REFUSED"    // PERMISSION_DENIED: the Galaxy refused the operator's credentials or the AckMsg write
)
