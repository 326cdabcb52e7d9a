package client

import (
	"context"
	"errors"
	"fmt"
	"strings"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/mxtypes"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Well-known HRESULTs, as the signed 32-bit numbers MXAccess returns.
const (
	HResultOK           = mxtypes.S_OK
	HResultInvalidArg   = mxtypes.E_INVALIDARG        // 0x80070057
	HResultAccessDenied = mxtypes.E_ACCESSDENIED      // 0x80070005
	HResultNotSupported = mxtypes.CO_E_NOT_SUPPORTED  // 0x80004021
	HResultFail         = mxtypes.E_FAIL              // 0x80004005
	HResultClassNotReg  = mxtypes.REGDB_E_CLASSNOTREG // 0x80040154
)

// Sentinels matched by errors.Is against a *GatewayError (by ErrorInfo reason,
// or by gRPC code when the gateway sent no reason) or returned by the client
// itself.
var (
	// ErrSessionNotFound: the session id is unknown or expired (NOT_FOUND).
	ErrSessionNotFound = errors.New("client: session not found")
	// ErrSessionNotReady: the session is starting or closing.
	ErrSessionNotReady = errors.New("client: session not ready")
	// ErrSessionFaulted: the session's worker failed (crash, hang, overflow).
	ErrSessionFaulted = errors.New("client: session faulted")
	// ErrUnauthenticated: no, malformed, unknown or revoked API key.
	ErrUnauthenticated = errors.New("client: unauthenticated")
	// ErrPermissionDenied: the key lacks a scope, owns not the session, or
	// may not use the reference.
	ErrPermissionDenied = errors.New("client: permission denied")
	// ErrUnavailable: the gateway or the session's worker cannot be reached.
	ErrUnavailable = errors.New("client: unavailable")
	// ErrCommandTimeout: the command got no reply in time.
	ErrCommandTimeout = errors.New("client: command timeout")
	// ErrResourceExhausted: a session, pending-command or subscriber limit
	// was reached, or a subscriber fell behind.
	ErrResourceExhausted = errors.New("client: resource exhausted")
	// ErrInvalidRequest: the gateway rejected the request as malformed.
	ErrInvalidRequest = errors.New("client: invalid request")

	// ErrClosed is returned by a Client or Session after Close.
	ErrClosed = errors.New("client: closed")
	// ErrInsecureRemote: plaintext was asked for a non-loopback address
	// without WithInsecureAnyHost.
	ErrInsecureRemote = errors.New("client: refusing plaintext to a non-loopback address (the API key would travel in clear)")
	// ErrNotSubscribed: Unsubscribe was given a reference that Subscribe or
	// WriteValue did not add.
	ErrNotSubscribed = errors.New("client: not subscribed")
	// ErrAuthenticationFailed: AuthenticateUser gave user id 0.
	ErrAuthenticationFailed = errors.New("client: authentication failed")
)

// GatewayError is a failure of the gateway itself (not an MXAccess refusal):
// the gRPC code, the stable reason from the google.rpc.ErrorInfo detail (one
// of the mxgatewayv1.Reason... constants, or "" when the failure happened
// before the gateway answered, such as an unreachable address) and the
// message.
type GatewayError struct {
	// Code is the gRPC status code.
	Code codes.Code
	// Reason is the ErrorInfo reason, for example "SESSION_NOT_FOUND".
	Reason string
	// Message is the status message.
	Message string
	// Metadata is the ErrorInfo metadata, when any.
	Metadata map[string]string
	st       *status.Status
}

// Error implements error.
func (e *GatewayError) Error() string {
	var b strings.Builder
	b.WriteString("client: gateway error ")
	b.WriteString(e.Code.String())
	if e.Reason != "" {
		b.WriteString(" (")
		b.WriteString(e.Reason)
		b.WriteString(")")
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	return b.String()
}

// GRPCStatus returns the original status, so status.FromError and
// status.Code work on wrapped GatewayErrors.
func (e *GatewayError) GRPCStatus() *status.Status {
	if e.st == nil {
		return status.New(e.Code, e.Message)
	}
	return e.st
}

var reasonSentinel = map[string]error{
	mxgatewayv1.ReasonSessionNotFound:    ErrSessionNotFound,
	mxgatewayv1.ReasonSessionNotReady:    ErrSessionNotReady,
	mxgatewayv1.ReasonSessionFaulted:     ErrSessionFaulted,
	mxgatewayv1.ReasonWorkerExited:       ErrSessionFaulted,
	mxgatewayv1.ReasonHeartbeatExpired:   ErrSessionFaulted,
	mxgatewayv1.ReasonWorkerStartFailed:  ErrUnavailable,
	mxgatewayv1.ReasonShuttingDown:       ErrUnavailable,
	mxgatewayv1.ReasonCommandTimeout:     ErrCommandTimeout,
	mxgatewayv1.ReasonSessionLimit:       ErrResourceExhausted,
	mxgatewayv1.ReasonPendingLimit:       ErrResourceExhausted,
	mxgatewayv1.ReasonSubscriberLimit:    ErrResourceExhausted,
	mxgatewayv1.ReasonSlowConsumer:       ErrResourceExhausted,
	mxgatewayv1.ReasonInvalidRequest:     ErrInvalidRequest,
	mxgatewayv1.ReasonUnauthenticated:    ErrUnauthenticated,
	mxgatewayv1.ReasonPermissionDenied:   ErrPermissionDenied,
	mxgatewayv1.ReasonNotSessionOwner:    ErrPermissionDenied,
	mxgatewayv1.ReasonReferenceForbidden: ErrPermissionDenied,

	// Hardening limits.
	mxgatewayv1.ReasonAPIKeyRevoked:       ErrUnauthenticated,
	mxgatewayv1.ReasonKeySessionLimit:     ErrResourceExhausted,
	mxgatewayv1.ReasonKeyStreamLimit:      ErrResourceExhausted,
	mxgatewayv1.ReasonCredentialThrottled: ErrResourceExhausted,
	mxgatewayv1.ReasonWatchLimit:          ErrResourceExhausted,

	// Galaxy service.
	mxgatewayv1.ReasonObjectNotFound:    ErrObjectNotFound,
	mxgatewayv1.ReasonPageTokenInvalid:  ErrInvalidRequest,
	mxgatewayv1.ReasonPageTokenStale:    ErrPageTokenStale,
	mxgatewayv1.ReasonGalaxyUnavailable: ErrUnavailable,

	// Shared subscriptions (client/shared).
	mxgatewayv1.ReasonLeaseLimit:   ErrResourceExhausted,
	mxgatewayv1.ReasonAdviseFailed: ErrInvalidRequest,
	mxgatewayv1.ReasonUnavailable:  ErrUnavailable,

	// Alarms service.
	mxgatewayv1.ReasonAlarmNotFound:      ErrAlarmNotFound,
	mxgatewayv1.ReasonAlarmInstanceStale: ErrAlarmInstanceStale,
	mxgatewayv1.ReasonAlarmsUnavailable:  ErrUnavailable,
	mxgatewayv1.ReasonAlarmFeedBehind:    ErrResourceExhausted,
	mxgatewayv1.ReasonAlarmAckRefused:    ErrAckRefused,
}

// SentinelOf returns the package sentinel an mxgateway reason matches
// (ErrPermissionDenied for REFERENCE_NOT_ALLOWED, ...), or nil: for errors
// that carry a reason outside gRPC, such as client/shared's.
func SentinelOf(reason string) error { return reasonSentinel[reason] }

var codeSentinel = map[codes.Code]error{
	codes.NotFound:          ErrSessionNotFound,
	codes.Unauthenticated:   ErrUnauthenticated,
	codes.PermissionDenied:  ErrPermissionDenied,
	codes.Unavailable:       ErrUnavailable,
	codes.ResourceExhausted: ErrResourceExhausted,
	codes.InvalidArgument:   ErrInvalidRequest,
}

// Is matches the package sentinels: by reason when the gateway sent one,
// otherwise by code. A worker that exited also matches ErrUnavailable.
func (e *GatewayError) Is(target error) bool {
	if e.Reason != "" {
		if s, ok := reasonSentinel[e.Reason]; ok && s == target {
			return true
		}
		if target == ErrUnavailable && e.Code == codes.Unavailable {
			return true
		}
		if target == ErrPermissionDenied && e.Code == codes.PermissionDenied {
			return true
		}
		return target == ErrUnauthenticated && e.Code == codes.Unauthenticated
	}
	return codeSentinel[e.Code] == target
}

// Permanent reports whether retrying the same call cannot succeed: the
// session is gone or faulted, the key is refused, or the request is malformed.
func (e *GatewayError) Permanent() bool {
	switch e.Code {
	case codes.NotFound, codes.Unauthenticated, codes.PermissionDenied, codes.InvalidArgument,
		codes.Unimplemented, codes.FailedPrecondition:
		return e.Reason != mxgatewayv1.ReasonSessionNotReady
	case codes.Unavailable:
		return e.Reason == mxgatewayv1.ReasonWorkerExited || e.Reason == mxgatewayv1.ReasonHeartbeatExpired ||
			e.Reason == mxgatewayv1.ReasonWorkerStartFailed
	}
	return false
}

// fromRPC turns an error from a gRPC call into a *GatewayError (or the
// context's error when ctx ended). nil stays nil.
func fromRPC(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	if ctx != nil && ctx.Err() != nil && (st.Code() == codes.Canceled || st.Code() == codes.DeadlineExceeded) {
		return fmt.Errorf("client: %w", ctx.Err())
	}
	return GatewayErrorFromStatus(st)
}

// GatewayErrorFromStatus builds a *GatewayError from a gRPC status, reading
// the reason and metadata of its google.rpc.ErrorInfo detail.
func GatewayErrorFromStatus(st *status.Status) *GatewayError {
	ge := &GatewayError{Code: st.Code(), Message: st.Message(), st: st}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			ge.Reason = info.GetReason()
			ge.Metadata = info.GetMetadata()
			break
		}
	}
	return ge
}

