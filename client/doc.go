// Package client is the Go SDK for mxgateway: it dials a gateway, opens
// sessions and runs every MXAccess command over gRPC with MXAccess's own
// semantics.
//
// A Client is one gRPC connection. A Session is one gateway session, which is
// one isolated worker process driving MXAccess (or the Galaxy simulator).
// Both are safe for concurrent use.
//
// The API has two layers that cannot be confused:
//
//   - Session.MX returns the raw MXAccess surface: one method per MXAccess
//     method and per bulk form, taking and returning registration and item
//     handles exactly as MXAccess does (Register, AddItem, Advise, Write,
//     WriteSecured2, SubscribeBulk, ReadBulk, ...).
//   - Methods on Session itself are conveniences built from those calls that
//     keep MXAccess's rules: Subscribe registers once and runs SubscribeBulk,
//     Read runs ReadBulk, WriteValue adds and advises the item when needed,
//     waits for its first value (so it knows the attribute's type), writes and
//     waits for the matching OnWriteComplete.
//
// Events arrive through Session.Events, a Go iterator that resumes after a
// dropped connection from the last sequence it delivered, reports a replay gap
// as a typed marker (Event.Gap) and never skips an event silently.
//
// Errors come in two kinds, never mixed. An MXAccess refusal is an
// *MxAccessError carrying the HRESULT and the MXSTATUS_PROXY array. A gateway
// failure (unknown session, bad key, missing scope, timeout, ...) is a
// *GatewayError carrying the gRPC code and the stable ErrorInfo reason; the
// sentinels such as ErrSessionNotFound match it with errors.Is.
//
// Package client imports nothing from the gateway's internal packages; a test
// enforces it.
package client
