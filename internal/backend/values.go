package backend

import (
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// VARTYPE codes used by MXAccess values (MXACCESS.md §5.3).
const (
	VT_EMPTY uint32 = 0
	VT_I2    uint32 = 2
	VT_I4    uint32 = 3
	VT_R4    uint32 = 4
	VT_R8    uint32 = 5
	VT_DATE  uint32 = 7
	VT_BSTR  uint32 = 8
	VT_BOOL  uint32 = 11
	VT_ARRAY uint32 = 0x2000
)

// VariantTypeOf returns the VARTYPE a scalar of MXAccess data type dt
// travels as. Types whose encoding is unverified use the simulator's choice
// (MxElapsedTime as VT_R8 seconds, the enums 9-12 as VT_I4, MxQualifiedEnum
// as VT_BSTR). MxNoData and MxQualifiedStruct have no value: VT_EMPTY.
func VariantTypeOf(dt mxgatewayv1.MxDataType) uint32 {
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

// TruncateTime returns t in UTC truncated to millisecond precision, the
// precision MXAccess timestamps carry.
func TruncateTime(t time.Time) time.Time {
	return t.UTC().Truncate(time.Millisecond)
}

// Timestamp returns t as a protobuf timestamp, UTC, millisecond precision.
func Timestamp(t time.Time) *timestamppb.Timestamp {
	return timestamppb.New(TruncateTime(t))
}

// NullValue returns a VT_EMPTY value of data type dt (MxNoData for a value
// that never resolved).
func NullValue(dt mxgatewayv1.MxDataType) *mxgatewayv1.MxValue {
	return &mxgatewayv1.MxValue{DataType: dt, VariantType: VT_EMPTY, IsNull: true}
}

// BoolValue returns an MxBoolean (VT_BOOL).
func BoolValue(v bool) *mxgatewayv1.MxValue {
	return &mxgatewayv1.MxValue{
		DataType:    mxgatewayv1.MxDataType_MX_DATA_TYPE_BOOLEAN,
		VariantType: VT_BOOL,
		Kind:        &mxgatewayv1.MxValue_BoolValue{BoolValue: v},
	}
}

// IntegerValue returns an MxInteger (VT_I4).
func IntegerValue(v int32) *mxgatewayv1.MxValue {
	return Int32Value(mxgatewayv1.MxDataType_MX_DATA_TYPE_INTEGER, v)
}

// Int32Value returns a VT_I4 value of data type dt (MxInteger or one of the
// enumeration types 9-12).
func Int32Value(dt mxgatewayv1.MxDataType, v int32) *mxgatewayv1.MxValue {
	return &mxgatewayv1.MxValue{
		DataType:    dt,
		VariantType: VT_I4,
		Kind:        &mxgatewayv1.MxValue_Int32Value{Int32Value: v},
	}
}

// FloatValue returns an MxFloat (VT_R4).
func FloatValue(v float32) *mxgatewayv1.MxValue {
	return &mxgatewayv1.MxValue{
		DataType:    mxgatewayv1.MxDataType_MX_DATA_TYPE_FLOAT,
		VariantType: VT_R4,
		Kind:        &mxgatewayv1.MxValue_FloatValue{FloatValue: v},
	}
}

// DoubleValue returns an MxDouble (VT_R8).
func DoubleValue(v float64) *mxgatewayv1.MxValue {
	return &mxgatewayv1.MxValue{
		DataType:    mxgatewayv1.MxDataType_MX_DATA_TYPE_DOUBLE,
		VariantType: VT_R8,
		Kind:        &mxgatewayv1.MxValue_DoubleValue{DoubleValue: v},
	}
}

// ElapsedValue returns an MxElapsedTime as the simulator carries it: VT_R8
// seconds.
func ElapsedValue(d time.Duration) *mxgatewayv1.MxValue {
	return &mxgatewayv1.MxValue{
		DataType:    mxgatewayv1.MxDataType_MX_DATA_TYPE_ELAPSED_TIME,
		VariantType: VT_R8,
		Kind:        &mxgatewayv1.MxValue_DoubleValue{DoubleValue: d.Seconds()},
	}
}

// StringValue returns an MxString (VT_BSTR).
func StringValue(v string) *mxgatewayv1.MxValue {
	return TypedStringValue(mxgatewayv1.MxDataType_MX_DATA_TYPE_STRING, v)
}

// TypedStringValue returns a VT_BSTR value of data type dt (MxString,
// MxReferenceType, MxQualifiedEnum, MxInternationalizedString, MxBigString).
func TypedStringValue(dt mxgatewayv1.MxDataType, v string) *mxgatewayv1.MxValue {
	return &mxgatewayv1.MxValue{
		DataType:    dt,
		VariantType: VT_BSTR,
		Kind:        &mxgatewayv1.MxValue_StringValue{StringValue: v},
	}
}

// TimeValue returns an MxTime (VT_DATE), UTC with millisecond precision.
func TimeValue(t time.Time) *mxgatewayv1.MxValue {
	return &mxgatewayv1.MxValue{
		DataType:    mxgatewayv1.MxDataType_MX_DATA_TYPE_TIME,
		VariantType: VT_DATE,
		Kind:        &mxgatewayv1.MxValue_TimestampValue{TimestampValue: Timestamp(t)},
	}
}

// ArrayValue wraps arr as a one-dimensional array value (VT_ARRAY | element
// VT). Its data type is the element data type, as MXAccess reports it.
func ArrayValue(arr *mxgatewayv1.MxArray) *mxgatewayv1.MxValue {
	return &mxgatewayv1.MxValue{
		DataType:    arr.GetElementType(),
		VariantType: VT_ARRAY | arr.GetElementVariantType(),
		Kind:        &mxgatewayv1.MxValue_ArrayValue{ArrayValue: arr},
	}
}

// ArrayLen returns the number of elements of arr.
func ArrayLen(arr *mxgatewayv1.MxArray) int {
	switch e := arr.GetElements().(type) {
	case *mxgatewayv1.MxArray_Bools:
		return len(e.Bools.GetValues())
	case *mxgatewayv1.MxArray_Int32S:
		return len(e.Int32S.GetValues())
	case *mxgatewayv1.MxArray_Int64S:
		return len(e.Int64S.GetValues())
	case *mxgatewayv1.MxArray_Floats:
		return len(e.Floats.GetValues())
	case *mxgatewayv1.MxArray_Doubles:
		return len(e.Doubles.GetValues())
	case *mxgatewayv1.MxArray_Strings:
		return len(e.Strings.GetValues())
	case *mxgatewayv1.MxArray_Timestamps:
		return len(e.Timestamps.GetUnixNanos())
	case *mxgatewayv1.MxArray_Durations:
		return len(e.Durations.GetNanos())
	default:
		return 0
	}
}

// ArrayElement returns element i (0-based) of arr as a scalar value of the
// array's element type, or nil when i is out of range.
func ArrayElement(arr *mxgatewayv1.MxArray, i int) *mxgatewayv1.MxValue {
	if i < 0 || i >= ArrayLen(arr) {
		return nil
	}
	dt := arr.GetElementType()
	switch e := arr.GetElements().(type) {
	case *mxgatewayv1.MxArray_Bools:
		return BoolValue(e.Bools.Values[i])
	case *mxgatewayv1.MxArray_Int32S:
		return Int32Value(dt, e.Int32S.Values[i])
	case *mxgatewayv1.MxArray_Int64S:
		return &mxgatewayv1.MxValue{DataType: dt, VariantType: arr.GetElementVariantType(),
			Kind: &mxgatewayv1.MxValue_Int64Value{Int64Value: e.Int64S.Values[i]}}
	case *mxgatewayv1.MxArray_Floats:
		return FloatValue(e.Floats.Values[i])
	case *mxgatewayv1.MxArray_Doubles:
		v := DoubleValue(e.Doubles.Values[i])
		v.DataType = dt
		return v
	case *mxgatewayv1.MxArray_Strings:
		return TypedStringValue(dt, e.Strings.Values[i])
	case *mxgatewayv1.MxArray_Timestamps:
		return TimeValue(time.Unix(0, e.Timestamps.UnixNanos[i]))
	case *mxgatewayv1.MxArray_Durations:
		return &mxgatewayv1.MxValue{DataType: dt, VariantType: arr.GetElementVariantType(),
			Kind: &mxgatewayv1.MxValue_DurationValue{DurationValue: durationpb.New(time.Duration(e.Durations.Nanos[i]))}}
	default:
		return nil
	}
}
