package alarms

import "errors"

// Errors; the gateway's error table maps each to a gRPC code and reason.
var (
	// ErrInvalid: a malformed request (filter, comment, page token).
	ErrInvalid = errors.New("alarms: invalid request")
	// ErrNotFound: the reference names no watched alarm.
	ErrNotFound = errors.New("alarms: no such alarm")
	// ErrStaleInstance: the alarm was raised again since the instance
	// acknowledged.
	ErrStaleInstance = errors.New("alarms: the alarm was raised again since that instance")
	// ErrUnavailable: no provider is delivering yet.
	ErrUnavailable = errors.New("alarms: the alarm monitor has no provider yet")
	// ErrFeedBehind: a feed fell too far behind; resume with after_sequence.
	ErrFeedBehind = errors.New("alarms: the feed fell behind; resume with after_sequence")
	// ErrFeedLimit: too many feeds.
	ErrFeedLimit = errors.New("alarms: too many alarm feeds")
	// ErrAckRefused: the Galaxy refused the operator's credentials or the
	// acknowledgement's write.
	ErrAckRefused = errors.New("alarms: acknowledgement refused")
	// ErrClosed: the monitor is closed.
	ErrClosed = errors.New("alarms: monitor closed")
)
