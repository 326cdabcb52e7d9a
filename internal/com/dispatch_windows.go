//go:build windows && 386

package com

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"syscall"
	"unicode/utf16"
	"unsafe"

	"github.com/mxgateway/mxgateway/internal/variant"
)

// Dispatch flags and locale of IDispatch::Invoke.
const (
	dispatchMethod    = 0x1
	localeUserDefault = 0x0400
)

// IDispatch vtable slots (unknwn.h, oaidl.h).
const (
	slotQueryInterface   = 0
	slotAddRef           = 1
	slotRelease          = 2
	slotGetTypeInfoCount = 3
	slotGetTypeInfo      = 4
	slotGetIDsOfNames    = 5
	slotInvoke           = 6
)

// vcall calls slot of obj's vtable with obj as `this`. Pointer arguments
// must be foreign memory (see Frame) for any call that can re-enter Go.
func vcall(obj uintptr, slot int, args ...uintptr) uintptr {
	vtbl := *(*uintptr)(ptrAt(obj))
	fn := *(*uintptr)(ptrAt(vtbl + uintptr(slot)*ptrSize))
	all := make([]uintptr, 0, len(args)+1)
	all = append(all, obj)
	all = append(all, args...)
	r, _, _ := syscall.SyscallN(fn, all...)
	return r
}

// HRESULTError is a failed HRESULT from a COM call.
type HRESULTError struct {
	Op string
	HR uint32
}

// Error implements error.
func (e *HRESULTError) Error() string { return fmt.Sprintf("com: %s: HRESULT 0x%08X", e.Op, e.HR) }

func hrErr(op string, hr uintptr) error {
	if int32(uint32(hr)) >= 0 {
		return nil
	}
	return &HRESULTError{Op: op, HR: uint32(hr)}
}

// Release calls IUnknown::Release on obj (no-op for 0).
func Release(obj uintptr) {
	if obj != 0 {
		vcall(obj, slotRelease)
	}
}

// AddRef calls IUnknown::AddRef on obj.
func AddRef(obj uintptr) {
	if obj != 0 {
		vcall(obj, slotAddRef)
	}
}

// NewFrame allocates a zeroed frame of size bytes.
func NewFrame(size uintptr) (*Frame, error) {
	p, err := LocalAllocator{}.Alloc(size)
	if err != nil {
		return nil, err
	}
	return &Frame{base: p, size: size}, nil
}

// Free releases the frame.
func (f *Frame) Free() { LocalAllocator{}.Free(f.base) }

func putBytes(addr uintptr, b []byte) {
	copy(unsafe.Slice((*byte)(ptrAt(addr)), len(b)), b)
}

func u32At(addr uintptr) uint32 { return *(*uint32)(ptrAt(addr)) }

func uptrAt(addr uintptr) uintptr { return *(*uintptr)(ptrAt(addr)) }

// AllocBSTR allocates a BSTR holding s; free it with FreeBSTR unless
// ownership passes to COM.
func AllocBSTR(s string) (uintptr, error) {
	u := utf16.Encode([]rune(s))
	var p *uint16
	if len(u) > 0 {
		p = &u[0]
	}
	b := sysAllocStringLen(p, uint32(len(u)))
	runtime.KeepAlive(u)
	if b == 0 {
		return 0, errors.New("com: SysAllocStringLen failed")
	}
	return b, nil
}

// FreeBSTR frees a BSTR this process allocated.
func FreeBSTR(b uintptr) {
	if b != 0 {
		sysFreeString(b)
	}
}

// ClearVariant calls VariantClear on the VARIANT at addr, freeing what it
// owns (BSTR, SAFEARRAY, interface reference).
func ClearVariant(addr uintptr) { _ = variantClear(addr) }

// writeVariant stores v into the VARIANT at addr, allocating BSTRs and
// SAFEARRAYs that the VARIANT then owns (ClearVariant frees them).
func writeVariant(addr uintptr, v variant.Value) error {
	var ptr uint32
	switch {
	case v.VT.IsByRef():
		return fmt.Errorf("com: cannot write %s as an in-argument", v.VT)
	case v.VT == variant.VT_BSTR:
		b, err := AllocBSTR(v.Str)
		if err != nil {
			return err
		}
		ptr = uint32(b)
	case v.VT.IsArray():
		if v.Array == nil {
			return fmt.Errorf("com: %s without elements", v.VT)
		}
		sa, err := createSafeArray(v)
		if err != nil {
			return err
		}
		ptr = uint32(sa)
	}
	// VariantBytes cannot fail for BSTR and array types, so nothing
	// allocated above can leak here.
	raw, err := variant.VariantBytes(v, ptr)
	if err != nil {
		return err
	}
	putBytes(addr, raw[:])
	return nil
}

