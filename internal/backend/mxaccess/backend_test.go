package mxaccess

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/catalog"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/mxtypes"
	"github.com/mxgateway/mxgateway/internal/backend"
	"github.com/mxgateway/mxgateway/internal/testutil"
	"github.com/mxgateway/mxgateway/internal/variant"
)

func TestMain(m *testing.M) { testutil.VerifyNoLeaks(m) }

type invocation struct {
	name string
	args []variant.Value
	outs []variant.VT
}

// fakeObject stands in for the COM object: it records every Invoke and
// answers from a per-method function.
type fakeObject struct {
	info    ObjectInfo
	methods map[string]MethodInfo
	answer  func(name string, args []variant.Value) CallResult
	events  EventHandler

	mu       sync.Mutex
	calls    []invocation
	closed   int
	closeErr []string
	pingErr  error
}

func newFake(level int) *fakeObject {
	f := &fakeObject{
		info:    ObjectInfo{ProgID: DefaultProgID, CLSID: "{C30B52F5-2CB5-4760-AF0A-3A344A7EB5DC}", DLLPath: `C:\x\LmxProxy.dll`, Level: level, TypeLibVersion: "1.0"},
		methods: map[string]MethodInfo{},
	}
	for i, name := range MethodNames() {
		want, _ := ExpectedShape(name)
		sh := want
		f.methods[name] = MethodInfo{DispID: int32(i + 1), Shape: &sh}
	}
	return f
}

func (f *fakeObject) Info() ObjectInfo { return f.info }
func (f *fakeObject) Method(name string) (MethodInfo, bool) {
	m, ok := f.methods[name]
	return m, ok
}
func (f *fakeObject) Invoke(name string, args []variant.Value, outs []variant.VT) (CallResult, error) {
	f.mu.Lock()
	f.calls = append(f.calls, invocation{name, args, outs})
	f.mu.Unlock()
	if f.answer != nil {
		return f.answer(name, args), nil
	}
	switch name {
	case "Register", "AddItem", "AddItem2", "AddBufferedItem", "AuthenticateUser", "ArchestrAUserToId":
		return CallResult{Ret: variant.Int32(7)}, nil
	}
	return CallResult{}, nil
}
func (f *fakeObject) Ping(ctx context.Context) error { return f.pingErr }
func (f *fakeObject) Close() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed++
	return f.closeErr
}
func (f *fakeObject) callNames() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		out = append(out, fmt.Sprintf("%s%v", c.name, intArgs(c.args)))
	}
	return out
}
func (f *fakeObject) last() invocation {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[len(f.calls)-1]
}

func intArgs(args []variant.Value) []int64 {
	var out []int64
	for _, a := range args {
		if n, ok := a.Int(); ok {
			out = append(out, n)
		}
	}
	return out
}

type recordingSink struct {
	mu     sync.Mutex
	events []*mxgatewayv1.Event
	block  chan struct{}
}

func (s *recordingSink) Event(ev *mxgatewayv1.Event) {
	if s.block != nil {
		<-s.block
	}
	s.mu.Lock()
	s.events = append(s.events, ev)
	s.mu.Unlock()
}

func (s *recordingSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.events)
}

func openFake(t *testing.T, f *fakeObject, opts Options) (*Backend, *recordingSink) {
	t.Helper()
	if opts.Location == nil {
		opts.Location = time.UTC
	}
	b, err := New(func(ctx context.Context, cfg OpenConfig, events EventHandler) (Object, error) {
		if cfg.ProgID == "" {
			t.Error("empty ProgID")
		}
		f.events = events
		return f, nil
	}, opts)
	if err != nil {
		t.Fatal(err)
	}
	sink := &recordingSink{}
	if _, err := b.Open(context.Background(), sink); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b, sink
}

