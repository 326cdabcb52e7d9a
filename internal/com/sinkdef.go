package com

// This file has no build tags and no COM imports on purpose: the
// definition table and the callback functions are compiled on every OS, so
// a test everywhere can prove that each callback's Go signature has exactly
// the stdcall arity of its vtable slot. On windows/386 the callee pops its
// arguments, sized from the Go signature by syscall.NewCallback; one
// parameter too few or too many corrupts the caller's stack (the go-ole
// ConnectObject bug, MXACCESS.md §8.4).

// InterfaceMethod is one vtable slot of a COM interface as the Windows SDK
// declares it: the method name and its parameters, `this` first.
type InterfaceMethod struct {
	Name   string
	Params []string
}

// IDispatchDefinition is IUnknown + IDispatch in vtable order (oaidl.h,
// unknwn.h). Every parameter is 32 bits wide on windows/386 (WORD wFlags is
// widened to a stack slot), so a uintptr per parameter matches.
var IDispatchDefinition = []InterfaceMethod{
	{"QueryInterface", []string{"this", "riid", "ppvObject"}},
	{"AddRef", []string{"this"}},
	{"Release", []string{"this"}},
	{"GetTypeInfoCount", []string{"this", "pctinfo"}},
	{"GetTypeInfo", []string{"this", "iTInfo", "lcid", "ppTInfo"}},
	{"GetIDsOfNames", []string{"this", "riid", "rgszNames", "cNames", "lcid", "rgDispId"}},
	{"Invoke", []string{"this", "dispIdMember", "riid", "lcid", "wFlags", "pDispParams", "pVarResult", "pExcepInfo", "puArgErr"}},
}

// SinkMethod is one slot of the event sink's vtable: the Go function that
// syscall.NewCallback turns into the slot, and the arity it must have.
type SinkMethod struct {
	Name  string
	Arity int
	Fn    any
}

// SinkVtable lists the sink's callbacks in vtable order. The windows/386
// code creates one callback per entry, once, at package initialisation.
var SinkVtable = []SinkMethod{
	{"QueryInterface", 3, sinkQueryInterface},
	{"AddRef", 1, sinkAddRef},
	{"Release", 1, sinkRelease},
	{"GetTypeInfoCount", 2, sinkGetTypeInfoCount},
	{"GetTypeInfo", 4, sinkGetTypeInfo},
	{"GetIDsOfNames", 6, sinkGetIDsOfNames},
	{"Invoke", 9, sinkInvoke},
}

func sinkQueryInterface(this, riid, ppv uintptr) uintptr {
	return sinkQueryInterfaceImpl(this, riid, ppv)
}

func sinkAddRef(this uintptr) uintptr { return uintptr(sinkAddRefImpl(this)) }

func sinkRelease(this uintptr) uintptr { return uintptr(sinkReleaseImpl(this)) }

func sinkGetTypeInfoCount(this, pctinfo uintptr) uintptr {
	if pctinfo == 0 {
		return E_POINTER
	}
	*(*uint32)(ptrAt(pctinfo)) = 0
	return S_OK
}

func sinkGetTypeInfo(this, iTInfo, lcid, ppTInfo uintptr) uintptr {
	if ppTInfo != 0 {
		*(*uintptr)(ptrAt(ppTInfo)) = 0
	}
	return E_NOTIMPL
}

func sinkGetIDsOfNames(this, riid, rgszNames, cNames, lcid, rgDispID uintptr) uintptr {
	return E_NOTIMPL
}

func sinkInvoke(this, dispID, riid, lcid, wFlags, pDispParams, pVarResult, pExcepInfo, puArgErr uintptr) uintptr {
	return sinkInvokeImpl(this, int32(uint32(dispID)), pDispParams)
}
