package sim

import (
	"math"
	"strconv"
	"strings"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/mxtypes"
)

// Data type shorthands.
const (
	tNoData   = mxgatewayv1.MxDataType_MX_DATA_TYPE_NO_DATA
	tBool     = mxgatewayv1.MxDataType_MX_DATA_TYPE_BOOLEAN
	tInt      = mxgatewayv1.MxDataType_MX_DATA_TYPE_INTEGER
	tFloat    = mxgatewayv1.MxDataType_MX_DATA_TYPE_FLOAT
	tDouble   = mxgatewayv1.MxDataType_MX_DATA_TYPE_DOUBLE
	tString   = mxgatewayv1.MxDataType_MX_DATA_TYPE_STRING
	tTime     = mxgatewayv1.MxDataType_MX_DATA_TYPE_TIME
	tElapsed  = mxgatewayv1.MxDataType_MX_DATA_TYPE_ELAPSED_TIME
	tRef      = mxgatewayv1.MxDataType_MX_DATA_TYPE_REFERENCE
	tStatus   = mxgatewayv1.MxDataType_MX_DATA_TYPE_STATUS
	tDTEnum   = mxgatewayv1.MxDataType_MX_DATA_TYPE_DATA_TYPE_ENUM
	tSecEnum  = mxgatewayv1.MxDataType_MX_DATA_TYPE_SECURITY_CLASSIFICATION_ENUM
	tQual     = mxgatewayv1.MxDataType_MX_DATA_TYPE_DATA_QUALITY
	tQEnum    = mxgatewayv1.MxDataType_MX_DATA_TYPE_QUALIFIED_ENUM
	tQStruct  = mxgatewayv1.MxDataType_MX_DATA_TYPE_QUALIFIED_STRUCT
	tIntlStr  = mxgatewayv1.MxDataType_MX_DATA_TYPE_INTERNATIONALIZED_STRING
	tBigStr   = mxgatewayv1.MxDataType_MX_DATA_TYPE_BIG_STRING
	tUnknownT = mxgatewayv1.MxDataType_MX_DATA_TYPE_UNKNOWN
)

// typeNames are the MxDataType names of the model format, by code.
var typeNames = map[mxgatewayv1.MxDataType]string{
	tNoData: "MxNoData", tBool: "MxBoolean", tInt: "MxInteger", tFloat: "MxFloat",
	tDouble: "MxDouble", tString: "MxString", tTime: "MxTime", tElapsed: "MxElapsedTime",
	tRef: "MxReferenceType", tStatus: "MxStatusType", tDTEnum: "MxDataTypeEnum",
	tSecEnum: "MxSecurityClassificationEnum", tQual: "MxDataQualityType",
	tQEnum: "MxQualifiedEnum", tQStruct: "MxQualifiedStruct",
	tIntlStr: "MxInternationalizedString", tBigStr: "MxBigString",
}

func typeName(dt mxgatewayv1.MxDataType) string {
	if n, ok := typeNames[dt]; ok {
		return n
	}
	return strconv.Itoa(int(dt))
}

// parseTypeName accepts "MxDouble", "Double" (any case) or a code 0-16.
func parseTypeName(s string) (mxgatewayv1.MxDataType, bool) {
	if n, err := strconv.Atoi(s); err == nil {
		dt := mxgatewayv1.MxDataType(n)
		_, ok := typeNames[dt]
		return dt, ok
	}
	for dt, n := range typeNames {
		if strings.EqualFold(s, n) || strings.EqualFold(s, strings.TrimPrefix(n, "Mx")) {
			return dt, true
		}
	}
	// Common short aliases.
	switch strings.ToLower(s) {
	case "bool":
		return tBool, true
	case "int":
		return tInt, true
	case "reference":
		return tRef, true
	}
	return 0, false
}

func arrayable(dt mxgatewayv1.MxDataType) bool {
	return dt != tNoData && dt != tQStruct && dt != tUnknownT
}

func hasValue(dt mxgatewayv1.MxDataType) bool { return arrayable(dt) }

func isStringType(dt mxgatewayv1.MxDataType) bool {
	return mxtypes.VariantTypeOf(dt) == mxtypes.VT_BSTR
}

func isNumericType(dt mxgatewayv1.MxDataType) bool {
	return dt == tInt || dt == tFloat || dt == tDouble || dt == tElapsed
}

func isInt32Type(dt mxgatewayv1.MxDataType) bool {
	return mxtypes.VariantTypeOf(dt) == mxtypes.VT_I4
}

