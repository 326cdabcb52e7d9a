package com

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/mxgateway/mxgateway/internal/variant"
)

// The sink object COM sees is a small block of foreign memory (LocalAlloc
// on Windows) that holds no Go pointers:
//
//	offset 0            vtbl  uintptr  the shared vtable of SinkVtable callbacks
//	offset ptrSize      refs  int32    the COM reference count
//	offset ptrSize+4    id    uint32   key of the Go state in the registry
//
// COM may keep the pointer for as long as it holds a reference, so the
// block must not live on the Go heap (the collector does not see COM's
// references) and must not move.
const (
	ptrSize       = unsafe.Sizeof(uintptr(0))
	sinkRefsOff   = ptrSize
	sinkIDOff     = ptrSize + 4
	sinkBlockSize = ptrSize + 8
)

// Allocator provides memory outside the Go heap.
type Allocator interface {
	Alloc(size uintptr) (uintptr, error)
	Free(addr uintptr)
}

// SinkConfig is the Go side of one sink.
type SinkConfig struct {
	// IID is the source dispinterface (DIID) the connection point calls;
	// QueryInterface answers it besides IUnknown and IDispatch.
	IID GUID
	// Members maps the DISPIDs of the source interface to event names.
	// Other DISPIDs get DISP_E_MEMBERNOTFOUND.
	Members map[int32]string
	// Mem reads the DISPPARAMS of a call.
	Mem variant.Memory
	// Handle receives every accepted call on the STA, inside Invoke, with
	// the arguments copied out in declaration order, or the decoding error.
	// It must copy what it keeps and must not block or call COM.
	Handle func(name string, dispid int32, args []variant.Value, err error)
}

type sinkEntry struct {
	cfg   SinkConfig
	alloc Allocator
	addr  uintptr
}

// The registry maps sink ids to Go state. Callbacks run on the STA, but the
// registry is also touched by the goroutine that creates the sink, so it is
// locked; the lock is never held across a callback into Go state.
var (
	sinkMu     sync.Mutex
	sinkByID   = map[uint32]*sinkEntry{}
	sinkNextID atomic.Uint32
)

// ErrSinkConfig is returned by NewSink for an incomplete configuration.
var ErrSinkConfig = errors.New("com: incomplete sink configuration")

// NewSink allocates a sink object whose vtable is vtbl and returns its
// address (the IUnknown*/IDispatch* to hand to IConnectionPoint::Advise).
// It starts with one reference, owned by the caller, who drops it with
// ReleaseSink after Unadvise.
func NewSink(alloc Allocator, vtbl uintptr, cfg SinkConfig) (uintptr, error) {
	if cfg.Mem == nil || cfg.Handle == nil || vtbl == 0 {
		return 0, ErrSinkConfig
	}
	addr, err := alloc.Alloc(sinkBlockSize)
	if err != nil {
		return 0, fmt.Errorf("com: allocate sink: %w", err)
	}
	id := sinkNextID.Add(1)
	*(*uintptr)(ptrAt(addr)) = vtbl
	atomic.StoreInt32((*int32)(ptrAt(addr+sinkRefsOff)), 1)
	*(*uint32)(ptrAt(addr + sinkIDOff)) = id
	sinkMu.Lock()
	sinkByID[id] = &sinkEntry{cfg: cfg, alloc: alloc, addr: addr}
	sinkMu.Unlock()
	return addr, nil
}

// ReleaseSink drops the caller's reference taken by NewSink.
func ReleaseSink(this uintptr) uint32 { return sinkReleaseImpl(this) }

// SinkRefs returns the current reference count of a live sink.
func SinkRefs(this uintptr) int32 { return atomic.LoadInt32((*int32)(ptrAt(this + sinkRefsOff))) }

// LiveSinks returns the number of sinks not yet freed.
func LiveSinks() int {
	sinkMu.Lock()
	defer sinkMu.Unlock()
	return len(sinkByID)
}

