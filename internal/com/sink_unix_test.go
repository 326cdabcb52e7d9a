//go:build unix

package com

import (
	"errors"
	"sync"
	"syscall"
	"testing"
	"unsafe"

	"github.com/mxgateway/mxgateway/internal/variant"
)

// mmapAlloc hands out memory outside the Go heap, as LocalAlloc does on
// Windows, so the sink's pointer logic runs unchanged (and under -race's
// checkptr) on Linux.
type mmapAlloc struct {
	mu    sync.Mutex
	pages map[uintptr][]byte
	freed []uintptr
}

func (m *mmapAlloc) Alloc(size uintptr) (uintptr, error) {
	b, err := syscall.Mmap(-1, 0, int(size), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return 0, err
	}
	addr := uintptr(unsafe.Pointer(&b[0]))
	m.mu.Lock()
	if m.pages == nil {
		m.pages = map[uintptr][]byte{}
	}
	m.pages[addr] = b
	m.mu.Unlock()
	return addr, nil
}

func (m *mmapAlloc) Free(addr uintptr) {
	m.mu.Lock()
	b := m.pages[addr]
	delete(m.pages, addr)
	m.freed = append(m.freed, addr)
	m.mu.Unlock()
	if b != nil {
		_ = syscall.Munmap(b)
	}
}

// scratch allocates foreign memory for out-parameters and GUIDs.
func scratch(t *testing.T, a *mmapAlloc, b []byte) uintptr {
	t.Helper()
	p, err := a.Alloc(64)
	if err != nil {
		t.Fatal(err)
	}
	copy(unsafe.Slice((*byte)(ptrAt(p)), 64), b)
	t.Cleanup(func() { a.Free(p) })
	return p
}

type call struct {
	name   string
	dispid int32
	args   []variant.Value
	err    error
}

func newTestSink(t *testing.T, alloc *mmapAlloc, mem variant.Memory, handle func(string, int32, []variant.Value, error)) uintptr {
	t.Helper()
	this, err := NewSink(alloc, 0xDEAD0000, SinkConfig{
		IID:     MustParseGUID("{11111111-2222-3333-4444-555555555555}"),
		Members: map[int32]string{1: "OnDataChange", 2: "OnWriteComplete"},
		Mem:     mem,
		Handle:  handle,
	})
	if err != nil {
		t.Fatal(err)
	}
	return this
}

func TestSinkQueryInterfaceAndRefcount(t *testing.T) {
	alloc := &mmapAlloc{}
	before := LiveSinks()
	this := newTestSink(t, alloc, variant.NewArena(), func(string, int32, []variant.Value, error) {})
	if got := *(*uintptr)(ptrAt(this)); got != 0xDEAD0000 {
		t.Fatalf("vtbl slot = %#x", got)
	}
	if SinkRefs(this) != 1 || LiveSinks() != before+1 {
		t.Fatalf("refs %d live %d", SinkRefs(this), LiveSinks())
	}
	ppv := scratch(t, alloc, nil)
	for _, iid := range []GUID{IID_IUnknown, IID_IDispatch, MustParseGUID("{11111111-2222-3333-4444-555555555555}")} {
		b := iid.Bytes()
		riid := scratch(t, alloc, b[:])
		if hr := sinkQueryInterface(this, riid, ppv); hr != S_OK {
			t.Fatalf("QI %s = %#x", iid, hr)
		}
		if *(*uintptr)(ptrAt(ppv)) != this {
			t.Fatalf("QI %s did not return this", iid)
		}
	}
	if SinkRefs(this) != 4 {
		t.Fatalf("QI must AddRef: refs %d", SinkRefs(this))
	}
	other := IID_IConnectionPoint.Bytes()
	*(*uintptr)(ptrAt(ppv)) = 0x1234
	if hr := sinkQueryInterface(this, scratch(t, alloc, other[:]), ppv); hr != E_NOINTERFACE {
		t.Fatalf("QI other = %#x", hr)
	}
	if *(*uintptr)(ptrAt(ppv)) != 0 {
		t.Fatal("failed QI must null *ppv")
	}
	if hr := sinkQueryInterface(this, ppv, 0); hr != E_POINTER {
		t.Fatalf("QI null ppv = %#x", hr)
	}
	if n := sinkAddRef(this); n != 5 {
		t.Fatalf("AddRef = %d", n)
	}
	for want := uintptr(4); want >= 1; want-- {
		if n := sinkRelease(this); n != want {
			t.Fatalf("Release = %d want %d", n, want)
		}
	}
	if len(alloc.freed) != 0 {
		t.Fatal("freed while referenced")
	}
	if n := ReleaseSink(this); n != 0 {
		t.Fatalf("last Release = %d", n)
	}
	if len(alloc.freed) != 1 || alloc.freed[0] != this || LiveSinks() != before {
		t.Fatalf("block not freed: freed=%v live=%d", alloc.freed, LiveSinks())
	}
}

