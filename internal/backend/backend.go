package backend

import (
	"context"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
)

// Sink receives events from a backend. Event is called on the backend's own
// event thread (the STA for MXAccess), one event at a time, in the order the
// backend produced them. It must copy what it needs, must not block and must
// not call back into the backend.
type Sink interface {
	Event(ev *mxgatewayv1.Event)
}

// SinkFunc adapts a function to a Sink.
type SinkFunc func(ev *mxgatewayv1.Event)

// Event calls f(ev).
func (f SinkFunc) Event(ev *mxgatewayv1.Event) { f(ev) }

// Backend is the MXAccess surface. Every method call is made by one goroutine
// at a time (the worker's command loop), mirroring the STA discipline.
//
// Methods return nil on S_OK, a *CallError when MXAccess refused (the HRESULT
// and any statuses are data for the client), a *NotSupportedError when the
// component on this host lacks the method, and any other error only when the
// backend itself is broken (the worker then faults).
type Backend interface {
	// Open initialises the backend and starts delivering events to sink. The
	// returned info goes into WorkerReady.
	Open(ctx context.Context, sink Sink) (*mxgatewayv1.BackendInfo, error)

	Register(clientName string) (serverHandle int32, err error)
	Unregister(serverHandle int32) error
	AddItem(serverHandle int32, itemDef string) (itemHandle int32, err error)
	AddItem2(serverHandle int32, itemDef, itemContext string) (itemHandle int32, err error)
	RemoveItem(serverHandle, itemHandle int32) error
	Advise(serverHandle, itemHandle int32) error
	AdviseSupervisory(serverHandle, itemHandle int32) error
	UnAdvise(serverHandle, itemHandle int32) error
	Suspend(serverHandle, itemHandle int32) error
	Activate(serverHandle, itemHandle int32) error
	AddBufferedItem(serverHandle int32, itemDef string) (itemHandle int32, err error)
	SetBufferedUpdateInterval(serverHandle int32, intervalMs int32) error
	Write(serverHandle, itemHandle int32, value *mxgatewayv1.MxValue, userID int32) error
	Write2(serverHandle, itemHandle int32, value *mxgatewayv1.MxValue, ts time.Time, userID int32) error
	WriteSecured(serverHandle, itemHandle, currentUserID, verifierUserID int32, value *mxgatewayv1.MxValue) error
	WriteSecured2(serverHandle, itemHandle, currentUserID, verifierUserID int32, value *mxgatewayv1.MxValue, ts time.Time) error
	AuthenticateUser(serverHandle int32, user, password string) (userID int32, err error)
	ArchestrAUserToId(serverHandle int32, identity string) (userID int32, err error)

	// TakeParityWarnings returns and clears the parity warnings raised by the
	// calls since the last TakeParityWarnings (e.g. RemoveItem while advised).
	TakeParityWarnings() []string

	// Ping round-trips through the backend's thread. Heartbeats use it, so a
	// wedged STA stops heartbeats even while the pipe is healthy.
	Ping(ctx context.Context) error

	// Close tears down in MXAccess order (unadvise all, remove all, unregister
	// all, release), best effort, and returns a warning per failed step. No
	// event is delivered after Close returns.
	Close() []string
}