func isReason(err error, sentinel error) bool { return errors.Is(err, sentinel) }

// IsSessionNotFound reports whether err means the session is unknown or
// expired.
func IsSessionNotFound(err error) bool { return isReason(err, ErrSessionNotFound) }

// IsSessionFaulted reports whether err means the session's worker failed.
func IsSessionFaulted(err error) bool { return isReason(err, ErrSessionFaulted) }

// IsUnauthenticated reports whether err means the API key was refused.
func IsUnauthenticated(err error) bool { return isReason(err, ErrUnauthenticated) }

// IsPermissionDenied reports whether err means a scope or constraint of the
// key forbids the call.
func IsPermissionDenied(err error) bool { return isReason(err, ErrPermissionDenied) }

// IsUnavailable reports whether err means the gateway (or the worker) cannot
// be reached.
func IsUnavailable(err error) bool { return isReason(err, ErrUnavailable) }

// GatewayReason returns the ErrorInfo reason of a *GatewayError in err's
// chain, or "".
func GatewayReason(err error) string {
	var ge *GatewayError
	if errors.As(err, &ge) {
		return ge.Reason
	}
	return ""
}

// MxAccessError is an MXAccess refusal: a command whose reply was not OK, or
// an OnWriteComplete, OnDataChange or read entry whose statuses report a
// failure. The transport is fine; MXAccess said no.
type MxAccessError struct {
	// Method is the MXAccess method (or event) that failed, for example
	// "Write", "Advise" or "OnWriteComplete".
	Method string
	// Reference is the item reference concerned, when known.
	Reference string
	// Status is the gateway's classification (MXACCESS_FAILURE,
	// NOT_SUPPORTED, CANCELLED); UNSPECIFIED for a status-array failure.
	Status mxgatewayv1.GatewayStatusCode
	// HRESULT is the raw HRESULT (0 when the failure is in Statuses only).
	HRESULT int32
	// Statuses is the full MXSTATUS_PROXY array.
	Statuses Statuses
	// Message is the diagnostic text, when any.
	Message string
}

