package backend

import (
	"errors"
	"fmt"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/mxtypes"
)

// CallError is an MXAccess refusal: the call's HRESULT and any status array.
// It is data for the client, not a transport failure.
type CallError struct {
	Method   string
	HRESULT  int32
	Statuses []*mxgatewayv1.MxStatus
	Message  string
}

// Error implements error.
func (e *CallError) Error() string {
	s := fmt.Sprintf("backend: %s returned HRESULT 0x%08X", e.Method, uint32(e.HRESULT))
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// NewCallError returns a *CallError for method with hr.
func NewCallError(method string, hr int32, msg string) *CallError {
	return &CallError{Method: method, HRESULT: hr, Message: msg}
}

// NotSupportedError says the component on this host lacks a method (its
// interface level is too low, or its type library differs from what this
// build expects).
type NotSupportedError struct {
	Method string
	Reason string
}

// Error implements error.
func (e *NotSupportedError) Error() string {
	return fmt.Sprintf("backend: %s not supported: %s", e.Method, e.Reason)
}

// ErrClosed is returned by calls made after Close.
var ErrClosed = errors.New("backend: closed")

// HResultOf returns the HRESULT of err: S_OK for nil, the HRESULT of a
// *CallError, and E_FAIL otherwise.
func HResultOf(err error) int32 {
	if err == nil {
		return mxtypes.S_OK
	}
	var ce *CallError
	if errors.As(err, &ce) {
		return ce.HRESULT
	}
	var ns *NotSupportedError
	if errors.As(err, &ns) {
		return mxtypes.E_NOTIMPL
	}
	return mxtypes.E_FAIL
}