func TestOpenReportsBackendInfo(t *testing.T) {
	f := newFake(5)
	b, err := New(func(ctx context.Context, cfg OpenConfig, events EventHandler) (Object, error) {
		if cfg.ProgID != "LMXProxy.LMXProxyServer.1" {
			t.Errorf("ProgID %q", cfg.ProgID)
		}
		return f, nil
	}, Options{ProgID: "LMXProxy.LMXProxyServer.1", WorkerVersion: "v9"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	info, err := b.Open(context.Background(), &recordingSink{})
	if err != nil {
		t.Fatal(err)
	}
	if info.Kind != "mxaccess" || info.Simulated || info.InterfaceLevel != 5 || info.Clsid != f.info.CLSID ||
		info.DllPath != f.info.DLLPath || info.WorkerVersion != "v9" || info.TypelibVersion != "1.0" {
		t.Fatalf("info %v", info)
	}
	if _, err := b.Open(context.Background(), &recordingSink{}); !errors.Is(err, ErrAlreadyOpen) {
		t.Fatalf("second Open: %v", err)
	}
}

func TestOpenFailureIsWrapped(t *testing.T) {
	boom := errors.New("REGDB_E_CLASSNOTREG")
	b, _ := New(func(context.Context, OpenConfig, EventHandler) (Object, error) { return nil, boom }, Options{})
	defer b.Close()
	if _, err := b.Open(context.Background(), &recordingSink{}); !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	if _, err := b.Register("x"); !errors.Is(err, ErrNotOpen) {
		t.Fatalf("Register before open: %v", err)
	}
}

func TestNewRejectsBadZone(t *testing.T) {
	if _, err := New(func(context.Context, OpenConfig, EventHandler) (Object, error) { return nil, nil }, Options{TimestampZone: "mars"}); !errors.Is(err, ErrBadOption) {
		t.Fatalf("err = %v", err)
	}
	if _, err := New(nil, Options{}); !errors.Is(err, ErrBadOption) {
		t.Fatalf("err = %v", err)
	}
}

func TestArgumentsTypedInDeclarationOrder(t *testing.T) {
	f := newFake(5)
	b, _ := openFake(t, f, Options{})
	if h, err := b.AddItem(3, "Tank1.PV"); err != nil || h != 7 {
		t.Fatalf("AddItem = %d, %v", h, err)
	}
	c := f.last()
	if c.name != "AddItem" || c.args[0].VT != variant.VT_I4 || c.args[1].VT != variant.VT_BSTR || c.args[1].Str != "Tank1.PV" {
		t.Fatalf("call %+v", c)
	}
	val := &mxgatewayv1.MxValue{Kind: &mxgatewayv1.MxValue_Int32Value{Int32Value: 42}}
	if err := b.WriteSecured(3, 7, 11, 12, val); err != nil {
		t.Fatal(err)
	}
	c = f.last()
	if got := fmt.Sprint(intArgs(c.args)); got != "[3 7 11 12 42]" {
		t.Fatalf("WriteSecured args %s", got)
	}
	ts := time.Date(2024, 1, 2, 3, 4, 5, 6e6, time.UTC)
	if err := b.Write2(3, 7, val, ts, 0); err != nil {
		t.Fatal(err)
	}
	c = f.last()
	if c.args[3].VT != variant.VT_DATE || c.args[4].VT != variant.VT_I4 {
		t.Fatalf("Write2 args %v", c.args)
	}
	oa, _ := c.args[3].Float()
	if back, _ := variant.FromOADate(oa, time.UTC); !back.Equal(ts) {
		t.Fatalf("Write2 timestamp %s", back)
	}
	if _, err := b.AuthenticateUser(3, `DOM\op`, "secret"); err != nil {
		t.Fatal(err)
	}
	if c = f.last(); c.args[1].Str != `DOM\op` || c.args[2].Str != "secret" {
		t.Fatalf("AuthenticateUser args %v", c.args)
	}
}

func TestHRESULTBecomesCallError(t *testing.T) {
	f := newFake(5)
	f.answer = func(name string, args []variant.Value) CallResult {
		return CallResult{HRESULT: mxtypes.E_ACCESSDENIED, Message: "LMXProxy: licence"}
	}
	b, _ := openFake(t, f, Options{})
	_, err := b.AddItem(1, "X.Y")
	var ce *backend.CallError
	if !errors.As(err, &ce) || ce.HRESULT != mxtypes.E_ACCESSDENIED || ce.Method != "AddItem" || ce.Message != "LMXProxy: licence" {
		t.Fatalf("err = %#v", err)
	}
	// S_FALSE is success.
	f.answer = func(string, []variant.Value) CallResult { return CallResult{HRESULT: 1} }
	if err := b.Advise(1, 1); err != nil {
		t.Fatalf("S_FALSE: %v", err)
	}
}

func TestRegisterHandleZeroIsFailure(t *testing.T) {
	f := newFake(5)
	f.answer = func(string, []variant.Value) CallResult { return CallResult{Ret: variant.Int32(0)} }
	b, _ := openFake(t, f, Options{})
	_, err := b.Register("mxgateway-s1")
	var ce *backend.CallError
	if !errors.As(err, &ce) || ce.HRESULT != mxtypes.S_OK || !strings.Contains(ce.Message, "handle 0") {
		t.Fatalf("err = %v", err)
	}
}

func TestSupportChecks(t *testing.T) {
	cases := []struct {
		name   string
		level  int
		mutate func(f *fakeObject)
		call   func(b *Backend) error
		want   string // "" = supported
	}{
		{"level 3 lacks Write2", 3, nil, func(b *Backend) error {
			return b.Write2(1, 1, &mxgatewayv1.MxValue{Kind: &mxgatewayv1.MxValue_Int32Value{}}, time.Now(), 0)
		}, "interface level 3"},
		{"level 4 lacks AddBufferedItem", 4, nil, func(b *Backend) error { _, err := b.AddBufferedItem(1, "a"); return err }, "ILMXProxyServer5"},
		{"level 3 has AddItem2", 3, nil, func(b *Backend) error { _, err := b.AddItem2(1, "a", "ctx"); return err }, ""},
		{"no DISPID", 5, func(f *fakeObject) { delete(f.methods, "Suspend") }, func(b *Backend) error { return b.Suspend(1, 1) }, "no DISPID"},
		{"unverified without type library", 5, func(f *fakeObject) { f.methods["Suspend"] = MethodInfo{DispID: 9} }, func(b *Backend) error { return b.Suspend(1, 1) }, "unverified"},
		{"verified without type library", 5, func(f *fakeObject) { f.methods["Advise"] = MethodInfo{DispID: 9} }, func(b *Backend) error { return b.Advise(1, 1) }, ""},
		{"type library shape differs", 5, func(f *fakeObject) {
			f.methods["AddItem2"] = MethodInfo{DispID: 9, Shape: &variant.Shape{In: []variant.VT{variant.VT_I4, variant.VT_BSTR, variant.VT_I4}, Result: variant.ResultRetval, ResultVT: variant.VT_I4}}
		}, func(b *Backend) error { _, err := b.AddItem2(1, "a", "ctx"); return err }, "differs"},
		{"WriteSecured order differs", 5, func(f *fakeObject) {
			f.methods["WriteSecured"] = MethodInfo{DispID: 9, Shape: &variant.Shape{In: []variant.VT{variant.VT_I4, variant.VT_I4, variant.VT_VARIANT, variant.VT_I4, variant.VT_I4}}}
		}, func(b *Backend) error {
			return b.WriteSecured(1, 1, 2, 3, &mxgatewayv1.MxValue{Kind: &mxgatewayv1.MxValue_Int32Value{}})
		}, "differs"},
		{"missing return value", 5, func(f *fakeObject) {
			f.methods["Register"] = MethodInfo{DispID: 9, Shape: &variant.Shape{In: []variant.VT{variant.VT_BSTR}}}
		}, func(b *Backend) error { _, err := b.Register("x"); return err }, "differs"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(tc.level)
			if tc.mutate != nil {
				tc.mutate(f)
			}
			b, _ := openFake(t, f, Options{})
			err := tc.call(b)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				return
			}
			var ns *backend.NotSupportedError
			if !errors.As(err, &ns) || !strings.Contains(ns.Reason, tc.want) {
				t.Fatalf("err = %v, want NotSupported containing %q", err, tc.want)
			}
			if len(f.callNames()) != 0 {
				t.Fatalf("unsupported method was invoked: %v", f.callNames())
			}
		})
	}
}

