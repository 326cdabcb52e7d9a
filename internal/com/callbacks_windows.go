//go:build windows && 386

package com

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/windows"
)

// sinkVtbl is the one vtable every sink shares: foreign memory holding one
// stdcall callback per SinkVtable entry. The callbacks are created exactly
// once, at package initialisation, because syscall.NewCallback slots are
// few (about 1024 guaranteed) and never freed. NewCallback panics if a
// function's signature is unusable, so a broken table fails at start-up,
// not on the first event.
var sinkVtbl = buildSinkVtbl()

func buildSinkVtbl() uintptr {
	p, err := windows.LocalAlloc(windows.LMEM_FIXED|windows.LMEM_ZEROINIT, uint32(len(SinkVtable))*uint32(ptrSize))
	if err != nil {
		panic(fmt.Sprintf("com: allocate sink vtable: %v", err))
	}
	for i, m := range SinkVtable {
		*(*uintptr)(ptrAt(p + uintptr(i)*ptrSize)) = syscall.NewCallback(m.Fn)
	}
	return p
}

// SinkVtblAddr returns the address of the shared sink vtable.
func SinkVtblAddr() uintptr { return sinkVtbl }

// LocalAllocator allocates fixed, zeroed memory with LocalAlloc: outside
// the Go heap, never moved, invisible to the collector.
type LocalAllocator struct{}

// Alloc implements Allocator.
func (LocalAllocator) Alloc(size uintptr) (uintptr, error) {
	p, err := windows.LocalAlloc(windows.LMEM_FIXED|windows.LMEM_ZEROINIT, uint32(size))
	if err != nil {
		return 0, fmt.Errorf("com: LocalAlloc(%d): %w", size, err)
	}
	return p, nil
}

// Free implements Allocator.
func (LocalAllocator) Free(addr uintptr) {
	if addr != 0 {
		_, _ = windows.LocalFree(windows.Handle(addr))
	}
}

// NewEventSink creates a sink object for cfg in LocalAlloc memory with the
// shared vtable; Mem defaults to RawMemory.
func NewEventSink(cfg SinkConfig) (uintptr, error) {
	if cfg.Mem == nil {
		cfg.Mem = RawMemory{}
	}
	return NewSink(LocalAllocator{}, sinkVtbl, cfg)
}
