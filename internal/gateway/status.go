package gateway

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/internal/alarms"
	"github.com/mxgateway/mxgateway/internal/auth"
	"github.com/mxgateway/mxgateway/internal/galaxy/browse"
	"github.com/mxgateway/mxgateway/internal/logging"
	"github.com/mxgateway/mxgateway/internal/session"
	"github.com/mxgateway/mxgateway/internal/workerclient"
)

// ErrShuttingDown is returned for calls that arrive after Shutdown began.
var ErrShuttingDown = errors.New("gateway: shutting down")

// errorMapping maps one error (matched with errors.Is) to a status.
type errorMapping struct {
	err    error
	code   codes.Code
	reason string // ErrorInfo reason; "" attaches none
	quota  bool   // attach a QuotaFailure
	// msg, when set, is the whole client-visible message: the error's own
	// text then goes only to the log (it may carry another process's
	// output, such as a worker's stderr and the paths in it).
	msg string
}

// errorTable is the only place where gateway errors become gRPC codes. The
// first match wins, so specific causes come before the generic ones they
// are wrapped with (a *session.FaultError carries both ErrWorkerFailed and
// its cause).
var errorTable = []errorMapping{
	// The Admin service's own failures (auth.AdminServer.WithStatus).
	{err: auth.ErrInvalidSpec, code: codes.InvalidArgument, reason: mxgatewayv1.ReasonInvalidRequest},
	{err: auth.ErrKeyNotFound, code: codes.NotFound, reason: auth.ReasonAPIKeyNotFound, msg: "no API key with that id"},
	{err: session.ErrNotFound, code: codes.NotFound, reason: mxgatewayv1.ReasonSessionNotFound},
	{err: session.ErrFaulted, code: codes.FailedPrecondition, reason: mxgatewayv1.ReasonSessionFaulted},
	{err: session.ErrNotReady, code: codes.FailedPrecondition, reason: mxgatewayv1.ReasonSessionNotReady},
	{err: session.ErrClosed, code: codes.FailedPrecondition, reason: mxgatewayv1.ReasonSessionClosed},
	{err: session.ErrLimit, code: codes.ResourceExhausted, reason: mxgatewayv1.ReasonSessionLimit, quota: true},
	{err: session.ErrKeyLimit, code: codes.ResourceExhausted, reason: mxgatewayv1.ReasonKeySessionLimit, quota: true},
	{err: session.ErrPendingLimit, code: codes.ResourceExhausted, reason: mxgatewayv1.ReasonPendingLimit, quota: true},
	{err: session.ErrSubscriberLimit, code: codes.ResourceExhausted, reason: mxgatewayv1.ReasonSubscriberLimit, quota: true},
	{err: session.ErrSlowConsumer, code: codes.ResourceExhausted, reason: mxgatewayv1.ReasonSlowConsumer, quota: true},
	{err: ErrWriteDeadline, code: codes.ResourceExhausted, reason: mxgatewayv1.ReasonSlowConsumer, quota: true},
	{err: session.ErrShuttingDown, code: codes.Unavailable, reason: mxgatewayv1.ReasonShuttingDown},
	{err: ErrShuttingDown, code: codes.Unavailable, reason: mxgatewayv1.ReasonShuttingDown},
	{err: session.ErrStartFailed, code: codes.Unavailable, reason: mxgatewayv1.ReasonWorkerStartFailed,
		msg: "the session's worker could not be started (details in the gateway log)"},
	{err: session.ErrAfterSequence, code: codes.InvalidArgument, reason: mxgatewayv1.ReasonInvalidRequest},
	{err: session.ErrReservedHandle, code: codes.InvalidArgument, reason: mxgatewayv1.ReasonHandleReserved},
	// A command whose worker frame would exceed max_frame_bytes fails alone;
	// gRPC reports oversized messages with the same code.
	{err: workerclient.ErrCommandTooLarge, code: codes.ResourceExhausted, reason: mxgatewayv1.ReasonInvalidRequest},
	// A reply that would exceed max_frame_bytes fails its call alone; the
	// worker and the session keep serving.
	{err: workerclient.ErrReplyTooLarge, code: codes.ResourceExhausted, reason: mxgatewayv1.ReasonReplyTooLarge},
	// The worker's item guard refused a write the constraints approved: the
	// handle named another reference in the worker's item table.
	{err: workerclient.ErrGuardRefused, code: codes.PermissionDenied, reason: mxgatewayv1.ReasonReferenceForbidden},
	{err: workerclient.ErrHeartbeatExpired, code: codes.Unavailable, reason: mxgatewayv1.ReasonHeartbeatExpired},
	{err: workerclient.ErrCommandTimeout, code: codes.DeadlineExceeded, reason: mxgatewayv1.ReasonCommandTimeout},
	{err: workerclient.ErrClosed, code: codes.Unavailable, reason: mxgatewayv1.ReasonSessionClosed},
	{err: workerclient.ErrNotReady, code: codes.FailedPrecondition, reason: mxgatewayv1.ReasonSessionNotReady},
	{err: workerclient.ErrWorkerGone, code: codes.Unavailable, reason: mxgatewayv1.ReasonWorkerExited},
	{err: workerclient.ErrKilled, code: codes.Unavailable, reason: mxgatewayv1.ReasonWorkerExited},
	// The worker's queue filled: the gateway did not keep up at all.
	{err: workerclient.ErrWorkerOverflow, code: codes.Unavailable, reason: mxgatewayv1.ReasonEventOverflow},
	{err: workerclient.ErrWorkerFault, code: codes.Unavailable, reason: mxgatewayv1.ReasonWorkerExited},
	{err: workerclient.ErrProtocol, code: codes.Unavailable, reason: mxgatewayv1.ReasonWorkerExited},
	{err: workerclient.ErrShutdownTimeout, code: codes.Unavailable, reason: mxgatewayv1.ReasonWorkerExited},
	{err: session.ErrWorkerFailed, code: codes.Unavailable, reason: mxgatewayv1.ReasonWorkerExited},
	// The Galaxy service (browse).
	{err: ErrGalaxyUnavailable, code: codes.Unavailable, reason: mxgatewayv1.ReasonGalaxyUnavailable},
	{err: browse.ErrNotFound, code: codes.NotFound, reason: mxgatewayv1.ReasonObjectNotFound},
	{err: browse.ErrStaleToken, code: codes.InvalidArgument, reason: mxgatewayv1.ReasonPageTokenStale},
	{err: browse.ErrPageToken, code: codes.InvalidArgument, reason: mxgatewayv1.ReasonPageTokenInvalid},
	{err: browse.ErrInvalid, code: codes.InvalidArgument, reason: mxgatewayv1.ReasonInvalidRequest},
	// The Alarms service.
	{err: errAckForbidden, code: codes.PermissionDenied, reason: mxgatewayv1.ReasonReferenceForbidden},
	{err: alarms.ErrInvalid, code: codes.InvalidArgument, reason: mxgatewayv1.ReasonInvalidRequest},
	{err: alarms.ErrNotFound, code: codes.NotFound, reason: mxgatewayv1.ReasonAlarmNotFound},
	{err: alarms.ErrStaleInstance, code: codes.FailedPrecondition, reason: mxgatewayv1.ReasonAlarmInstanceStale},
	{err: alarms.ErrUnavailable, code: codes.Unavailable, reason: mxgatewayv1.ReasonAlarmsUnavailable},
	{err: alarms.ErrClosed, code: codes.Unavailable, reason: mxgatewayv1.ReasonShuttingDown},
	{err: alarms.ErrFeedBehind, code: codes.ResourceExhausted, reason: mxgatewayv1.ReasonAlarmFeedBehind, quota: true},
	{err: alarms.ErrFeedLimit, code: codes.ResourceExhausted, reason: mxgatewayv1.ReasonSubscriberLimit, quota: true},
	{err: alarms.ErrAckRefused, code: codes.PermissionDenied, reason: mxgatewayv1.ReasonAlarmAckRefused},
	{err: context.DeadlineExceeded, code: codes.DeadlineExceeded, reason: mxgatewayv1.ReasonCommandTimeout},
	{err: context.Canceled, code: codes.Canceled},
}

