// Package com is the COM runtime of the real MXAccess worker: the STA
// thread with its message pump, the hand-built IDispatch event sink, and the
// IDispatch/ITypeInfo/connection-point calls the backend makes.
//
// Only the sink's object logic, its interface definition table and the GUID
// type are plain Go (no build tags, no COM imports) so that they are
// compiled and tested on every OS. Everything that calls Windows lives in
// files built only for windows && 386: MXAccess is a 32-bit in-process
// server, so the worker never runs as anything else.
package com