// intValue is mxtypes.IntegerValue(v) in one allocation (see int32Box).
func intValue(v int32) *mxgatewayv1.MxValue {
	bx := &int32Box{}
	bx.v.DataType, bx.v.VariantType = tInt, uint32(mxtypes.VT_I4)
	bx.k.Int32Value = v
	bx.v.Kind = &bx.k
	return &bx.v
}

// epoch is the zero value of MxTime in the simulator.
var epoch = time.Unix(0, 0).UTC()

// zeroScalar returns the zero value of a scalar of type dt.
func zeroScalar(dt mxgatewayv1.MxDataType) *mxgatewayv1.MxValue {
	switch {
	case dt == tBool:
		return mxtypes.BoolValue(false)
	case isInt32Type(dt):
		return mxtypes.Int32Value(dt, 0)
	case dt == tFloat:
		return mxtypes.FloatValue(0)
	case dt == tDouble:
		return mxtypes.DoubleValue(0)
	case dt == tElapsed:
		return mxtypes.ElapsedValue(0)
	case isStringType(dt):
		return mxtypes.TypedStringValue(dt, "")
	case dt == tTime:
		return mxtypes.TimeValue(epoch)
	default:
		return mxtypes.NullValue(dt)
	}
}

// initialValue is an attribute's value when the Galaxy starts: the model's,
// else the type's zero value, except that an MxTime without one reads the
// start time (a 1970 time with good quality is no meaningful first value).
func initialValue(a *Attribute, start time.Time) *mxgatewayv1.MxValue {
	switch {
	case !hasValue(a.Type):
		return mxtypes.NullValue(a.Type)
	case a.Initial != nil:
		return a.Initial
	case a.Type == tTime:
		t := mxtypes.TimeValue(mxtypes.TruncateTime(start))
		if a.Dimension == 0 {
			return t
		}
		elems := make([]*mxgatewayv1.MxValue, a.Dimension)
		for i := range elems {
			elems[i] = t
		}
		return buildArray(tTime, elems)
	}
	return zeroValue(a.Type, a.Dimension)
}

// zeroValue returns the zero value of an attribute of type dt and dimension dim.
func zeroValue(dt mxgatewayv1.MxDataType, dim int) *mxgatewayv1.MxValue {
	if dim == 0 {
		return zeroScalar(dt)
	}
	elems := make([]*mxgatewayv1.MxValue, dim)
	for i := range elems {
		elems[i] = zeroScalar(dt)
	}
	return buildArray(dt, elems)
}

// buildArray builds an array value of element type dt from scalars already
// of that type.
func buildArray(dt mxgatewayv1.MxDataType, elems []*mxgatewayv1.MxValue) *mxgatewayv1.MxValue {
	arr := &mxgatewayv1.MxArray{ElementType: dt, ElementVariantType: uint32(mxtypes.VariantTypeOf(dt))}
	switch {
	case dt == tBool:
		vs := make([]bool, len(elems))
		for i, e := range elems {
			vs[i] = e.GetBoolValue()
		}
		arr.Elements = &mxgatewayv1.MxArray_Bools{Bools: &mxgatewayv1.BoolArray{Values: vs}}
	case isInt32Type(dt):
		vs := make([]int32, len(elems))
		for i, e := range elems {
			vs[i] = e.GetInt32Value()
		}
		arr.Elements = &mxgatewayv1.MxArray_Int32S{Int32S: &mxgatewayv1.Int32Array{Values: vs}}
	case dt == tFloat:
		vs := make([]float32, len(elems))
		for i, e := range elems {
			vs[i] = e.GetFloatValue()
		}
		arr.Elements = &mxgatewayv1.MxArray_Floats{Floats: &mxgatewayv1.FloatArray{Values: vs}}
	case dt == tDouble || dt == tElapsed:
		vs := make([]float64, len(elems))
		for i, e := range elems {
			vs[i] = e.GetDoubleValue()
		}
		arr.Elements = &mxgatewayv1.MxArray_Doubles{Doubles: &mxgatewayv1.DoubleArray{Values: vs}}
	case isStringType(dt):
		vs := make([]string, len(elems))
		for i, e := range elems {
			vs[i] = e.GetStringValue()
		}
		arr.Elements = &mxgatewayv1.MxArray_Strings{Strings: &mxgatewayv1.StringArray{Values: vs}}
	case dt == tTime:
		vs := make([]int64, len(elems))
		for i, e := range elems {
			vs[i] = e.GetTimestampValue().AsTime().UnixNano()
		}
		arr.Elements = &mxgatewayv1.MxArray_Timestamps{Timestamps: &mxgatewayv1.TimestampArray{UnixNanos: vs}}
	}
	return mxtypes.ArrayValue(arr)
}