func TestSinkTypeInfoStubs(t *testing.T) {
	alloc := &mmapAlloc{}
	this := newTestSink(t, alloc, variant.NewArena(), func(string, int32, []variant.Value, error) {})
	defer ReleaseSink(this)
	p := scratch(t, alloc, []byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF})
	if hr := sinkGetTypeInfoCount(this, p); hr != S_OK || *(*uint32)(ptrAt(p)) != 0 {
		t.Fatalf("GetTypeInfoCount hr=%#x count=%d", hr, *(*uint32)(ptrAt(p)))
	}
	*(*uintptr)(ptrAt(p)) = 0x55
	if hr := sinkGetTypeInfo(this, 0, 0, p); hr != E_NOTIMPL || *(*uintptr)(ptrAt(p)) != 0 {
		t.Fatalf("GetTypeInfo hr=%#x", hr)
	}
	if hr := sinkGetIDsOfNames(this, 0, 0, 0, 0, 0); hr != E_NOTIMPL {
		t.Fatalf("GetIDsOfNames hr=%#x", hr)
	}
}

func TestSinkInvoke(t *testing.T) {
	alloc := &mmapAlloc{}
	arena := variant.NewArena()
	var got []call
	this := newTestSink(t, alloc, arena, func(name string, dispid int32, args []variant.Value, err error) {
		got = append(got, call{name, dispid, args, err})
	})
	defer ReleaseSink(this)

	dp := arena.DispParams(variant.VariantRaw(variant.VT_I4, 7), variant.VariantRaw(variant.VT_I4, 9))
	if hr := sinkInvoke(this, 2, 0, 0, 1, uintptr(dp), 0, 0, 0); hr != S_OK {
		t.Fatalf("Invoke = %#x", hr)
	}
	if len(got) != 1 || got[0].name != "OnWriteComplete" || got[0].err != nil || len(got[0].args) != 2 {
		t.Fatalf("got %+v", got)
	}
	if h, _ := got[0].args[0].Int(); h != 7 {
		t.Errorf("first argument %v", got[0].args[0])
	}
	if hr := sinkInvoke(this, 99, 0, 0, 1, uintptr(dp), 0, 0, 0); hr != DISP_E_MEMBERNOTFOUND {
		t.Fatalf("unknown DISPID = %#x", hr)
	}
	// A decoding failure still reaches the handler, as an error.
	if hr := sinkInvoke(this, 1, 0, 0, 1, 0, 0, 0, 0); hr != S_OK {
		t.Fatalf("Invoke null params = %#x", hr)
	}
	if len(got) != 2 || !errors.Is(got[1].err, variant.ErrNullPointer) {
		t.Fatalf("got %+v", got)
	}
}

func TestSinkInvokeRecoversPanics(t *testing.T) {
	alloc := &mmapAlloc{}
	calls := 0
	this := newTestSink(t, alloc, variant.NewArena(), func(name string, dispid int32, args []variant.Value, err error) {
		calls++
		panic("boom")
	})
	defer ReleaseSink(this)
	if hr := sinkInvoke(this, 1, 0, 0, 1, 0, 0, 0, 0); hr != E_UNEXPECTED {
		t.Fatalf("Invoke = %#x", hr)
	}
	if calls != 2 {
		t.Fatalf("handler calls %d: the panic must be reported to it", calls)
	}
}

func TestSinkRejectsIncompleteConfig(t *testing.T) {
	if _, err := NewSink(&mmapAlloc{}, 1, SinkConfig{}); !errors.Is(err, ErrSinkConfig) {
		t.Fatalf("err = %v", err)
	}
}

func TestRawMemory(t *testing.T) {
	alloc := &mmapAlloc{}
	p := scratch(t, alloc, []byte{1, 2, 3, 4})
	if uint64(p) > 0xFFFFFFFF {
		t.Skip("mmap returned an address above 4 GiB; RawMemory takes 32-bit addresses")
	}
	b, err := RawMemory{}.Read(uint32(p), 4)
	if err != nil || string(b) != "\x01\x02\x03\x04" {
		t.Fatalf("b=% X err=%v", b, err)
	}
	if _, err := (RawMemory{}).Read(0, 1); !errors.Is(err, variant.ErrNullPointer) {
		t.Fatalf("err = %v", err)
	}
}