// Status is toStatus for other services of the gateway (the Admin service):
// the same table, the same logging of what it cannot map.
func Status(log *slog.Logger) func(method string, err error) error {
	return func(method string, err error) error { return toStatus(log, method, err) }
}

// toStatus turns err into the status error a handler returns. Errors that
// already are statuses (from hooks such as an ownership check) pass
// through; validation errors carry a BadRequest; unknown errors become
// INTERNAL with a generic message and are logged with their details.
func toStatus(log *slog.Logger, method string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	var inv *invalidError
	if errors.As(err, &inv) {
		return withDetails(codes.InvalidArgument, inv.Error(), mxgatewayv1.ReasonInvalidRequest,
			&errdetails.BadRequest{FieldViolations: inv.violations})
	}
	for _, m := range errorTable {
		if !errors.Is(err, m.err) {
			continue
		}
		msg := err.Error()
		if m.msg != "" {
			log.Warn("call failed", slog.String(logging.KeyMethod, method), slog.String(logging.KeyReason, m.reason), slog.Any(logging.KeyErr, err))
			msg = m.msg
		}
		if m.reason == "" {
			return status.Error(m.code, msg)
		}
		if m.quota {
			return withDetails(m.code, msg, m.reason, &errdetails.QuotaFailure{
				Violations: []*errdetails.QuotaFailure_Violation{{Subject: m.reason, Description: msg}},
			})
		}
		return withDetails(m.code, msg, m.reason)
	}
	log.Error("internal error", slog.String(logging.KeyMethod, method), slog.Any(logging.KeyErr, err))
	return withDetails(codes.Internal, "internal error (details in the gateway log)", mxgatewayv1.ReasonInternal)
}

// withDetails builds a status carrying an ErrorInfo and any extra details.
func withDetails(code codes.Code, msg, reason string, extra ...protoadapt.MessageV1) error {
	details := append([]protoadapt.MessageV1{&errdetails.ErrorInfo{Reason: reason, Domain: mxgatewayv1.ErrorDomain}}, extra...)
	st, err := status.New(code, msg).WithDetails(details...)
	if err != nil {
		return status.Error(code, msg)
	}
	return st.Err()
}

// ReasonOf returns the ErrorInfo reason err maps to (the same table as the
// gRPC statuses), or "" when it maps to none; INTERNAL for unknown errors.
// Metrics use it as a bounded label, for example for session faults.
func ReasonOf(err error) string {
	if err == nil {
		return ""
	}
	var inv *invalidError
	if errors.As(err, &inv) {
		return mxgatewayv1.ReasonInvalidRequest
	}
	for _, m := range errorTable {
		if errors.Is(err, m.err) {
			return m.reason
		}
	}
	return mxgatewayv1.ReasonInternal
}