func TestOutParameterResult(t *testing.T) {
	f := newFake(5)
	f.methods["AddItem"] = MethodInfo{DispID: 3, Shape: &variant.Shape{In: []variant.VT{variant.VT_I4, variant.VT_BSTR}, Result: variant.ResultOutParam, ResultVT: variant.VT_I4}}
	f.answer = func(string, []variant.Value) CallResult { return CallResult{Outs: []variant.Value{variant.Int32(12)}} }
	b, _ := openFake(t, f, Options{})
	h, err := b.AddItem(1, "a")
	if err != nil || h != 12 {
		t.Fatalf("h=%d err=%v", h, err)
	}
	if c := f.last(); len(c.outs) != 1 || c.outs[0] != variant.VT_I4 {
		t.Fatalf("outs %v", c.outs)
	}
	f.answer = func(string, []variant.Value) CallResult { return CallResult{Outs: []variant.Value{variant.BSTR("x")}} }
	var ns *backend.NotSupportedError
	if _, err := b.AddItem(1, "a"); !errors.As(err, &ns) {
		t.Fatalf("non-integer result: %v", err)
	}
}

// dataChangeArgs builds OnDataChange arguments the way the sink delivers
// them: laid out as 386 DISPPARAMS bytes and decoded by variant.ReadArgs.
func dataChangeArgs(t *testing.T, h, it int32, value []byte, quality []byte, oa float64, statuses ...[]byte) []variant.Value {
	t.Helper()
	a := variant.NewArena()
	var raw []byte
	for _, s := range statuses {
		raw = append(raw, s...)
	}
	sa := a.SafeArray(variant.FADF_RECORD, 0, 16, 0, uint32(len(statuses)), raw)
	slot := a.Alloc(binary.LittleEndian.AppendUint32(nil, sa))
	if value == nil {
		value = variant.VariantRaw(variant.VT_EMPTY, 0)
	}
	dp := a.DispParams(
		variant.VariantRaw(variant.VT_I4, uint64(uint32(h))),
		variant.VariantRaw(variant.VT_I4, uint64(uint32(it))),
		value,
		quality,
		variant.VariantRaw(variant.VT_DATE, math.Float64bits(oa)),
		variant.VariantRaw(variant.VT_BYREF|variant.VT_ARRAY|variant.VT_RECORD, uint64(slot)),
	)
	args, err := variant.ReadArgs(a, dp)
	if err != nil {
		t.Fatal(err)
	}
	return args
}