// Error implements error.
func (e *MxAccessError) Error() string {
	var b strings.Builder
	b.WriteString("client: mxaccess ")
	b.WriteString(e.Method)
	if e.Reference != "" {
		fmt.Fprintf(&b, " %s", e.Reference)
	}
	switch e.Status {
	case mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_NOT_SUPPORTED:
		b.WriteString(": not supported on this host")
	case mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_CANCELLED:
		b.WriteString(": cancelled")
	default:
		b.WriteString(" failed")
	}
	if e.HRESULT != 0 {
		fmt.Fprintf(&b, ": HRESULT %s", HResultString(e.HRESULT))
	}
	if f := e.Statuses.FirstFailure(); f != nil {
		fmt.Fprintf(&b, ": %s", StatusString(f))
	} else if e.Timeout() {
		b.WriteString(": no value in time")
	}
	if e.Message != "" {
		fmt.Fprintf(&b, " (%s)", e.Message)
	}
	return b.String()
}

// Category returns the category of the first failing status, or
// MX_STATUS_CATEGORY_OK when only the HRESULT failed.
func (e *MxAccessError) Category() mxgatewayv1.MxStatusCategory {
	if f := e.Statuses.FirstFailure(); f != nil {
		return f.GetCategory()
	}
	return mxgatewayv1.MxStatusCategory_MX_STATUS_CATEGORY_OK
}

