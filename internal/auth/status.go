package auth

import (
	"errors"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
)

// ReasonAPIKeyNotFound is the ErrorInfo reason of Admin calls naming an
// unknown key id (NOT_FOUND).
//
// TODO(lead): move to api/mxgateway/v1/reasons.go.
const ReasonAPIKeyNotFound = "API_KEY_NOT_FOUND"

// DeniedError is an authorisation failure with its stable reason. It
// converts to a gRPC status (GRPCStatus) with an ErrorInfo, and matches
// ErrPermissionDenied, ErrReferenceNotAllowed or ErrNotSessionOwner with
// errors.Is.
type DeniedError struct {
	// Reason is an mxgatewayv1.Reason* constant.
	Reason string
	// Message is safe to show the caller.
	Message string
}

func (e *DeniedError) Error() string { return "auth: " + e.Message }

// Is matches the sentinel of e's reason.
func (e *DeniedError) Is(target error) bool {
	switch e.Reason {
	case mxgatewayv1.ReasonReferenceForbidden:
		return target == ErrReferenceNotAllowed || target == ErrPermissionDenied
	case mxgatewayv1.ReasonNotSessionOwner:
		return target == ErrNotSessionOwner || target == ErrPermissionDenied
	}
	return target == ErrPermissionDenied
}

// GRPCStatus returns PERMISSION_DENIED with an ErrorInfo.
func (e *DeniedError) GRPCStatus() *status.Status {
	return statusWithInfo(codes.PermissionDenied, e.Reason, e.Message, nil)
}

// statusWithInfo builds a status carrying an ErrorInfo in ErrorDomain.
func statusWithInfo(code codes.Code, reason, msg string, meta map[string]string) *status.Status {
	st := status.New(code, msg)
	if d, err := st.WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: mxgatewayv1.ErrorDomain, Metadata: meta}); err == nil {
		return d
	}
	return st
}

// authStatus maps an Authenticate error to its gRPC status. Unknown ids and
// wrong secrets share ErrInvalidKey and therefore one message.
func authStatus(err error) *status.Status {
	switch {
	case errors.Is(err, ErrNoKey):
		return statusWithInfo(codes.Unauthenticated, mxgatewayv1.ReasonUnauthenticated,
			"missing API key: send metadata \"authorization: Bearer mxgw_...\"", nil)
	case errors.Is(err, ErrMalformedKey):
		return statusWithInfo(codes.Unauthenticated, mxgatewayv1.ReasonUnauthenticated, "malformed API key", nil)
	case errors.Is(err, ErrInvalidKey):
		return statusWithInfo(codes.Unauthenticated, mxgatewayv1.ReasonUnauthenticated, "invalid API key", nil)
	case errors.Is(err, ErrKeyRevoked):
		return statusWithInfo(codes.Unauthenticated, mxgatewayv1.ReasonUnauthenticated, "API key revoked", nil)
	}
	return statusWithInfo(codes.Internal, mxgatewayv1.ReasonInternal, "internal error", nil)
}
