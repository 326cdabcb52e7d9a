package variant

import (
	"fmt"
	"strings"
)

// VT is an OLE Automation VARTYPE.
type VT uint16

// VARTYPE values (wtypes.h).
const (
	VT_EMPTY       VT = 0
	VT_NULL        VT = 1
	VT_I2          VT = 2
	VT_I4          VT = 3
	VT_R4          VT = 4
	VT_R8          VT = 5
	VT_CY          VT = 6
	VT_DATE        VT = 7
	VT_BSTR        VT = 8
	VT_DISPATCH    VT = 9
	VT_ERROR       VT = 10
	VT_BOOL        VT = 11
	VT_VARIANT     VT = 12
	VT_UNKNOWN     VT = 13
	VT_DECIMAL     VT = 14
	VT_I1          VT = 16
	VT_UI1         VT = 17
	VT_UI2         VT = 18
	VT_UI4         VT = 19
	VT_I8          VT = 20
	VT_UI8         VT = 21
	VT_INT         VT = 22
	VT_UINT        VT = 23
	VT_VOID        VT = 24
	VT_HRESULT     VT = 25
	VT_PTR         VT = 26
	VT_SAFEARRAY   VT = 27
	VT_CARRAY      VT = 28
	VT_USERDEFINED VT = 29
	VT_LPSTR       VT = 30
	VT_LPWSTR      VT = 31
	VT_RECORD      VT = 36
	VT_FILETIME    VT = 64
	VT_ARRAY       VT = 0x2000
	VT_BYREF       VT = 0x4000
	VT_TYPEMASK    VT = 0x0FFF
)

var vtNames = map[VT]string{
	VT_EMPTY: "VT_EMPTY", VT_NULL: "VT_NULL", VT_I2: "VT_I2", VT_I4: "VT_I4",
	VT_R4: "VT_R4", VT_R8: "VT_R8", VT_CY: "VT_CY", VT_DATE: "VT_DATE",
	VT_BSTR: "VT_BSTR", VT_DISPATCH: "VT_DISPATCH", VT_ERROR: "VT_ERROR",
	VT_BOOL: "VT_BOOL", VT_VARIANT: "VT_VARIANT", VT_UNKNOWN: "VT_UNKNOWN",
	VT_DECIMAL: "VT_DECIMAL", VT_I1: "VT_I1", VT_UI1: "VT_UI1", VT_UI2: "VT_UI2",
	VT_UI4: "VT_UI4", VT_I8: "VT_I8", VT_UI8: "VT_UI8", VT_INT: "VT_INT",
	VT_UINT: "VT_UINT", VT_VOID: "VT_VOID", VT_HRESULT: "VT_HRESULT",
	VT_PTR: "VT_PTR", VT_SAFEARRAY: "VT_SAFEARRAY", VT_CARRAY: "VT_CARRAY",
	VT_USERDEFINED: "VT_USERDEFINED", VT_LPSTR: "VT_LPSTR", VT_LPWSTR: "VT_LPWSTR",
	VT_RECORD: "VT_RECORD", VT_FILETIME: "VT_FILETIME",
}

// Base returns vt without the VT_ARRAY and VT_BYREF modifiers.
func (vt VT) Base() VT { return vt & VT_TYPEMASK }

// IsArray reports whether VT_ARRAY is set.
func (vt VT) IsArray() bool { return vt&VT_ARRAY != 0 }

// IsByRef reports whether VT_BYREF is set.
func (vt VT) IsByRef() bool { return vt&VT_BYREF != 0 }

// String returns the wtypes.h spelling, e.g. "VT_BYREF|VT_ARRAY|VT_RECORD".
func (vt VT) String() string {
	var parts []string
	if vt.IsByRef() {
		parts = append(parts, "VT_BYREF")
	}
	if vt.IsArray() {
		parts = append(parts, "VT_ARRAY")
	}
	if vt&0x1000 != 0 {
		parts = append(parts, "VT_VECTOR")
	}
	name, ok := vtNames[vt.Base()]
	if !ok {
		name = fmt.Sprintf("VT_0x%X", uint16(vt.Base()))
	}
	parts = append(parts, name)
	return strings.Join(parts, "|")
}

// elemSize is the in-memory size of one scalar of type vt on windows/386, or
// 0 when vt has no fixed scalar size.
func elemSize(vt VT) uint32 {
	switch vt {
	case VT_I1, VT_UI1:
		return 1
	case VT_I2, VT_UI2, VT_BOOL:
		return 2
	case VT_I4, VT_UI4, VT_INT, VT_UINT, VT_R4, VT_ERROR, VT_HRESULT:
		return 4
	case VT_BSTR, VT_DISPATCH, VT_UNKNOWN, VT_LPSTR, VT_LPWSTR:
		return PtrSize
	case VT_I8, VT_UI8, VT_R8, VT_CY, VT_DATE, VT_FILETIME:
		return 8
	case VT_VARIANT:
		return VariantSize
	case VT_DECIMAL:
		return 16
	}
	return 0
}