// Detail returns the detail code of the first failing status (1003: an array
// attribute referenced without []), or 0.
func (e *MxAccessError) Detail() int32 { return e.Statuses.FirstFailure().GetDetail() }

// IsSecurityError reports a Galaxy security refusal (MxCategorySecurityError).
func (e *MxAccessError) IsSecurityError() bool {
	return e.Category() == mxgatewayv1.MxStatusCategory_MX_STATUS_CATEGORY_SECURITY_ERROR
}

// IsConfigurationError reports a configuration error, typically an unknown
// or malformed reference (MxCategoryConfigurationError).
func (e *MxAccessError) IsConfigurationError() bool {
	return e.Category() == mxgatewayv1.MxStatusCategory_MX_STATUS_CATEGORY_CONFIGURATION_ERROR
}

// IsCommunicationError reports MxCategoryCommunicationError.
func (e *MxAccessError) IsCommunicationError() bool {
	return e.Category() == mxgatewayv1.MxStatusCategory_MX_STATUS_CATEGORY_COMMUNICATION_ERROR
}

// IsInvalidArg reports E_INVALIDARG: for Write*, the item is not advised or
// the value's type is not acceptable; for AuthenticateUser, bad credentials.
func (e *MxAccessError) IsInvalidArg() bool { return e.HRESULT == HResultInvalidArg }

// IsAccessDenied reports E_ACCESSDENIED (for AddItem: no MXAccess licence).
func (e *MxAccessError) IsAccessDenied() bool { return e.HRESULT == HResultAccessDenied }

// IsNotSupported reports a method the component on this host does not
// support.
func (e *MxAccessError) IsNotSupported() bool {
	return e.Status == mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_NOT_SUPPORTED
}

// Timeout reports a read whose first value did not arrive in time, or a
// write whose completion did not arrive (both failures, never values).
func (e *MxAccessError) Timeout() bool { return e.Message == timeoutMessage }

const timeoutMessage = "timed out"

// HResultString formats an HRESULT as 0x80070057 with its name when known.
func HResultString(hr int32) string { return mxtypes.HResultString(hr) }

// Statuses is an MXSTATUS_PROXY array as MXAccess sent it.
type Statuses []*mxgatewayv1.MxStatus

// FirstFailure returns the first entry that is not a success, or nil. An
// entry succeeds when its raw success word is non-zero; MxCategoryPending
// counts as success (in progress), and so does a zero success word with
// MxCategoryOk.
func (s Statuses) FirstFailure() *mxgatewayv1.MxStatus {
	for _, st := range s {
		if !statusOK(st) {
			return st
		}
	}
	return nil
}

// OK reports whether no entry failed.
func (s Statuses) OK() bool { return s.FirstFailure() == nil }

// Pending reports whether the array says "accepted, in progress".
func (s Statuses) Pending() bool {
	for _, st := range s {
		if st.GetCategory() == mxgatewayv1.MxStatusCategory_MX_STATUS_CATEGORY_PENDING {
			return true
		}
	}
	return false
}

func statusOK(st *mxgatewayv1.MxStatus) bool { return mxtypes.StatusOK(st) }

// StatusString formats one status as "MxCategorySecurityError from
// RespondingAutomationObject, detail 0".
func StatusString(st *mxgatewayv1.MxStatus) string { return mxtypes.StatusString(st) }

// replyErr turns a non-OK reply into an *MxAccessError, or returns nil.
func replyErr(method, ref string, r *mxgatewayv1.Reply) error {
	switch r.GetStatus() {
	case mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK, mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_BULK:
		return nil
	}
	return &MxAccessError{
		Method: method, Reference: ref, Status: r.GetStatus(), HRESULT: r.GetHresult(),
		Statuses: r.GetStatuses(), Message: r.GetMessage(),
	}
}
