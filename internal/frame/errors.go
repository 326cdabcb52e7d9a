package frame

import (
	"errors"
	"fmt"
)

// Code classifies a frame error.
type Code int

// Frame error codes.
const (
	CodeMalformed       Code = iota + 1 // payload is not a valid WorkerEnvelope
	CodeOversized                       // length header above the limit
	CodeZeroLength                      // length header of zero
	CodeVersionMismatch                 // envelope protocol version differs
	CodeSessionMismatch                 // envelope session id differs
	CodeNoBody                          // envelope has no body
	CodeEndOfStream                     // clean end before a header
	CodeTruncated                       // stream ended inside a frame
	CodeSequence                        // envelope out of sequence (Conn)
)

var codeNames = map[Code]string{
	CodeMalformed:       "malformed",
	CodeOversized:       "oversized",
	CodeZeroLength:      "zero length",
	CodeVersionMismatch: "version mismatch",
	CodeSessionMismatch: "session mismatch",
	CodeNoBody:          "no body",
	CodeEndOfStream:     "end of stream",
	CodeTruncated:       "truncated",
	CodeSequence:        "out of sequence",
}

// String names the code.
func (c Code) String() string {
	if s, ok := codeNames[c]; ok {
		return s
	}
	return fmt.Sprintf("code(%d)", int(c))
}

// Error is a frame error with its Code. Use CodeOf or errors.As to inspect it.
type Error struct {
	Code   Code
	Detail string
	Err    error
}

// Error implements error.
func (e *Error) Error() string {
	s := "frame: " + e.Code.String()
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Is matches another *Error by code, so errors.Is(err, ErrOversized) works.
func (e *Error) Is(target error) bool {
	var t *Error
	if errors.As(target, &t) {
		return t.Code == e.Code && t.Detail == "" && t.Err == nil
	}
	return false
}

// Sentinels for errors.Is; they match any *Error with the same code.
var (
	ErrMalformed       = &Error{Code: CodeMalformed}
	ErrOversized       = &Error{Code: CodeOversized}
	ErrZeroLength      = &Error{Code: CodeZeroLength}
	ErrVersionMismatch = &Error{Code: CodeVersionMismatch}
	ErrSessionMismatch = &Error{Code: CodeSessionMismatch}
	ErrNoBody          = &Error{Code: CodeNoBody}
	ErrEndOfStream     = &Error{Code: CodeEndOfStream}
	ErrTruncated       = &Error{Code: CodeTruncated}
	ErrSequence        = &Error{Code: CodeSequence}
)

// CodeOf returns the Code of a frame error, or 0 when err is not one.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}
