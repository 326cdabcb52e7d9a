package mxaccess

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/catalog"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/mxtypes"
	"github.com/mxgateway/mxgateway/internal/backend"
	"github.com/mxgateway/mxgateway/internal/logging"
	"github.com/mxgateway/mxgateway/internal/variant"
)

// DefaultProgID is the version-independent ProgID of the MXAccess object.
const DefaultProgID = "LMXProxy.LMXProxyServer"

// DefaultEventQueue is the default capacity of the event queue between the
// sinks and the Sink (MXACCESS.md §6).
const DefaultEventQueue = 10000

// Timestamp zones for Options.TimestampZone.
const (
	ZoneLocal = "local"
	ZoneUTC   = "utc"
)

// Errors of the backend itself (not MXAccess refusals).
var (
	ErrEventOverflow = errors.New("mxaccess: event queue overflow")
	ErrAlreadyOpen   = errors.New("mxaccess: already open")
	ErrNotOpen       = errors.New("mxaccess: not open")
	ErrBadOption     = errors.New("mxaccess: invalid option")
)

// Options configure a Backend. The zero value works.
type Options struct {
	// ProgID of the COM class; default DefaultProgID.
	ProgID string
	// Logger; default discards.
	Logger *slog.Logger
	// TimestampZone says how VT_DATE timestamps from MXAccess are read:
	// "local" (default while unverified, MXACCESS.md §5.2) or "utc". Times
	// on the wire are always UTC.
	TimestampZone string
	// Location overrides TimestampZone with an explicit zone (tests).
	Location *time.Location
	// EventQueue is the capacity of the event queue; default
	// DefaultEventQueue.
	EventQueue int
	// OnFault is called once when the backend breaks asynchronously (event
	// queue overflow, undecodable event). It runs on the STA and must not
	// block; the worker should send its Fault and exit.
	OnFault func(error)
	// Trace, when set, receives every event with its raw arguments on the
	// delivery goroutine (used by `mxworker selftest`).
	Trace func(Trace)
	// WorkerVersion goes into BackendInfo.
	WorkerVersion string
}

// Trace is the raw view of one event call.
type Trace struct {
	Name  string
	Args  []variant.Value
	Event *mxgatewayv1.Event
	Err   error
}

// Backend implements backend.Backend on an Object.
type Backend struct {
	open   Opener
	opts   Options
	logger *slog.Logger
	loc    *time.Location

	obj  Object
	info ObjectInfo
	// dec is read by the STA (events) and replaced once by the Opener
	// (SetStatusLayout) before any sink is advised.
	dec  atomic.Pointer[eventDecoder]
	sink backend.Sink

	// qmu guards queue against close while the STA pushes.
	qmu     sync.Mutex
	qclosed bool
	queue   chan queued
	dropped atomic.Uint64
	wg      sync.WaitGroup

	fault     atomic.Pointer[error]
	faultOnce sync.Once
	closed    atomic.Bool
	closeOnce sync.Once
	closeWarn []string

	// mu guards attrVT, the VARIANT type each item's last OnDataChange
	// carried (written by the STA, read by writes). It is the only per-item
	// state of this backend: the worker's item table knows the rest.
	mu     sync.Mutex
	attrVT map[itemKey]variant.VT

	// consumer is the open native alarm consumer, or nil (command loop
	// only).
	consumer Dispatcher
}

type queued struct {
	ev    *mxgatewayv1.Event
	trace *Trace
}

type itemKey struct{ server, item int32 }

var _ backend.Backend = (*Backend)(nil)

