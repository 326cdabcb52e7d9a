// Package catalog is the MXAccess command catalogue: for every kind of the
// mxgateway.v1.Command oneof, the facts written once as custom options next
// to its message in commands.proto (see options.proto) — its shape (single
// MXAccess call, bulk form, ReadBulk), its MXAccess method, scope, effect on
// the item table, typed result, minimum interface level, the single
// commands a bulk form runs per entry, and the role of every field (server
// handle, item handle, reference read or written, text, secret, argument).
//
// Everything that used to list the commands by hand derives from it:
// request validation, the scope of each command kind, reference-constraint
// extraction (Uses), the item table (internal/itemtable), metric labels
// (Kind.Name), the worker's bulk execution (Kind.StepCommand) and the SDK's
// method names. Check reports a command that lacks a fact; the package test
// fails on it.
//
// The catalogue is read from the compiled descriptors once, when the
// package is loaded; it is immutable and safe for concurrent use.
package catalog