func TestOnDataChangeEvent(t *testing.T) {
	f := newFake(5)
	plus1 := time.FixedZone("+1", 3600)
	b, sink := openFake(t, f, Options{Location: plus1})
	wall := time.Date(2024, 5, 6, 12, 0, 0, 250e6, time.UTC)
	oa, _ := variant.ToOADate(wall, time.UTC) // MXAccess sends 12:00:00.250 local
	args := dataChangeArgs(t, 3, 7,
		variant.VariantRaw(variant.VT_R4, uint64(math.Float32bits(21.5))),
		variant.VariantRaw(variant.VT_I2, 192),
		oa,
		variant.StatusRecord(variant.DefaultStatusLayout, -1, 0, 1, 0),
		variant.StatusRecord(variant.DefaultStatusLayout, 0, 3, 1, 1003))
	f.events(EventOnDataChange, args, nil)
	testutil.Eventually(t, 5*time.Second, func() error {
		if sink.count() != 1 {
			return fmt.Errorf("%d events", sink.count())
		}
		return nil
	})
	ev := sink.events[0]
	dc := ev.GetDataChange()
	if ev.Family != mxgatewayv1.EventFamily_EVENT_FAMILY_ON_DATA_CHANGE || dc.ServerHandle != 3 || dc.ItemHandle != 7 {
		t.Fatalf("event %v", ev)
	}
	if dc.Value.GetFloatValue() != 21.5 || dc.Value.VariantType != uint32(variant.VT_R4) || dc.Quality.Raw != 192 ||
		dc.Quality.QualityClass != mxgatewayv1.QualityClass_QUALITY_CLASS_GOOD {
		t.Fatalf("value/quality %v %v", dc.Value, dc.Quality)
	}
	if got := dc.Timestamp.AsTime(); !got.Equal(wall.Add(-time.Hour)) {
		t.Fatalf("timestamp %s, want local 12:00:00.250 at +1 = 11:00:00.250Z", got)
	}
	if len(dc.Statuses) != 2 || dc.Statuses[1].Detail != 1003 || dc.Statuses[0].SuccessRaw != -1 {
		t.Fatalf("statuses %v", dc.Statuses)
	}
	if ev.WorkerTime == nil {
		t.Fatal("no worker time")
	}
	// The first value's type now types writes to that item.
	if err := b.Write(3, 7, &mxgatewayv1.MxValue{Kind: &mxgatewayv1.MxValue_Int32Value{Int32Value: 5}}, 0); err != nil {
		t.Fatal(err)
	}
	if v := f.last().args[2]; v.VT != variant.VT_R4 {
		t.Fatalf("write typed %s, want the attribute's VT_R4", v.VT)
	}
	// An explicit variant type wins.
	if err := b.Write(3, 7, &mxgatewayv1.MxValue{VariantType: uint32(variant.VT_R8), Kind: &mxgatewayv1.MxValue_Int32Value{Int32Value: 5}}, 0); err != nil {
		t.Fatal(err)
	}
	if v := f.last().args[2]; v.VT != variant.VT_R8 {
		t.Fatalf("write typed %s, want explicit VT_R8", v.VT)
	}
	// Not representable as the attribute type: sent as its own type, MXAccess decides.
	if err := b.Write(3, 7, &mxgatewayv1.MxValue{Kind: &mxgatewayv1.MxValue_StringValue{StringValue: "1"}}, 0); err != nil {
		t.Fatal(err)
	}
	if v := f.last().args[2]; v.VT != variant.VT_BSTR {
		t.Fatalf("write typed %s", v.VT)
	}
	// RemoveItem forgets the type: handles are reused.
	if err := b.RemoveItem(3, 7); err != nil {
		t.Fatal(err)
	}
	if err := b.Write(3, 7, &mxgatewayv1.MxValue{Kind: &mxgatewayv1.MxValue_Int32Value{Int32Value: 5}}, 0); err != nil {
		t.Fatal(err)
	}
	if v := f.last().args[2]; v.VT != variant.VT_I4 {
		t.Fatalf("after RemoveItem write typed %s", v.VT)
	}
	// No VARIANT form at all: E_INVALIDARG without calling MXAccess.
	n := len(f.callNames())
	err := b.Write(3, 7, &mxgatewayv1.MxValue{Kind: &mxgatewayv1.MxValue_Int64Value{Int64Value: 1 << 40}}, 0)
	var ce *backend.CallError
	if !errors.As(err, &ce) || ce.HRESULT != mxtypes.E_INVALIDARG || len(f.callNames()) != n {
		t.Fatalf("err = %v", err)
	}
}

