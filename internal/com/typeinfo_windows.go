//go:build windows && 386

package com

import (
	"fmt"

	"github.com/mxgateway/mxgateway/internal/variant"
)

// ITypeInfo and ITypeLib vtable slots (oaidl.h). go-ole v1.3.0 wraps only
// GetTypeAttr, so the rest are called through their slots.
const (
	tiGetTypeAttr          = 3
	tiGetFuncDesc          = 5
	tiGetVarDesc           = 6
	tiGetNames             = 7
	tiGetRefTypeOfImplType = 8
	tiGetImplTypeFlags     = 9
	tiGetDocumentation     = 12
	tiGetRefTypeInfo       = 14
	tiGetContainingTypeLib = 18
	tiReleaseTypeAttr      = 19
	tiReleaseFuncDesc      = 20
	tiReleaseVarDesc       = 21

	tlGetTypeInfoOfGuid = 6
	tlGetLibAttr        = 7
	tlGetDocumentation  = 9
	tlReleaseTLibAttr   = 12

	memberIDNil = -1
)

// TypeInfo is an ITypeInfo reference; Release it when done.
type TypeInfo uintptr

// TypeLib is an ITypeLib reference; Release it when done.
type TypeLib uintptr

// withFrame runs fn with a small frame for out-parameters.
func withFrame(size uintptr, fn func(f *Frame) error) error {
	f, err := NewFrame(size)
	if err != nil {
		return err
	}
	defer f.Free()
	return fn(f)
}

// DispatchTypeInfo returns IDispatch::GetTypeInfo(0) of disp.
func DispatchTypeInfo(disp uintptr) (TypeInfo, error) {
	var ti TypeInfo
	err := withFrame(16, func(f *Frame) error {
		out := f.Take(ptrSize)
		if err := hrErr("IDispatch::GetTypeInfo", vcall(disp, slotGetTypeInfo, 0, localeUserDefault, out)); err != nil {
			return err
		}
		ti = TypeInfo(uptrAt(out))
		return nil
	})
	return ti, err
}

// Release releases the reference.
func (t TypeInfo) Release() { Release(uintptr(t)) }

// Attr returns the type's TYPEATTR.
func (t TypeInfo) Attr() (variant.TypeAttr, error) {
	var a variant.TypeAttr
	err := withFrame(16, func(f *Frame) error {
		out := f.Take(ptrSize)
		if err := hrErr("ITypeInfo::GetTypeAttr", vcall(uintptr(t), tiGetTypeAttr, out)); err != nil {
			return err
		}
		p := uptrAt(out)
		defer vcall(uintptr(t), tiReleaseTypeAttr, p)
		var err error
		a, err = variant.ReadTypeAttr(RawMemory{}, uint32(p))
		return err
	})
	return a, err
}

// FuncDesc returns function i's FUNCDESC.
func (t TypeInfo) FuncDesc(i int) (variant.FuncDesc, error) {
	var d variant.FuncDesc
	err := withFrame(16, func(f *Frame) error {
		out := f.Take(ptrSize)
		if err := hrErr("ITypeInfo::GetFuncDesc", vcall(uintptr(t), tiGetFuncDesc, uintptr(i), out)); err != nil {
			return err
		}
		p := uptrAt(out)
		defer vcall(uintptr(t), tiReleaseFuncDesc, p)
		var err error
		d, err = variant.ReadFuncDesc(RawMemory{}, uint32(p))
		return err
	})
	return d, err
}

// VarDesc returns variable i's VARDESC.
func (t TypeInfo) VarDesc(i int) (variant.VarDesc, error) {
	var d variant.VarDesc
	err := withFrame(16, func(f *Frame) error {
		out := f.Take(ptrSize)
		if err := hrErr("ITypeInfo::GetVarDesc", vcall(uintptr(t), tiGetVarDesc, uintptr(i), out)); err != nil {
			return err
		}
		p := uptrAt(out)
		defer vcall(uintptr(t), tiReleaseVarDesc, p)
		var err error
		d, err = variant.ReadVarDesc(RawMemory{}, uint32(p))
		return err
	})
	return d, err
}