// createSafeArray builds a one-dimensional SAFEARRAY (lower bound 0) for
// an array value. BSTR and VARIANT elements go through SafeArrayPutElement,
// which copies them, so the temporaries are freed here; scalar elements
// are copied in packed form.
func createSafeArray(v variant.Value) (uintptr, error) {
	a := v.Array
	elemVT := v.VT.Base()
	sa := safeArrayCreateVector(uint16(elemVT), 0, uint32(len(a.Elems)))
	if sa == 0 {
		return 0, fmt.Errorf("com: SafeArrayCreateVector(%s, %d) failed", elemVT, len(a.Elems))
	}
	fail := func(err error) (uintptr, error) {
		_ = safeArrayDestroy(sa)
		return 0, err
	}
	switch elemVT {
	case variant.VT_BSTR, variant.VT_VARIANT:
		f, err := NewFrame(16 + variant.VariantSize)
		if err != nil {
			return fail(err)
		}
		defer f.Free()
		idx := f.Take(4)
		tmp := f.Take(variant.VariantSize)
		for i, e := range a.Elems {
			*(*int32)(ptrAt(idx)) = int32(i)
			if elemVT == variant.VT_BSTR {
				b, err := AllocBSTR(e.Str)
				if err != nil {
					return fail(err)
				}
				err = hrErr("SafeArrayPutElement", uintptrOf(safeArrayPutElement(sa, (*int32)(ptrAt(idx)), b)))
				FreeBSTR(b)
				if err != nil {
					return fail(err)
				}
				continue
			}
			if err := writeVariant(tmp, e); err != nil {
				return fail(err)
			}
			err := hrErr("SafeArrayPutElement", uintptrOf(safeArrayPutElement(sa, (*int32)(ptrAt(idx)), tmp)))
			ClearVariant(tmp)
			if err != nil {
				return fail(err)
			}
		}
	default:
		data, err := variant.ElementBytes(a)
		if err != nil {
			return fail(err)
		}
		if len(data) > 0 {
			f, err := NewFrame(8)
			if err != nil {
				return fail(err)
			}
			defer f.Free()
			slot := f.Take(ptrSize)
			if err := hrErr("SafeArrayAccessData", uintptrOf(safeArrayAccessData(sa, (*uintptr)(ptrAt(slot))))); err != nil {
				return fail(err)
			}
			putBytes(uptrAt(slot), data)
			_ = safeArrayUnaccessData(sa)
		}
	}
	return sa, nil
}

// uintptrOf turns a generated binding's HRESULT error back into the code.
func uintptrOf(err error) uintptr {
	if err == nil {
		return 0
	}
	var en syscall.Errno
	if errors.As(err, &en) {
		return uintptr(en)
	}
	return E_FAIL
}

// InvokeResult is the outcome of Invoke.
type InvokeResult struct {
	HRESULT uint32
	Ret     variant.Value
	Outs    []variant.Value
	Excep   *variant.ExcepInfo
	ArgErr  uint32
}

