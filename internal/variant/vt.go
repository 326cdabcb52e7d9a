package variant

import "github.com/mxgateway/mxgateway/api/mxgateway/v1/mxtypes"

// VT is an OLE Automation VARTYPE; its home is mxtypes, shared with the
// SDK.
type VT = mxtypes.VT

// VARTYPE values, from mxtypes.
const (
	VT_EMPTY       = mxtypes.VT_EMPTY
	VT_NULL        = mxtypes.VT_NULL
	VT_I2          = mxtypes.VT_I2
	VT_I4          = mxtypes.VT_I4
	VT_R4          = mxtypes.VT_R4
	VT_R8          = mxtypes.VT_R8
	VT_CY          = mxtypes.VT_CY
	VT_DATE        = mxtypes.VT_DATE
	VT_BSTR        = mxtypes.VT_BSTR
	VT_DISPATCH    = mxtypes.VT_DISPATCH
	VT_ERROR       = mxtypes.VT_ERROR
	VT_BOOL        = mxtypes.VT_BOOL
	VT_VARIANT     = mxtypes.VT_VARIANT
	VT_UNKNOWN     = mxtypes.VT_UNKNOWN
	VT_DECIMAL     = mxtypes.VT_DECIMAL
	VT_I1          = mxtypes.VT_I1
	VT_UI1         = mxtypes.VT_UI1
	VT_UI2         = mxtypes.VT_UI2
	VT_UI4         = mxtypes.VT_UI4
	VT_I8          = mxtypes.VT_I8
	VT_UI8         = mxtypes.VT_UI8
	VT_INT         = mxtypes.VT_INT
	VT_UINT        = mxtypes.VT_UINT
	VT_VOID        = mxtypes.VT_VOID
	VT_HRESULT     = mxtypes.VT_HRESULT
	VT_PTR         = mxtypes.VT_PTR
	VT_SAFEARRAY   = mxtypes.VT_SAFEARRAY
	VT_CARRAY      = mxtypes.VT_CARRAY
	VT_USERDEFINED = mxtypes.VT_USERDEFINED
	VT_LPSTR       = mxtypes.VT_LPSTR
	VT_LPWSTR      = mxtypes.VT_LPWSTR
	VT_RECORD      = mxtypes.VT_RECORD
	VT_FILETIME    = mxtypes.VT_FILETIME
	VT_ARRAY       = mxtypes.VT_ARRAY
	VT_BYREF       = mxtypes.VT_BYREF
	VT_TYPEMASK    = mxtypes.VT_TYPEMASK
)

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