// arrayElements returns the elements of an array value as scalars.
func arrayElements(v *mxgatewayv1.MxValue) []*mxgatewayv1.MxValue {
	arr := v.GetArrayValue()
	n := mxtypes.ArrayLen(arr)
	out := make([]*mxgatewayv1.MxValue, n)
	for i := range out {
		out[i] = mxtypes.ArrayElement(arr, i)
	}
	return out
}

// withElement returns a copy of array value v with element i (0-based)
// replaced by e.
func withElement(dt mxgatewayv1.MxDataType, v *mxgatewayv1.MxValue, i int, e *mxgatewayv1.MxValue) *mxgatewayv1.MxValue {
	elems := arrayElements(v)
	elems[i] = e
	return buildArray(dt, elems)
}

// coerce converts a written value to an attribute's type (dim 0) or array
// type. ok is false when MXAccess would refuse the VARIANT (E_INVALIDARG).
func coerce(v *mxgatewayv1.MxValue, dt mxgatewayv1.MxDataType, dim int, strict bool) (*mxgatewayv1.MxValue, bool) {
	if v == nil || v.GetIsNull() || v.GetKind() == nil || !hasValue(dt) {
		return nil, false
	}
	if dim == 0 {
		return coerceScalar(v, dt, strict)
	}
	if v.GetArrayValue() == nil {
		return nil, false
	}
	elems := arrayElements(v)
	if len(elems) != dim {
		return nil, false
	}
	for i, e := range elems {
		if e == nil {
			return nil, false
		}
		c, ok := coerceScalar(e, dt, strict)
		if !ok {
			return nil, false
		}
		elems[i] = c
	}
	return buildArray(dt, elems), true
}