// New returns a Backend that will create its object with open. It starts
// nothing.
func New(open Opener, opts Options) (*Backend, error) {
	if open == nil {
		return nil, fmt.Errorf("%w: nil opener", ErrBadOption)
	}
	if opts.ProgID == "" {
		opts.ProgID = DefaultProgID
	}
	if opts.EventQueue <= 0 {
		opts.EventQueue = DefaultEventQueue
	}
	loc := opts.Location
	if loc == nil {
		switch opts.TimestampZone {
		case "", ZoneLocal:
			loc = time.Local
		case ZoneUTC:
			loc = time.UTC
		default:
			return nil, fmt.Errorf("%w: timestamp zone %q (want %q or %q)", ErrBadOption, opts.TimestampZone, ZoneLocal, ZoneUTC)
		}
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Backend{
		open:   open,
		opts:   opts,
		logger: logger.With(logging.KeyComponent, "mxaccess"),
		loc:    loc,
		queue:  make(chan queued, opts.EventQueue),
		attrVT: map[itemKey]variant.VT{},
	}, nil
}

// Open creates the COM object, connects the event sinks and starts
// delivering events to sink.
func (b *Backend) Open(ctx context.Context, sink backend.Sink) (*mxgatewayv1.BackendInfo, error) {
	if b.obj != nil {
		return nil, ErrAlreadyOpen
	}
	if b.closed.Load() {
		return nil, backend.ErrClosed
	}
	b.sink = sink
	b.dec.Store(&eventDecoder{loc: b.loc, layout: variant.DefaultStatusLayout})
	obj, err := b.open(ctx, OpenConfig{ProgID: b.opts.ProgID, Logger: b.logger, SetStatusLayout: b.setStatusLayout}, b.onEvent)
	if err != nil {
		return nil, fmt.Errorf("mxaccess: create %s: %w", b.opts.ProgID, err)
	}
	info := obj.Info()
	b.obj, b.info = obj, info
	b.wg.Add(1)
	go b.deliver()
	b.logger.Info("mxaccess object created", "prog_id", info.ProgID, "clsid", info.CLSID,
		"dll", info.DLLPath, "threading_model", info.ThreadingModel, "interface_level", info.Level,
		"typelib", info.TypeLibVersion, "status_layout", fmt.Sprintf("%+v", b.dec.Load().layout), "timestamp_zone", b.loc.String())
	return &mxgatewayv1.BackendInfo{
		Kind:           "mxaccess",
		Description:    fmt.Sprintf("MXAccess %s (ILMXProxyServer%d) via COM on windows/386", info.ProgID, info.Level),
		ProgId:         info.ProgID,
		Clsid:          info.CLSID,
		DllPath:        info.DLLPath,
		InterfaceLevel: int32(info.Level),
		TypelibVersion: info.TypeLibVersion,
		WorkerVersion:  b.opts.WorkerVersion,
		Simulated:      false,
	}, nil
}

// setStatusLayout replaces the compiled-in MXSTATUS_PROXY layout with the
// one the type library describes.
func (b *Backend) setStatusLayout(l variant.StatusLayout) error {
	if err := l.Validate(); err != nil {
		return err
	}
	b.dec.Store(&eventDecoder{loc: b.loc, layout: l})
	return nil
}

// onEvent runs on the STA inside IDispatch::Invoke: decode, push without
// blocking, return.
func (b *Backend) onEvent(name string, args []variant.Value, err error) {
	received := timestamppb.Now()
	var ev *mxgatewayv1.Event
	if err == nil {
		ev, err = b.dec.Load().decode(name, args)
	}
	if err != nil {
		// Never drop silently and never guess: an event this build cannot
		// decode faults the backend (MXACCESS.md parity principle 3).
		b.setFault(fmt.Errorf("mxaccess: %s: %w", name, err))
		return
	}
	ev.WorkerTime = received
	if dc := ev.GetDataChange(); dc != nil && dc.GetValue() != nil && !dc.GetValue().GetIsNull() {
		vt := variant.VT(dc.GetValue().GetVariantType())
		b.mu.Lock()
		b.attrVT[itemKey{dc.ServerHandle, dc.ItemHandle}] = vt
		b.mu.Unlock()
	}
	q := queued{ev: ev}
	if b.opts.Trace != nil {
		q.trace = &Trace{Name: name, Args: args, Event: ev}
	}
	b.qmu.Lock()
	defer b.qmu.Unlock()
	if b.qclosed {
		b.dropped.Add(1)
		return
	}
	select {
	case b.queue <- q:
	default:
		b.setFault(fmt.Errorf("%w: %d events queued", ErrEventOverflow, cap(b.queue)))
	}
}

func (b *Backend) setFault(err error) {
	b.faultOnce.Do(func() {
		b.fault.Store(&err)
		b.logger.Error("mxaccess backend faulted", logging.KeyErr, err)
		if b.opts.OnFault != nil {
			b.opts.OnFault(err)
		}
	})
}

// Fault returns the asynchronous fault, if any.
func (b *Backend) Fault() error {
	if p := b.fault.Load(); p != nil {
		return *p
	}
	return nil
}

func (b *Backend) deliver() {
	defer b.wg.Done()
	for q := range b.queue {
		if b.sink != nil {
			b.sink.Event(q.ev)
		}
		if q.trace != nil {
			b.opts.Trace(*q.trace)
		}
	}
}

// ready checks that calls may be made.
func (b *Backend) ready() error {
	if b.closed.Load() {
		return backend.ErrClosed
	}
	if b.obj == nil {
		return ErrNotOpen
	}
	return b.Fault()
}

// call invokes method with args and returns its result value (VT_EMPTY for
// methods without one). After an asynchronous fault only the methods that
// release something (their catalogue effect removes an item, an advise or a
// registration) still reach the object, so the worker's teardown frees what
// MXAccess holds; every other call fails with the fault.
func (b *Backend) call(method string, args ...variant.Value) (variant.Value, error) {
	if err := b.ready(); err != nil && !(releases(method) && errors.Is(err, b.Fault())) {
		return variant.Value{}, err
	}
	return b.invoke(method, args...)
}

// releases reports whether an MXAccess method takes something away.
func releases(method string) bool {
	switch catalog.ByMethod(method).Effect() {
	case mxgatewayv1.ItemEffect_ITEM_EFFECT_UNADVISE, mxgatewayv1.ItemEffect_ITEM_EFFECT_REMOVE, mxgatewayv1.ItemEffect_ITEM_EFFECT_UNREGISTER:
		return true
	}
	return false
}

// invoke is call without the state checks.
func (b *Backend) invoke(method string, args ...variant.Value) (variant.Value, error) {
	mi, found := b.obj.Method(method)
	kind, err := checkMethod(method, b.info.Level, mi, found)
	if err != nil {
		return variant.Value{}, err
	}
	var outs []variant.VT
	if kind == variant.ResultOutParam {
		outs = []variant.VT{mi.Shape.ResultVT}
	}
	res, err := b.obj.Invoke(method, args, outs)
	if err != nil {
		return variant.Value{}, fmt.Errorf("mxaccess: %s: %w", method, err)
	}
	b.logger.Debug("mxaccess call", logging.KeyMethod, method, "hresult", fmt.Sprintf("0x%08X", uint32(res.HRESULT)))
	if res.HRESULT < 0 {
		return variant.Value{}, &backend.CallError{Method: method, HRESULT: res.HRESULT, Message: res.Message}
	}
	switch kind {
	case variant.ResultRetval:
		return res.Ret, nil
	case variant.ResultOutParam:
		if len(res.Outs) == 1 {
			return res.Outs[0], nil
		}
		return variant.Value{}, fmt.Errorf("mxaccess: %s: out parameter missing", method)
	}
	return variant.Value{}, nil
}

// callInt calls a method that returns a handle or id.
func (b *Backend) callInt(method string, args ...variant.Value) (int32, error) {
	v, err := b.call(method, args...)
	if err != nil {
		return 0, err
	}
	n, ok := v.Int()
	if !ok || n < -1<<31 || n > 1<<31-1 {
		return 0, &backend.NotSupportedError{Method: method, Reason: "returned " + v.String() + ", not a 32-bit integer"}
	}
	return int32(n), nil
}

// Register implements backend.Backend. A handle <= 0 is a failure even
// with S_OK (MXACCESS.md §2.3); the raw S_OK is kept in the CallError.
func (b *Backend) Register(clientName string) (int32, error) {
	h, err := b.callInt("Register", variant.BSTR(clientName))
	if err != nil {
		return 0, err
	}
	if h <= 0 {
		return h, &backend.CallError{Method: "Register", HRESULT: mxtypes.S_OK,
			Message: fmt.Sprintf("Register returned handle %d with S_OK", h)}
	}
	return h, nil
}

// Unregister implements backend.Backend.
func (b *Backend) Unregister(serverHandle int32) error {
	if _, err := b.call("Unregister", variant.Int32(serverHandle)); err != nil {
		return err
	}
	b.mu.Lock()
	for k := range b.attrVT {
		if k.server == serverHandle {
			delete(b.attrVT, k)
		}
	}
	b.mu.Unlock()
	return nil
}

// added forgets the attribute type a reused handle had.
func (b *Backend) added(server, handle int32) {
	b.mu.Lock()
	delete(b.attrVT, itemKey{server, handle})
	b.mu.Unlock()
}

// AddItem implements backend.Backend.
func (b *Backend) AddItem(serverHandle int32, itemDef string) (int32, error) {
	h, err := b.callInt("AddItem", variant.Int32(serverHandle), variant.BSTR(itemDef))
	if err != nil {
		return 0, err
	}
	b.added(serverHandle, h)
	return h, nil
}

// AddItem2 implements backend.Backend.
func (b *Backend) AddItem2(serverHandle int32, itemDef, itemContext string) (int32, error) {
	h, err := b.callInt("AddItem2", variant.Int32(serverHandle), variant.BSTR(itemDef), variant.BSTR(itemContext))
	if err != nil {
		return 0, err
	}
	b.added(serverHandle, h)
	return h, nil
}

// AddBufferedItem implements backend.Backend.
func (b *Backend) AddBufferedItem(serverHandle int32, itemDef string) (int32, error) {
	h, err := b.callInt("AddBufferedItem", variant.Int32(serverHandle), variant.BSTR(itemDef))
	if err != nil {
		return 0, err
	}
	b.added(serverHandle, h)
	return h, nil
}

// RemoveItem implements backend.Backend.
func (b *Backend) RemoveItem(serverHandle, itemHandle int32) error {
	if _, err := b.call("RemoveItem", variant.Int32(serverHandle), variant.Int32(itemHandle)); err != nil {
		return err
	}
	b.mu.Lock()
	delete(b.attrVT, itemKey{serverHandle, itemHandle})
	b.mu.Unlock()
	return nil
}

func (b *Backend) pair(method string, server, it int32) error {
	_, err := b.call(method, variant.Int32(server), variant.Int32(it))
	return err
}

// Advise implements backend.Backend.
func (b *Backend) Advise(serverHandle, itemHandle int32) error {
	return b.pair("Advise", serverHandle, itemHandle)
}

// AdviseSupervisory implements backend.Backend.
func (b *Backend) AdviseSupervisory(serverHandle, itemHandle int32) error {
	return b.pair("AdviseSupervisory", serverHandle, itemHandle)
}

// UnAdvise implements backend.Backend.
func (b *Backend) UnAdvise(serverHandle, itemHandle int32) error {
	return b.pair("UnAdvise", serverHandle, itemHandle)
}

// Suspend implements backend.Backend.
func (b *Backend) Suspend(serverHandle, itemHandle int32) error {
	return b.pair("Suspend", serverHandle, itemHandle)
}

// Activate implements backend.Backend.
func (b *Backend) Activate(serverHandle, itemHandle int32) error {
	return b.pair("Activate", serverHandle, itemHandle)
}

// SetBufferedUpdateInterval implements backend.Backend.
func (b *Backend) SetBufferedUpdateInterval(serverHandle int32, intervalMs int32) error {
	_, err := b.call("SetBufferedUpdateInterval", variant.Int32(serverHandle), variant.Int32(intervalMs))
	return err
}

// writeValue types the value to write: the client's explicit
// variant_type, else the type the attribute's last OnDataChange carried
// (MXACCESS.md §5.3: send typed VARIANTs, never strings for LMX to parse
// in the machine locale), else the value's natural type. A value that has
// no VARIANT form at all is refused like MXAccess refuses a VARIANT it
// cannot take: E_INVALIDARG, without calling MXAccess.
func (b *Backend) writeValue(method string, server, it int32, v *mxgatewayv1.MxValue) (variant.Value, error) {
	var target variant.VT
	if v.GetVariantType() == 0 {
		b.mu.Lock()
		target = b.attrVT[itemKey{server, it}]
		b.mu.Unlock()
	}
	out, err := variant.FromMxValue(v, target, b.loc)
	if err != nil && target != 0 {
		out, err = variant.FromMxValue(v, 0, b.loc)
	}
	if err != nil {
		return variant.Value{}, &backend.CallError{Method: method, HRESULT: mxtypes.E_INVALIDARG,
			Message: "worker: value has no VARIANT form: " + err.Error()}
	}
	return out, nil
}

func (b *Backend) writeTime(method string, ts time.Time) (variant.Value, error) {
	oa, err := variant.ToOADate(ts, b.loc)
	if err != nil {
		return variant.Value{}, &backend.CallError{Method: method, HRESULT: mxtypes.E_INVALIDARG, Message: "worker: " + err.Error()}
	}
	return variant.Date(oa), nil
}

// Write implements backend.Backend.
func (b *Backend) Write(serverHandle, itemHandle int32, value *mxgatewayv1.MxValue, userID int32) error {
	if err := b.ready(); err != nil {
		return err
	}
	v, err := b.writeValue("Write", serverHandle, itemHandle, value)
	if err != nil {
		return err
	}
	_, err = b.call("Write", variant.Int32(serverHandle), variant.Int32(itemHandle), v, variant.Int32(userID))
	return err
}

// Write2 implements backend.Backend. The timestamp uses the same zone
// convention as event timestamps [unverified].
func (b *Backend) Write2(serverHandle, itemHandle int32, value *mxgatewayv1.MxValue, ts time.Time, userID int32) error {
	if err := b.ready(); err != nil {
		return err
	}
	v, err := b.writeValue("Write2", serverHandle, itemHandle, value)
	if err != nil {
		return err
	}
	t, err := b.writeTime("Write2", ts)
	if err != nil {
		return err
	}
	_, err = b.call("Write2", variant.Int32(serverHandle), variant.Int32(itemHandle), v, t, variant.Int32(userID))
	return err
}

// WriteSecured implements backend.Backend.
func (b *Backend) WriteSecured(serverHandle, itemHandle, currentUserID, verifierUserID int32, value *mxgatewayv1.MxValue) error {
	if err := b.ready(); err != nil {
		return err
	}
	v, err := b.writeValue("WriteSecured", serverHandle, itemHandle, value)
	if err != nil {
		return err
	}
	_, err = b.call("WriteSecured", variant.Int32(serverHandle), variant.Int32(itemHandle),
		variant.Int32(currentUserID), variant.Int32(verifierUserID), v)
	return err
}

// WriteSecured2 implements backend.Backend.
func (b *Backend) WriteSecured2(serverHandle, itemHandle, currentUserID, verifierUserID int32, value *mxgatewayv1.MxValue, ts time.Time) error {
	if err := b.ready(); err != nil {
		return err
	}
	v, err := b.writeValue("WriteSecured2", serverHandle, itemHandle, value)
	if err != nil {
		return err
	}
	t, err := b.writeTime("WriteSecured2", ts)
	if err != nil {
		return err
	}
	_, err = b.call("WriteSecured2", variant.Int32(serverHandle), variant.Int32(itemHandle),
		variant.Int32(currentUserID), variant.Int32(verifierUserID), v, t)
	return err
}

// AuthenticateUser implements backend.Backend. The password travels only
// inside the BSTR argument and is never logged. An id of 0 with S_OK is
// returned as is: the caller treats it as "authentication failed".
func (b *Backend) AuthenticateUser(serverHandle int32, user, password string) (int32, error) {
	return b.callInt("AuthenticateUser", variant.Int32(serverHandle), variant.BSTR(user), variant.BSTR(password))
}

// ArchestrAUserToId implements backend.Backend.
func (b *Backend) ArchestrAUserToId(serverHandle int32, identity string) (int32, error) {
	return b.callInt("ArchestrAUserToId", variant.Int32(serverHandle), variant.BSTR(identity))
}

// TakeParityWarnings implements backend.Backend. The real backend is the
// reference behaviour, so it never raises parity warnings.
func (b *Backend) TakeParityWarnings() []string { return nil }

// Ping implements backend.Backend: an STA round trip, and the
// asynchronous fault if there is one.
func (b *Backend) Ping(ctx context.Context) error {
	if err := b.ready(); err != nil {
		return err
	}
	if err := b.obj.Ping(ctx); err != nil {
		return fmt.Errorf("mxaccess: ping: %w", err)
	}
	return nil
}

// Close implements backend.Backend: the Object's own teardown (Unadvise
// sinks, Release, CoUninitialize), after the worker has run the MXAccess
// teardown over its item table (itemtable.Teardown). Releasing the object
// frees anything still registered. Each failed step is one warning. Events
// still queued are delivered before Close returns; none after.
func (b *Backend) Close() []string {
	b.closeOnce.Do(func() {
		_ = b.CloseAlarmConsumer() // released on the STA before the object
		if b.obj != nil {
			b.closeWarn = b.obj.Close()
		}
		b.closed.Store(true)
		b.qmu.Lock()
		b.qclosed = true
		close(b.queue)
		b.qmu.Unlock()
		b.wg.Wait()
		if n := b.dropped.Load(); n > 0 {
			b.logger.Debug("events dropped during teardown", "count", n)
		}
	})
	return b.closeWarn
}
