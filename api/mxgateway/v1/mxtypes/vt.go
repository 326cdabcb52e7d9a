package mxtypes

import (
	"fmt"
	"strings"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
)

// VT is an OLE Automation VARTYPE, as MxValue.variant_type carries it.
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

// VariantTypeOf returns the VARTYPE a scalar of MXAccess data type dt
// travels as (MXACCESS.md §5.3). Types whose encoding is unverified use the
// simulator's choice (MxElapsedTime as VT_R8 seconds, the enums 9-12 as
// VT_I4, MxQualifiedEnum as VT_BSTR). MxNoData and MxQualifiedStruct have no
// value: VT_EMPTY.
func VariantTypeOf(dt mxgatewayv1.MxDataType) VT {
	switch dt {
	case mxgatewayv1.MxDataType_MX_DATA_TYPE_BOOLEAN:
		return VT_BOOL
	case mxgatewayv1.MxDataType_MX_DATA_TYPE_INTEGER,
		mxgatewayv1.MxDataType_MX_DATA_TYPE_STATUS,
		mxgatewayv1.MxDataType_MX_DATA_TYPE_DATA_TYPE_ENUM,
		mxgatewayv1.MxDataType_MX_DATA_TYPE_SECURITY_CLASSIFICATION_ENUM,
		mxgatewayv1.MxDataType_MX_DATA_TYPE_DATA_QUALITY:
		return VT_I4
	case mxgatewayv1.MxDataType_MX_DATA_TYPE_FLOAT:
		return VT_R4
	case mxgatewayv1.MxDataType_MX_DATA_TYPE_DOUBLE, mxgatewayv1.MxDataType_MX_DATA_TYPE_ELAPSED_TIME:
		return VT_R8
	case mxgatewayv1.MxDataType_MX_DATA_TYPE_STRING,
		mxgatewayv1.MxDataType_MX_DATA_TYPE_REFERENCE,
		mxgatewayv1.MxDataType_MX_DATA_TYPE_QUALIFIED_ENUM,
		mxgatewayv1.MxDataType_MX_DATA_TYPE_INTERNATIONALIZED_STRING,
		mxgatewayv1.MxDataType_MX_DATA_TYPE_BIG_STRING:
		return VT_BSTR
	case mxgatewayv1.MxDataType_MX_DATA_TYPE_TIME:
		return VT_DATE
	default:
		return VT_EMPTY
	}
}

// DataTypeOf infers the MxDataType a VARIANT type stands for. The VARIANT
// does not carry the MXAccess type, so types that share a VARIANT type
// (MxString, MxReferenceType, MxBigString, ...; MxInteger and the enum
// types; MxDouble and, as the simulator carries it, MxElapsedTime) map to
// the plain one. [unverified] assumption: MXAccess sends each type as
// MXACCESS.md §5.3 lists it.
func DataTypeOf(vt VT) mxgatewayv1.MxDataType {
	switch vt.Base() {
	case VT_EMPTY, VT_NULL:
		return mxgatewayv1.MxDataType_MX_DATA_TYPE_NO_DATA
	case VT_BOOL:
		return mxgatewayv1.MxDataType_MX_DATA_TYPE_BOOLEAN
	case VT_I1, VT_UI1, VT_I2, VT_UI2, VT_I4, VT_UI4, VT_INT, VT_UINT, VT_I8, VT_UI8:
		return mxgatewayv1.MxDataType_MX_DATA_TYPE_INTEGER
	case VT_R4:
		return mxgatewayv1.MxDataType_MX_DATA_TYPE_FLOAT
	case VT_R8, VT_CY, VT_DECIMAL:
		return mxgatewayv1.MxDataType_MX_DATA_TYPE_DOUBLE
	case VT_BSTR:
		return mxgatewayv1.MxDataType_MX_DATA_TYPE_STRING
	case VT_DATE, VT_FILETIME:
		return mxgatewayv1.MxDataType_MX_DATA_TYPE_TIME
	}
	return mxgatewayv1.MxDataType_MX_DATA_TYPE_UNKNOWN
}

var dataTypeNames = map[mxgatewayv1.MxDataType]string{
	mxgatewayv1.MxDataType_MX_DATA_TYPE_NO_DATA:                      "MxNoData",
	mxgatewayv1.MxDataType_MX_DATA_TYPE_BOOLEAN:                      "MxBoolean",
	mxgatewayv1.MxDataType_MX_DATA_TYPE_INTEGER:                      "MxInteger",
	mxgatewayv1.MxDataType_MX_DATA_TYPE_FLOAT:                        "MxFloat",
	mxgatewayv1.MxDataType_MX_DATA_TYPE_DOUBLE:                       "MxDouble",
	mxgatewayv1.MxDataType_MX_DATA_TYPE_STRING:                       "MxString",
	mxgatewayv1.MxDataType_MX_DATA_TYPE_TIME:                         "MxTime",
	mxgatewayv1.MxDataType_MX_DATA_TYPE_ELAPSED_TIME:                 "MxElapsedTime",
	mxgatewayv1.MxDataType_MX_DATA_TYPE_REFERENCE:                    "MxReferenceType",
	mxgatewayv1.MxDataType_MX_DATA_TYPE_STATUS:                       "MxStatusType",
	mxgatewayv1.MxDataType_MX_DATA_TYPE_DATA_TYPE_ENUM:               "MxDataTypeEnum",
	mxgatewayv1.MxDataType_MX_DATA_TYPE_SECURITY_CLASSIFICATION_ENUM: "MxSecurityClassificationEnum",
	mxgatewayv1.MxDataType_MX_DATA_TYPE_DATA_QUALITY:                 "MxDataQualityType",
	mxgatewayv1.MxDataType_MX_DATA_TYPE_QUALIFIED_ENUM:               "MxQualifiedEnum",
	mxgatewayv1.MxDataType_MX_DATA_TYPE_QUALIFIED_STRUCT:             "MxQualifiedStruct",
	mxgatewayv1.MxDataType_MX_DATA_TYPE_INTERNATIONALIZED_STRING:     "MxInternationalizedString",
	mxgatewayv1.MxDataType_MX_DATA_TYPE_BIG_STRING:                   "MxBigString",
	mxgatewayv1.MxDataType_MX_DATA_TYPE_UNKNOWN:                      "MxDataTypeUnknown",
}

// DataTypeName returns MXAccess's own name of a data type ("MxInteger"),
// or "MxDataType(n)" for a number this build does not know.
func DataTypeName(dt mxgatewayv1.MxDataType) string {
	if n, ok := dataTypeNames[dt]; ok {
		return n
	}
	return fmt.Sprintf("MxDataType(%d)", int32(dt))
}
