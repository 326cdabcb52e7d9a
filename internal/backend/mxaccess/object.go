package mxaccess

import (
	"context"
	"log/slog"

	"github.com/mxgateway/mxgateway/internal/variant"
)

// Object is the MXAccess COM object as the backend logic sees it. The
// windows/386 implementation runs every call on the STA; tests use fakes.
// The backend calls it from one goroutine at a time.
type Object interface {
	// Info describes the object that was created.
	Info() ObjectInfo
	// Method reports whether the object exposes method name (a DISPID was
	// resolved for it) and what the type library says about it.
	Method(name string) (MethodInfo, bool)
	// Invoke calls method name with args in declaration order. outs lists
	// the types of trailing plain [out] parameters, whose values come back
	// in CallResult.Outs. The error is only for a broken runtime (the STA
	// is gone); MXAccess refusals are in CallResult.HRESULT.
	Invoke(name string, args []variant.Value, outs []variant.VT) (CallResult, error)
	// Ping round-trips through the STA.
	Ping(ctx context.Context) error
	// Close disconnects the event sinks, releases the object and ends the
	// STA (CoUninitialize last), returning a warning per failed step. No
	// EventHandler call happens after it returns.
	Close() []string
}

// ObjectInfo describes the created object for WorkerReady and the logs.
type ObjectInfo struct {
	ProgID         string
	CLSID          string
	DLLPath        string
	ThreadingModel string
	TypeLibVersion string
	// Level is the highest ILMXProxyServerN interface QueryInterface gave.
	Level int
	// StatusLayout is the MXSTATUS_PROXY layout in use (informational; the
	// Opener hands it over through OpenConfig.SetStatusLayout).
	StatusLayout variant.StatusLayout
}

// MethodInfo is what the host exposes for one method.
type MethodInfo struct {
	// DispID is the resolved DISPID.
	DispID int32
	// Shape is the method's parameter list from the type library, or nil
	// when the type library did not describe it.
	Shape *variant.Shape
}

// CallResult is the outcome of one Invoke.
type CallResult struct {
	// HRESULT is the call's result; for DISP_E_EXCEPTION it is the
	// exception's scode, the code a vtable caller (.NET) would have seen.
	HRESULT int32
	// Ret is the [out,retval] / dispatch return value (VT_EMPTY if none).
	Ret variant.Value
	// Outs holds the values of the out parameters requested.
	Outs []variant.Value
	// Message is the EXCEPINFO text, if any.
	Message string
}

// EventHandler receives each event call the sinks accepted, on the STA,
// with its arguments copied out, or the error that stopped decoding them.
// It must not block and must not call the Object.
type EventHandler func(name string, args []variant.Value, err error)

// OpenConfig is what an Opener needs to create the object.
type OpenConfig struct {
	ProgID string
	Logger *slog.Logger
	// SetStatusLayout, when the Opener learns the MXSTATUS_PROXY layout
	// (from the type library), must be called before the sinks are advised,
	// so that no event is decoded with another layout. It rejects an
	// invalid layout.
	SetStatusLayout func(variant.StatusLayout) error
}

// Opener creates the COM object (on its own STA), connects the event sinks
// so that they deliver to events, and returns it.
type Opener func(ctx context.Context, cfg OpenConfig, events EventHandler) (Object, error)