func TestOtherEvents(t *testing.T) {
	a := variant.NewArena()
	st := variant.StatusRecord(variant.DefaultStatusLayout, 0, 6, 5, 0)
	statusArg := func() variant.Value {
		sa := a.SafeArray(variant.FADF_RECORD, 0, 16, 0, 1, st)
		v, err := variant.ReadVariant(a, a.Variant(variant.VT_ARRAY|variant.VT_RECORD, uint64(sa)))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	dec := eventDecoder{loc: time.UTC, layout: variant.DefaultStatusLayout}

	ev, err := dec.decode(EventOnWriteComplete, []variant.Value{variant.Int32(1), variant.Int32(2), statusArg()})
	if err != nil {
		t.Fatal(err)
	}
	if wc := ev.GetWriteComplete(); wc.ItemHandle != 2 || len(wc.Statuses) != 1 ||
		wc.Statuses[0].Category != mxgatewayv1.MxStatusCategory_MX_STATUS_CATEGORY_SECURITY_ERROR {
		t.Fatalf("write complete %v", ev)
	}
	ev, err = dec.decode(EventOperationComplete, []variant.Value{variant.Int32(1), variant.Int32(2), statusArg()})
	if err != nil || ev.GetOperationComplete().ItemHandle != 2 || len(ev.GetOperationComplete().Statuses) != 1 {
		t.Fatalf("operation complete %v %v", ev, err)
	}
	vals := variant.NewArray(variant.VT_VARIANT, []variant.Value{variant.Int32(1), variant.Int32(2)})
	quals := variant.NewArray(variant.VT_I2, []variant.Value{variant.Int16(192), variant.Int16(24)})
	times := variant.NewArray(variant.VT_DATE, []variant.Value{variant.Date(25569), variant.Date(25570)})
	ev, err = dec.decode(EventOnBufferedDataChange, []variant.Value{variant.Int32(1), variant.Int32(2), vals, quals, times, statusArg()})
	if err != nil {
		t.Fatal(err)
	}
	bd := ev.GetBufferedDataChange()
	if len(bd.Samples) != 2 || bd.Samples[1].Quality.Raw != 24 || bd.Samples[1].Value.GetInt32Value() != 2 ||
		bd.Samples[1].Timestamp.AsTime().Unix() != 86400 {
		t.Fatalf("buffered %v", bd)
	}
	bad := []struct {
		name string
		args []variant.Value
	}{
		{EventOnWriteComplete, []variant.Value{variant.Int32(1), variant.Int32(2)}},
		{EventOnDataChange, []variant.Value{variant.Int32(1)}},
		{EventOnWriteComplete, []variant.Value{variant.BSTR("x"), variant.Int32(2), statusArg()}},
		{EventOnWriteComplete, []variant.Value{variant.Int32(1), variant.Int32(2), variant.Int32(3)}},
		{EventOnBufferedDataChange, []variant.Value{variant.Int32(1), variant.Int32(2), vals, variant.Int16(1), times, statusArg()}},
		{"Other", nil},
	}
	for _, tc := range bad {
		if _, err := dec.decode(tc.name, tc.args); err == nil {
			t.Errorf("%s %v decoded", tc.name, tc.args)
		}
	}
}

func TestUndecodableEventFaults(t *testing.T) {
	f := newFake(5)
	var faults []error
	var fmu sync.Mutex
	b, sink := openFake(t, f, Options{OnFault: func(err error) { fmu.Lock(); faults = append(faults, err); fmu.Unlock() }})
	f.events(EventOnWriteComplete, []variant.Value{variant.Int32(1)}, nil)
	f.events(EventOnWriteComplete, nil, variant.ErrMalformed)
	fmu.Lock()
	n := len(faults)
	fmu.Unlock()
	if n != 1 || !errors.Is(b.Fault(), ErrEventShape) {
		t.Fatalf("faults %v, Fault %v", faults, b.Fault())
	}
	if _, err := b.Register("x"); !errors.Is(err, ErrEventShape) {
		t.Fatalf("call after fault: %v", err)
	}
	if err := b.Ping(context.Background()); err == nil {
		t.Fatal("Ping healthy after fault")
	}
	if sink.count() != 0 {
		t.Fatal("undecodable event delivered")
	}
}

func TestEventOverflowFaults(t *testing.T) {
	f := newFake(5)
	b, err := New(func(ctx context.Context, cfg OpenConfig, events EventHandler) (Object, error) {
		f.events = events
		return f, nil
	}, Options{EventQueue: 1, Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	sink := &recordingSink{block: make(chan struct{})}
	if _, err := b.Open(context.Background(), sink); err != nil {
		t.Fatal(err)
	}
	wc := func() {
		f.events(EventOnWriteComplete, []variant.Value{variant.Int32(1), variant.Int32(2), variant.Empty()}, nil)
	}
	// One event is held by the blocked sink, one fills the queue, the next overflows.
	wc()
	testutil.Eventually(t, 5*time.Second, func() error {
		if len(b.queue) != 0 {
			return errors.New("first event not yet taken")
		}
		return nil
	})
	wc()
	if b.Fault() != nil {
		t.Fatal("faulted before overflow")
	}
	wc()
	if !errors.Is(b.Fault(), ErrEventOverflow) {
		t.Fatalf("Fault = %v", b.Fault())
	}
	close(sink.block)
	b.Close()
	if sink.count() != 2 {
		t.Fatalf("delivered %d events, want the 2 accepted", sink.count())
	}
}

// TestCloseReleasesOnly: the MXAccess teardown is the worker's, over its
// item table (itemtable.Teardown); Close makes no MXAccess call, releases
// the object once and delivers nothing afterwards.
func TestCloseReleasesOnly(t *testing.T) {
	f := newFake(5)
	f.closeErr = []string{"Unadvise sink: CONNECT_E_NOCONNECTION"}
	b, sink := openFake(t, f, Options{})
	handle := int32(0)
	f.answer = func(name string, args []variant.Value) CallResult {
		if name == "Register" || name == "AddItem" {
			handle++
			return CallResult{Ret: variant.Int32(handle)}
		}
		return CallResult{}
	}
	r, err := b.Register("a")
	if err != nil {
		t.Fatal(err)
	}
	i1, err := b.AddItem(r, "A.x")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Advise(r, i1); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.calls = nil
	f.mu.Unlock()

	warns := b.Close()
	if got := f.callNames(); len(got) != 0 {
		t.Fatalf("Close made MXAccess calls %v", got)
	}
	if f.closed != 1 || len(warns) != 1 || !strings.Contains(warns[0], "CONNECT_E_NOCONNECTION") {
		t.Fatalf("object closed %d times, warnings %v", f.closed, warns)
	}
	if again := b.Close(); len(again) != 1 || f.closed != 1 {
		t.Fatalf("second Close %v, object closed %d times", again, f.closed)
	}
	if _, err := b.Register("b"); !errors.Is(err, backend.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	// Late event after Close: not delivered, no panic.
	f.events(EventOnWriteComplete, []variant.Value{variant.Int32(1), variant.Int32(2), variant.Empty()}, nil)
	if sink.count() != 0 {
		t.Fatal("event delivered after Close")
	}
}

// TestTeardownAfterFault: after an asynchronous fault the calls that
// release something still reach the object (the worker's teardown frees
// what MXAccess holds); the others fail with the fault.
func TestTeardownAfterFault(t *testing.T) {
	f := newFake(5)
	b, _ := openFake(t, f, Options{})
	f.events(EventOnWriteComplete, nil, variant.ErrMalformed)
	if b.Fault() == nil {
		t.Fatal("no fault")
	}
	f.mu.Lock()
	f.calls = nil
	f.mu.Unlock()
	if _, err := b.AddItem(1, "x"); !errors.Is(err, variant.ErrMalformed) {
		t.Fatalf("AddItem after fault: %v", err)
	}
	for _, err := range []error{b.UnAdvise(1, 2), b.RemoveItem(1, 2), b.Unregister(1)} {
		if err != nil {
			t.Fatalf("teardown call after fault: %v", err)
		}
	}
	if got := fmt.Sprint(f.callNames()); got != "[UnAdvise[1 2] RemoveItem[1 2] Unregister[1]]" {
		t.Fatalf("calls %s", got)
	}
}

// TestUnregisterForgetsAttributeTypes: after Unregister, a reused handle
// writes with the value's own VARIANT type, not the type an earlier item's
// data changes carried.
func TestUnregisterForgetsAttributeTypes(t *testing.T) {
	f := newFake(5)
	b, sink := openFake(t, f, Options{Location: time.UTC})
	args := dataChangeArgs(t, 3, 7, variant.VariantRaw(variant.VT_R4, uint64(math.Float32bits(1.5))),
		variant.VariantRaw(variant.VT_I2, 192), 45000, variant.StatusRecord(variant.DefaultStatusLayout, -1, 0, 1, 0))
	f.events(EventOnDataChange, args, nil)
	testutil.Eventually(t, 5*time.Second, func() error {
		if sink.count() != 1 {
			return fmt.Errorf("%d events", sink.count())
		}
		return nil
	})
	five := &mxgatewayv1.MxValue{Kind: &mxgatewayv1.MxValue_Int32Value{Int32Value: 5}}
	if err := b.Write(3, 7, five, 0); err != nil {
		t.Fatal(err)
	}
	if v := f.last().args[2]; v.VT != variant.VT_R4 {
		t.Fatalf("write typed %s before Unregister, want the attribute's VT_R4", v.VT)
	}
	if err := b.Unregister(3); err != nil {
		t.Fatal(err)
	}
	if err := b.Write(3, 7, five, 0); err != nil {
		t.Fatal(err)
	}
	if v := f.last().args[2]; v.VT != variant.VT_I4 {
		t.Fatalf("write typed %s after Unregister, want the value's own VT_I4", v.VT)
	}
}

func TestPingAndTrace(t *testing.T) {
	f := newFake(5)
	var traces []Trace
	var tmu sync.Mutex
	b, _ := openFake(t, f, Options{Trace: func(tr Trace) { tmu.Lock(); traces = append(traces, tr); tmu.Unlock() }})
	if err := b.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.pingErr = errors.New("sta gone")
	if err := b.Ping(context.Background()); err == nil {
		t.Fatal("Ping ignored the STA")
	}
	f.events(EventOnWriteComplete, []variant.Value{variant.Int32(1), variant.Int32(2), variant.Empty()}, nil)
	testutil.Eventually(t, 5*time.Second, func() error {
		tmu.Lock()
		defer tmu.Unlock()
		if len(traces) != 1 || traces[0].Name != EventOnWriteComplete || len(traces[0].Args) != 3 || traces[0].Event == nil {
			return fmt.Errorf("traces %v", traces)
		}
		return nil
	})
	if b.TakeParityWarnings() != nil {
		t.Fatal("parity warnings from the reference backend")
	}
}

func TestOpenerSetsStatusLayout(t *testing.T) {
	packed := variant.StatusLayout{Size: 12, SuccessOff: 0, CategoryOff: 2, DetectedByOff: 6, DetailOff: 10}
	f := newFake(5)
	b, err := New(func(ctx context.Context, cfg OpenConfig, events EventHandler) (Object, error) {
		if err := cfg.SetStatusLayout(variant.StatusLayout{Size: 4, DetailOff: 12}); err == nil {
			t.Error("invalid layout accepted")
		}
		if err := cfg.SetStatusLayout(packed); err != nil {
			t.Error(err)
		}
		f.events = events
		return f, nil
	}, Options{Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	sink := &recordingSink{}
	if _, err := b.Open(context.Background(), sink); err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	a := variant.NewArena()
	sa := a.SafeArray(variant.FADF_RECORD, 0, 12, 0, 1, variant.StatusRecord(packed, -1, 1, 2, 3))
	st, err := variant.ReadVariant(a, a.Variant(variant.VT_ARRAY|variant.VT_RECORD, uint64(sa)))
	if err != nil {
		t.Fatal(err)
	}
	f.events(EventOnWriteComplete, []variant.Value{variant.Int32(1), variant.Int32(2), st}, nil)
	testutil.Eventually(t, 5*time.Second, func() error {
		if sink.count() != 1 {
			return fmt.Errorf("%d events (fault: %v)", sink.count(), b.Fault())
		}
		return nil
	})
	if s := sink.events[0].GetWriteComplete().Statuses[0]; s.CategoryRaw != 1 || s.DetectedByRaw != 2 || s.Detail != 3 {
		t.Fatalf("status %v", s)
	}
}

// TestMethodSpecsCoverTheCatalogue: every MXAccess method of the command
// catalogue has a compiled-in COM shape, and nothing else does.
func TestMethodSpecsCoverTheCatalogue(t *testing.T) {
	for _, m := range catalog.Methods() {
		if _, ok := methodSpecs[m]; !ok {
			t.Errorf("%s: no COM shape", m)
		}
	}
	if len(methodSpecs) != len(catalog.Methods()) {
		t.Errorf("%d COM shapes for %d catalogue methods", len(methodSpecs), len(catalog.Methods()))
	}
}