// Invoke calls IDispatch::Invoke(dispid, DISPATCH_METHOD) on disp with the
// in-arguments args (declaration order) and trailing out-parameters of the
// types outs, passed VT_BYREF to slots in foreign memory. Every VARIANT is
// built here, so every VT and lifetime is ours (none of go-ole's argument
// conversions is used). It must run on the STA.
func Invoke(disp uintptr, dispid int32, args []variant.Value, outs []variant.VT) (InvokeResult, error) {
	n := len(args) + len(outs)
	size := uintptr(16 + // IID_NULL
		variant.DispParamsSize + variant.VariantSize /*result*/ + variant.ExcepInfoSize + 8 /*argErr*/ +
		n*variant.VariantSize + len(outs)*variant.VariantSize + 64)
	f, err := NewFrame(size)
	if err != nil {
		return InvokeResult{}, err
	}
	defer f.Free()
	iidNull := f.Take(16)
	dp := f.Take(variant.DispParamsSize)
	result := f.Take(variant.VariantSize)
	excep := f.Take(variant.ExcepInfoSize)
	argErr := f.Take(4)
	var rgvarg uintptr
	if n > 0 {
		rgvarg = f.Take(uintptr(n) * variant.VariantSize)
	}
	slots := make([]uintptr, len(outs))
	for i := range outs {
		slots[i] = f.Take(variant.VariantSize)
	}
	// rgvarg[0] is the last argument.
	argAddr := func(i int) uintptr { return rgvarg + uintptr(n-1-i)*variant.VariantSize }
	written := 0
	defer func() {
		for i := 0; i < written; i++ {
			ClearVariant(argAddr(i))
		}
	}()
	for i, a := range args {
		if err := writeVariant(argAddr(i), a); err != nil {
			return InvokeResult{}, fmt.Errorf("com: argument %d: %w", i, err)
		}
		written++
	}
	for i, vt := range outs {
		if vt.IsByRef() || vt.IsArray() {
			return InvokeResult{}, fmt.Errorf("com: unsupported out-parameter type %s", vt)
		}
		// The slot is a zeroed VARIANT (VT_EMPTY) for VT_VARIANT outs, or
		// zeroed storage for the scalar / BSTR the callee writes.
		raw := variant.VariantRaw(variant.VT_BYREF|vt, uint64(slots[i]))
		putBytes(argAddr(len(args)+i), raw)
	}
	var dpb [variant.DispParamsSize]byte
	binary.LittleEndian.PutUint32(dpb[0:], uint32(rgvarg))
	binary.LittleEndian.PutUint32(dpb[8:], uint32(n))
	putBytes(dp, dpb[:])

	hr := vcall(disp, slotInvoke, uintptr(dispid), iidNull, localeUserDefault, dispatchMethod,
		dp, result, excep, argErr)
	runtime.KeepAlive(args)

	res := InvokeResult{HRESULT: uint32(hr), ArgErr: u32At(argErr)}
	mem := RawMemory{}
	if ret, err := variant.ReadVariant(mem, uint32(result)); err == nil {
		res.Ret = ret
	} else {
		res.Ret = variant.Value{}
	}
	ClearVariant(result)
	for i, vt := range outs {
		v, err := variant.ReadVariant(mem, uint32(argAddr(len(args)+i)))
		if err != nil {
			return res, fmt.Errorf("com: out-parameter %d: %w", i, err)
		}
		res.Outs = append(res.Outs, v)
		switch vt {
		case variant.VT_VARIANT:
			ClearVariant(slots[i])
		case variant.VT_BSTR:
			FreeBSTR(uptrAt(slots[i]))
		}
	}
	if uint32(hr) == DISP_E_EXCEPTION {
		if fill := uptrAt(excep + 24); fill != 0 {
			syscall.SyscallN(fill, excep)
		}
		if e, err := variant.ReadExcepInfo(mem, uint32(excep)); err == nil {
			res.Excep = &e
		}
		// EXCEPINFO's BSTRs belong to the caller: free them.
		FreeBSTR(uptrAt(excep + 4))
		FreeBSTR(uptrAt(excep + 8))
		FreeBSTR(uptrAt(excep + 12))
	}
	return res, nil
}

// GetIDOfName resolves one member name on disp (IDispatch::GetIDsOfNames).
func GetIDOfName(disp uintptr, name string) (int32, error) {
	u := utf16.Encode([]rune(name + "\x00"))
	parts := idsOfNameParts(len(u))
	f, err := NewFrame(FrameSize(parts...))
	if err != nil {
		return 0, err
	}
	defer f.Free()
	str := f.Take(parts[0])
	for i, c := range u {
		*(*uint16)(ptrAt(str + uintptr(i)*2)) = c
	}
	names := f.Take(parts[1])
	*(*uintptr)(ptrAt(names)) = str
	id := f.Take(parts[2])
	iidNull := f.Take(parts[3])
	hr := vcall(disp, slotGetIDsOfNames, iidNull, names, 1, localeUserDefault, id)
	if err := hrErr("GetIDsOfNames("+name+")", hr); err != nil {
		return 0, err
	}
	return int32(u32At(id)), nil
}

// QueryInterface asks obj for iid and returns the new reference.
func QueryInterface(obj uintptr, iid GUID) (uintptr, error) {
	f, err := NewFrame(32)
	if err != nil {
		return 0, err
	}
	defer f.Free()
	g := f.Take(16)
	b := iid.Bytes()
	putBytes(g, b[:])
	out := f.Take(ptrSize)
	if err := hrErr("QueryInterface("+iid.String()+")", vcall(obj, slotQueryInterface, g, out)); err != nil {
		return 0, err
	}
	return uptrAt(out), nil
}