// coerceScalar implements writeCoercion for one scalar. Lenient accepts the
// attribute's own VARIANT type, lossless numeric conversions and strings
// parsed in the invariant culture; strict accepts the own type only.
func coerceScalar(v *mxgatewayv1.MxValue, dt mxgatewayv1.MxDataType, strict bool) (*mxgatewayv1.MxValue, bool) {
	if v == nil || v.GetIsNull() {
		return nil, false
	}
	if strict {
		switch k := v.GetKind().(type) {
		case *mxgatewayv1.MxValue_BoolValue:
			if dt == tBool {
				return mxtypes.BoolValue(k.BoolValue), true
			}
		case *mxgatewayv1.MxValue_Int32Value:
			if isInt32Type(dt) {
				return mxtypes.Int32Value(dt, k.Int32Value), true
			}
		case *mxgatewayv1.MxValue_FloatValue:
			if dt == tFloat {
				return mxtypes.FloatValue(k.FloatValue), true
			}
		case *mxgatewayv1.MxValue_DoubleValue:
			if dt == tDouble {
				return mxtypes.DoubleValue(k.DoubleValue), true
			}
			if dt == tElapsed {
				return elapsedSeconds(k.DoubleValue), true
			}
		case *mxgatewayv1.MxValue_StringValue:
			if isStringType(dt) {
				return mxtypes.TypedStringValue(dt, k.StringValue), true
			}
		case *mxgatewayv1.MxValue_TimestampValue:
			if dt == tTime {
				return mxtypes.TimeValue(k.TimestampValue.AsTime()), true
			}
		}
		return nil, false
	}
	switch {
	case dt == tBool:
		switch k := v.GetKind().(type) {
		case *mxgatewayv1.MxValue_BoolValue:
			return mxtypes.BoolValue(k.BoolValue), true
		case *mxgatewayv1.MxValue_Int32Value:
			if k.Int32Value == 0 || k.Int32Value == 1 {
				return mxtypes.BoolValue(k.Int32Value == 1), true
			}
		case *mxgatewayv1.MxValue_Int64Value:
			if k.Int64Value == 0 || k.Int64Value == 1 {
				return mxtypes.BoolValue(k.Int64Value == 1), true
			}
		case *mxgatewayv1.MxValue_StringValue:
			if b, err := strconv.ParseBool(strings.TrimSpace(k.StringValue)); err == nil {
				return mxtypes.BoolValue(b), true
			}
		}
	case isInt32Type(dt):
		var f float64
		switch k := v.GetKind().(type) {
		case *mxgatewayv1.MxValue_Int32Value:
			return mxtypes.Int32Value(dt, k.Int32Value), true
		case *mxgatewayv1.MxValue_Int64Value:
			f = float64(k.Int64Value)
			if k.Int64Value < math.MinInt32 || k.Int64Value > math.MaxInt32 {
				return nil, false
			}
		case *mxgatewayv1.MxValue_FloatValue:
			f = float64(k.FloatValue)
		case *mxgatewayv1.MxValue_DoubleValue:
			f = k.DoubleValue
		case *mxgatewayv1.MxValue_StringValue:
			n, err := strconv.ParseInt(strings.TrimSpace(k.StringValue), 10, 32)
			if err != nil {
				return nil, false
			}
			return mxtypes.Int32Value(dt, int32(n)), true
		default:
			return nil, false
		}
		if f != math.Trunc(f) || f < math.MinInt32 || f > math.MaxInt32 {
			return nil, false
		}
		return mxtypes.Int32Value(dt, int32(f)), true
	case dt == tFloat:
		switch k := v.GetKind().(type) {
		case *mxgatewayv1.MxValue_FloatValue:
			return mxtypes.FloatValue(k.FloatValue), true
		case *mxgatewayv1.MxValue_DoubleValue:
			if f := float32(k.DoubleValue); float64(f) == k.DoubleValue || math.IsNaN(k.DoubleValue) {
				return mxtypes.FloatValue(f), true
			}
		case *mxgatewayv1.MxValue_Int32Value:
			if k.Int32Value >= -1<<24 && k.Int32Value <= 1<<24 {
				return mxtypes.FloatValue(float32(k.Int32Value)), true
			}
		case *mxgatewayv1.MxValue_Int64Value:
			if k.Int64Value >= -1<<24 && k.Int64Value <= 1<<24 {
				return mxtypes.FloatValue(float32(k.Int64Value)), true
			}
		case *mxgatewayv1.MxValue_StringValue:
			if f, err := strconv.ParseFloat(strings.TrimSpace(k.StringValue), 32); err == nil {
				return mxtypes.FloatValue(float32(f)), true
			}
		}
	case dt == tDouble || dt == tElapsed:
		mk := mxtypes.DoubleValue
		if dt == tElapsed {
			mk = elapsedSeconds
		}
		switch k := v.GetKind().(type) {
		case *mxgatewayv1.MxValue_DoubleValue:
			return mk(k.DoubleValue), true
		case *mxgatewayv1.MxValue_FloatValue:
			return mk(float64(k.FloatValue)), true
		case *mxgatewayv1.MxValue_Int32Value:
			return mk(float64(k.Int32Value)), true
		case *mxgatewayv1.MxValue_Int64Value:
			if k.Int64Value >= -1<<53 && k.Int64Value <= 1<<53 {
				return mk(float64(k.Int64Value)), true
			}
		case *mxgatewayv1.MxValue_DurationValue:
			if dt == tElapsed {
				return mk(k.DurationValue.AsDuration().Seconds()), true
			}
		case *mxgatewayv1.MxValue_StringValue:
			s := strings.TrimSpace(k.StringValue)
			if f, err := strconv.ParseFloat(s, 64); err == nil {
				return mk(f), true
			}
			if dt == tElapsed {
				if d, err := time.ParseDuration(s); err == nil {
					return mk(d.Seconds()), true
				}
			}
		}
	case isStringType(dt):
		if k, ok := v.GetKind().(*mxgatewayv1.MxValue_StringValue); ok {
			return mxtypes.TypedStringValue(dt, k.StringValue), true
		}
	case dt == tTime:
		switch k := v.GetKind().(type) {
		case *mxgatewayv1.MxValue_TimestampValue:
			return mxtypes.TimeValue(k.TimestampValue.AsTime()), true
		case *mxgatewayv1.MxValue_StringValue:
			if t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(k.StringValue)); err == nil {
				return mxtypes.TimeValue(t), true
			}
		}
	}
	return nil, false
}

func elapsedSeconds(s float64) *mxgatewayv1.MxValue {
	v := mxtypes.DoubleValue(s)
	v.DataType = tElapsed
	return v
}

// numeric returns the value of a numeric scalar as float64.
func numeric(v *mxgatewayv1.MxValue) float64 {
	switch k := v.GetKind().(type) {
	case *mxgatewayv1.MxValue_Int32Value:
		return float64(k.Int32Value)
	case *mxgatewayv1.MxValue_FloatValue:
		return float64(k.FloatValue)
	case *mxgatewayv1.MxValue_DoubleValue:
		return k.DoubleValue
	case *mxgatewayv1.MxValue_Int64Value:
		return float64(k.Int64Value)
	}
	return 0
}

// fromFloat converts a generator output to a numeric attribute type.
func fromFloat(dt mxgatewayv1.MxDataType, f float64) *mxgatewayv1.MxValue {
	switch dt {
	case tInt:
		r := math.Round(f)
		r = math.Max(math.MinInt32, math.Min(math.MaxInt32, r))
		return mxtypes.IntegerValue(int32(r))
	case tFloat:
		return mxtypes.FloatValue(float32(f))
	case tElapsed:
		return elapsedSeconds(f)
	default:
		return mxtypes.DoubleValue(f)
	}
}
