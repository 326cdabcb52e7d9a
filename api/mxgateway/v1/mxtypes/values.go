package mxtypes

import (
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

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
	return &mxgatewayv1.MxValue{DataType: dt, VariantType: uint32(VT_EMPTY), IsNull: true}
}

// BoolValue returns an MxBoolean (VT_BOOL).
func BoolValue(v bool) *mxgatewayv1.MxValue {
	return &mxgatewayv1.MxValue{
		DataType:    mxgatewayv1.MxDataType_MX_DATA_TYPE_BOOLEAN,
		VariantType: uint32(VT_BOOL),
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
		VariantType: uint32(VT_I4),
		Kind:        &mxgatewayv1.MxValue_Int32Value{Int32Value: v},
	}
}

// FloatValue returns an MxFloat (VT_R4).
func FloatValue(v float32) *mxgatewayv1.MxValue {
	return &mxgatewayv1.MxValue{
		DataType:    mxgatewayv1.MxDataType_MX_DATA_TYPE_FLOAT,
		VariantType: uint32(VT_R4),
		Kind:        &mxgatewayv1.MxValue_FloatValue{FloatValue: v},
	}
}

// DoubleValue returns an MxDouble (VT_R8).
func DoubleValue(v float64) *mxgatewayv1.MxValue {
	return &mxgatewayv1.MxValue{
		DataType:    mxgatewayv1.MxDataType_MX_DATA_TYPE_DOUBLE,
		VariantType: uint32(VT_R8),
		Kind:        &mxgatewayv1.MxValue_DoubleValue{DoubleValue: v},
	}
}

// ElapsedValue returns an MxElapsedTime as the simulator carries it: VT_R8
// seconds.
func ElapsedValue(d time.Duration) *mxgatewayv1.MxValue {
	return &mxgatewayv1.MxValue{
		DataType:    mxgatewayv1.MxDataType_MX_DATA_TYPE_ELAPSED_TIME,
		VariantType: uint32(VT_R8),
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
		VariantType: uint32(VT_BSTR),
		Kind:        &mxgatewayv1.MxValue_StringValue{StringValue: v},
	}
}

// TimeValue returns an MxTime (VT_DATE), UTC with millisecond precision.
func TimeValue(t time.Time) *mxgatewayv1.MxValue {
	return &mxgatewayv1.MxValue{
		DataType:    mxgatewayv1.MxDataType_MX_DATA_TYPE_TIME,
		VariantType: uint32(VT_DATE),
		Kind:        &mxgatewayv1.MxValue_TimestampValue{TimestampValue: Timestamp(t)},
	}
}

// ArrayValue wraps arr as a one-dimensional array value (VT_ARRAY | element
// VT). Its data type is the element data type, as MXAccess reports it.
func ArrayValue(arr *mxgatewayv1.MxArray) *mxgatewayv1.MxValue {
	return &mxgatewayv1.MxValue{
		DataType:    arr.GetElementType(),
		VariantType: uint32(VT_ARRAY) | arr.GetElementVariantType(),
		Kind:        &mxgatewayv1.MxValue_ArrayValue{ArrayValue: arr},
	}
}

// ArrayLen returns the number of elements of arr (0 for nil).
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