// Names returns the member name followed by its parameter names.
func (t TypeInfo) Names(memid int32) ([]string, error) {
	const max = 32
	var names []string
	err := withFrame(max*ptrSize+16, func(f *Frame) error {
		arr := f.Take(max * ptrSize)
		count := f.Take(4)
		if err := hrErr("ITypeInfo::GetNames", vcall(uintptr(t), tiGetNames, uintptr(uint32(memid)), arr, max, count)); err != nil {
			return err
		}
		n := int(u32At(count))
		for i := 0; i < n && i < max; i++ {
			b := uptrAt(arr + uintptr(i)*ptrSize)
			s, _ := variant.ReadBSTR(RawMemory{}, uint32(b))
			FreeBSTR(b)
			names = append(names, s)
		}
		return nil
	})
	return names, err
}

// Name returns the type's own name (GetDocumentation(MEMBERID_NIL)).
func (t TypeInfo) Name() (string, error) {
	var name string
	err := withFrame(16, func(f *Frame) error {
		out := f.Take(ptrSize)
		m := int32(memberIDNil)
		if err := hrErr("ITypeInfo::GetDocumentation", vcall(uintptr(t), tiGetDocumentation, uintptr(uint32(m)), out, 0, 0, 0)); err != nil {
			return err
		}
		b := uptrAt(out)
		name, _ = variant.ReadBSTR(RawMemory{}, uint32(b))
		FreeBSTR(b)
		return nil
	})
	return name, err
}

// ImplType returns implemented type i and its IMPLTYPEFLAGS.
func (t TypeInfo) ImplType(i int) (TypeInfo, int32, error) {
	var ref TypeInfo
	var flags int32
	err := withFrame(32, func(f *Frame) error {
		href := f.Take(4)
		if err := hrErr("ITypeInfo::GetRefTypeOfImplType", vcall(uintptr(t), tiGetRefTypeOfImplType, uintptr(i), href)); err != nil {
			return err
		}
		fl := f.Take(4)
		if err := hrErr("ITypeInfo::GetImplTypeFlags", vcall(uintptr(t), tiGetImplTypeFlags, uintptr(i), fl)); err == nil {
			flags = int32(u32At(fl))
		}
		var err error
		ref, err = t.RefTypeInfo(u32At(href))
		return err
	})
	return ref, flags, err
}

// RefTypeInfo resolves an HREFTYPE.
func (t TypeInfo) RefTypeInfo(href uint32) (TypeInfo, error) {
	var ti TypeInfo
	err := withFrame(16, func(f *Frame) error {
		out := f.Take(ptrSize)
		if err := hrErr("ITypeInfo::GetRefTypeInfo", vcall(uintptr(t), tiGetRefTypeInfo, uintptr(href), out)); err != nil {
			return err
		}
		ti = TypeInfo(uptrAt(out))
		return nil
	})
	return ti, err
}

// TypeLib returns the containing type library.
func (t TypeInfo) TypeLib() (TypeLib, error) {
	var tl TypeLib
	err := withFrame(16, func(f *Frame) error {
		out := f.Take(ptrSize)
		idx := f.Take(4)
		if err := hrErr("ITypeInfo::GetContainingTypeLib", vcall(uintptr(t), tiGetContainingTypeLib, out, idx)); err != nil {
			return err
		}
		tl = TypeLib(uptrAt(out))
		return nil
	})
	return tl, err
}

// Member is one function of a type with its names and descriptor.
type Member struct {
	Name       string
	ParamNames []string
	Desc       variant.FuncDesc
}