func lookupSink(this uintptr) *sinkEntry {
	if this == 0 {
		return nil
	}
	id := *(*uint32)(ptrAt(this + sinkIDOff))
	sinkMu.Lock()
	defer sinkMu.Unlock()
	e := sinkByID[id]
	if e == nil || e.addr != this {
		return nil
	}
	return e
}

func sinkQueryInterfaceImpl(this, riid, ppv uintptr) uintptr {
	if ppv == 0 {
		return E_POINTER
	}
	*(*uintptr)(ptrAt(ppv)) = 0
	e := lookupSink(this)
	if e == nil || riid == 0 {
		return E_NOINTERFACE
	}
	iid := GUIDFromBytes(unsafe.Slice((*byte)(ptrAt(riid)), 16))
	if iid != IID_IUnknown && iid != IID_IDispatch && iid != e.cfg.IID {
		return E_NOINTERFACE
	}
	sinkAddRefImpl(this)
	*(*uintptr)(ptrAt(ppv)) = this
	return S_OK
}

func sinkAddRefImpl(this uintptr) uint32 {
	if this == 0 {
		return 0
	}
	return uint32(atomic.AddInt32((*int32)(ptrAt(this+sinkRefsOff)), 1))
}

func sinkReleaseImpl(this uintptr) uint32 {
	if this == 0 {
		return 0
	}
	n := atomic.AddInt32((*int32)(ptrAt(this+sinkRefsOff)), -1)
	if n > 0 {
		return uint32(n)
	}
	if n < 0 {
		// Over-release by the caller; keep the block (freeing it twice
		// would corrupt the heap) and report zero.
		return 0
	}
	id := *(*uint32)(ptrAt(this + sinkIDOff))
	sinkMu.Lock()
	e := sinkByID[id]
	if e != nil && e.addr == this {
		delete(sinkByID, id)
	}
	sinkMu.Unlock()
	if e != nil {
		e.alloc.Free(this)
	}
	return 0
}

func sinkInvokeImpl(this uintptr, dispid int32, pDispParams uintptr) (hr uintptr) {
	e := lookupSink(this)
	if e == nil {
		return E_UNEXPECTED
	}
	name, ok := e.cfg.Members[dispid]
	if !ok {
		return DISP_E_MEMBERNOTFOUND
	}
	// A panic must not unwind through the Windows frames that called us.
	defer func() {
		if r := recover(); r != nil {
			hr = E_UNEXPECTED
			func() {
				defer func() { _ = recover() }()
				e.cfg.Handle(name, dispid, nil, fmt.Errorf("com: panic in event sink: %v", r))
			}()
		}
	}()
	// On windows/386 every address fits in 32 bits.
	args, err := variant.ReadArgs(e.cfg.Mem, uint32(pDispParams))
	e.cfg.Handle(name, dispid, args, err)
	return S_OK
}

// ptrAt turns an address received from or handed to foreign code into an
// unsafe.Pointer. The addresses are never Go heap addresses (they are COM
// arguments or LocalAlloc blocks), so the conversion is not subject to the
// collector; going through memory rather than unsafe.Pointer(uintptr)
// keeps vet's unsafeptr check meaningful for the rest of the package.
func ptrAt(addr uintptr) unsafe.Pointer {
	return *(*unsafe.Pointer)(unsafe.Pointer(&addr))
}

// RawMemory reads this process's memory at 32-bit addresses. It is the
// variant.Memory of the windows/386 worker: the addresses come from COM
// (DISPPARAMS, VARIANTs, SAFEARRAYs) and are valid for the duration of the
// call that produced them.
type RawMemory struct{}

// Read implements variant.Memory.
func (RawMemory) Read(addr uint32, n int) ([]byte, error) {
	if addr == 0 {
		return nil, fmt.Errorf("%w: read at 0", variant.ErrNullPointer)
	}
	if n < 0 || n > variant.MaxArrayBytes {
		return nil, fmt.Errorf("%w: read of %d bytes", variant.ErrTooLarge, n)
	}
	out := make([]byte, n)
	copy(out, unsafe.Slice((*byte)(ptrAt(uintptr(addr))), n))
	return out, nil
}