// Members lists the functions of t and, recursively, of the interfaces it
// inherits, first declaration of each name winning.
func (t TypeInfo) Members() ([]Member, error) {
	seen := map[string]bool{}
	var out []Member
	var walk func(ti TypeInfo, depth int) error
	walk = func(ti TypeInfo, depth int) error {
		a, err := ti.Attr()
		if err != nil {
			return err
		}
		for i := 0; i < int(a.Funcs); i++ {
			d, err := ti.FuncDesc(i)
			if err != nil {
				return fmt.Errorf("function %d: %w", i, err)
			}
			names, err := ti.Names(d.MemID)
			if err != nil || len(names) == 0 || seen[names[0]] {
				continue
			}
			seen[names[0]] = true
			out = append(out, Member{Name: names[0], ParamNames: names[1:], Desc: d})
		}
		if depth >= 8 {
			return nil
		}
		for i := 0; i < int(a.ImplTypes); i++ {
			base, _, err := ti.ImplType(i)
			if err != nil {
				continue
			}
			err = walk(base, depth+1)
			base.Release()
			if err != nil {
				return err
			}
		}
		return nil
	}
	return out, walk(t, 0)
}

// RecordFields describes a record type: its size and its fields.
func (t TypeInfo) RecordFields() (uint32, []variant.RecordField, error) {
	a, err := t.Attr()
	if err != nil {
		return 0, nil, err
	}
	if a.TypeKind != variant.TKIND_RECORD {
		return 0, nil, fmt.Errorf("com: type kind %d is not a record", a.TypeKind)
	}
	var fields []variant.RecordField
	for i := 0; i < int(a.Vars); i++ {
		d, err := t.VarDesc(i)
		if err != nil {
			return 0, nil, err
		}
		names, err := t.Names(d.MemID)
		if err != nil || len(names) == 0 {
			return 0, nil, fmt.Errorf("com: record field %d has no name: %v", i, err)
		}
		vt := d.Type.VT
		if vt == variant.VT_USERDEFINED {
			// An enum field: resolve the alias kind to tell it from a record.
			if ref, err := t.RefTypeInfo(d.Type.HRef); err == nil {
				if ra, err := ref.Attr(); err == nil && ra.TypeKind == variant.TKIND_ENUM {
					vt = variant.VT_I4
				}
				ref.Release()
			}
		}
		fields = append(fields, variant.RecordField{Name: names[0], Offset: d.Offset, VT: vt})
	}
	return a.SizeInstance, fields, nil
}

// Release releases the reference.
func (l TypeLib) Release() { Release(uintptr(l)) }

// TypeInfoOfGUID returns the type with the given GUID.
func (l TypeLib) TypeInfoOfGUID(g GUID) (TypeInfo, error) {
	var ti TypeInfo
	err := withFrame(32, func(f *Frame) error {
		gp := f.Take(16)
		b := g.Bytes()
		putBytes(gp, b[:])
		out := f.Take(ptrSize)
		if err := hrErr("ITypeLib::GetTypeInfoOfGuid("+g.String()+")", vcall(uintptr(l), tlGetTypeInfoOfGuid, gp, out)); err != nil {
			return err
		}
		ti = TypeInfo(uptrAt(out))
		return nil
	})
	return ti, err
}

// Version returns "<name> <major>.<minor> <guid>" of the library.
func (l TypeLib) Version() (string, error) {
	var s string
	err := withFrame(16, func(f *Frame) error {
		out := f.Take(ptrSize)
		if err := hrErr("ITypeLib::GetLibAttr", vcall(uintptr(l), tlGetLibAttr, out)); err != nil {
			return err
		}
		p := uptrAt(out)
		defer vcall(uintptr(l), tlReleaseTLibAttr, p)
		// TLIBATTR: guid@0, lcid@16, syskind@20, wMajorVerNum@24,
		// wMinorVerNum@26, wLibFlags@28.
		b, err := RawMemory{}.Read(uint32(p), 30)
		if err != nil {
			return err
		}
		g := GUIDFromBytes(b[0:16])
		major := uint16(b[24]) | uint16(b[25])<<8
		minor := uint16(b[26]) | uint16(b[27])<<8
		name := ""
		nameOut := f.Take(ptrSize)
		if vcall(uintptr(l), tlGetDocumentation, uintptr(0xFFFFFFFF), nameOut, 0, 0, 0) == S_OK {
			nb := uptrAt(nameOut)
			name, _ = variant.ReadBSTR(RawMemory{}, uint32(nb))
			FreeBSTR(nb)
		}
		s = fmt.Sprintf("%s %d.%d %s", name, major, minor, g)
		return nil
	})
	return s, err
}
