package client

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/mxtypes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// VARIANT type codes used on the wire, from the shared vocabulary.
const (
	vtEmpty = uint32(mxtypes.VT_EMPTY)
	vtI4    = uint32(mxtypes.VT_I4)
	vtR4    = uint32(mxtypes.VT_R4)
	vtR8    = uint32(mxtypes.VT_R8)
	vtDate  = uint32(mxtypes.VT_DATE)
	vtBSTR  = uint32(mxtypes.VT_BSTR)
	vtBool  = uint32(mxtypes.VT_BOOL)
	vtI8    = uint32(mxtypes.VT_I8)
	vtArray = uint32(mxtypes.VT_ARRAY)
)

// Value is one MXAccess value: its MXAccess data type, the VARIANT type it
// travelled as, and the typed content. The zero Value is a null value
// (MxNoData). Values are immutable; they are safe to share between goroutines.
type Value struct {
	p *mxgatewayv1.MxValue
}

// Text is a value given as text, to be parsed for the attribute's own data
// type when the type becomes known (invariant culture: '.' decimal point,
// RFC 3339 times, Go or seconds durations). WriteValue accepts it, and
// ConvertValue parses it. It is what a command line tool sends.
type Text string

// ConversionError reports a conversion between a Go value and an MXAccess
// value that would lose information, or that is not defined.
type ConversionError struct {
	// From describes the source (a Go type or an MXAccess data type).
	From string
	// To describes the target.
	To string
	// Reason says what would be lost.
	Reason string
}

// Error implements error.
func (e *ConversionError) Error() string {
	return fmt.Sprintf("client: cannot convert %s to %s: %s", e.From, e.To, e.Reason)
}

func convErr(from, to, reason string) error {
	return &ConversionError{From: from, To: to, Reason: reason}
}

// ValueFromProto wraps an MxValue received from the gateway. A nil p gives a
// null Value. The message must not be modified afterwards.
func ValueFromProto(p *mxgatewayv1.MxValue) Value {
	return Value{p: p}
}

// Null returns the null value (MxNoData, VT_EMPTY).
func Null() Value { return Value{} }

// Proto returns the wire form. It never returns nil; the result must not be
// modified.
func (v Value) Proto() *mxgatewayv1.MxValue {
	if v.p == nil {
		return &mxgatewayv1.MxValue{DataType: mxgatewayv1.MxDataType_MX_DATA_TYPE_NO_DATA, IsNull: true}
	}
	return v.p
}

// DataType returns the MXAccess data type (of the elements, for an array).
func (v Value) DataType() mxgatewayv1.MxDataType {
	if v.p == nil {
		return mxgatewayv1.MxDataType_MX_DATA_TYPE_NO_DATA
	}
	return v.p.GetDataType()
}

// VariantType returns the raw VARTYPE, including VT_ARRAY (0x2000) for arrays.
func (v Value) VariantType() uint32 { return v.p.GetVariantType() }

// IsNull reports whether there is no value (VT_EMPTY or VT_NULL).
func (v Value) IsNull() bool { return v.p == nil || v.p.GetIsNull() || v.p.GetKind() == nil }

// IsArray reports whether the value is a one-dimensional array.
func (v Value) IsArray() bool { return v.p.GetArrayValue() != nil }

// Diagnostic returns the gateway's note on a lossy or unusual conversion, or "".
func (v Value) Diagnostic() string { return v.p.GetDiagnostic() }

// Equal reports whether two values are identical on the wire.
func (v Value) Equal(o Value) bool { return proto.Equal(v.Proto(), o.Proto()) }

// Len returns the number of array elements, 0 for a null value and 1 for a
// scalar.
func (v Value) Len() int {
	if v.IsNull() {
		return 0
	}
	a := v.p.GetArrayValue()
	if a == nil {
		return 1
	}
	return mxtypes.ArrayLen(a)
}

// ---------------------------------------------------------------------------
// Go → MXAccess

// NewValue converts a Go value, choosing the MXAccess data type from the Go
// type: bool → MxBoolean; int, int8..int32, uint8..uint32 (in range) →
// MxInteger; int64 and uint64 in int32 range → MxInteger (an error beyond it:
// MxInteger is 32-bit); float32 → MxFloat; float64 → MxDouble; string →
// MxString; time.Time → MxTime; time.Duration → MxElapsedTime; slices of
// those → arrays; nil → null; a Value or *MxValue is returned as is.
// A Text cannot be typed without a target; use ConvertValue.
func NewValue(x any) (Value, error) {
	switch t := x.(type) {
	case nil:
		return Null(), nil
	case Value:
		return t, nil
	case *mxgatewayv1.MxValue:
		return ValueFromProto(t), nil
	case Text:
		return Value{}, convErr("Text", "a value", "text needs a target data type (use ConvertValue)")
	case bool:
		return ConvertValue(mxgatewayv1.MxDataType_MX_DATA_TYPE_BOOLEAN, t)
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return ConvertValue(mxgatewayv1.MxDataType_MX_DATA_TYPE_INTEGER, t)
	case float32:
		return ConvertValue(mxgatewayv1.MxDataType_MX_DATA_TYPE_FLOAT, t)
	case float64:
		return ConvertValue(mxgatewayv1.MxDataType_MX_DATA_TYPE_DOUBLE, t)
	case string:
		return ConvertValue(mxgatewayv1.MxDataType_MX_DATA_TYPE_STRING, t)
	case time.Time:
		return ConvertValue(mxgatewayv1.MxDataType_MX_DATA_TYPE_TIME, t)
	case time.Duration:
		return ConvertValue(mxgatewayv1.MxDataType_MX_DATA_TYPE_ELAPSED_TIME, t)
	}
	rv := reflect.ValueOf(x)
	if rv.Kind() == reflect.Slice || rv.Kind() == reflect.Array {
		et := rv.Type().Elem()
		var dt mxgatewayv1.MxDataType
		switch {
		case et == reflect.TypeFor[time.Time]():
			dt = mxgatewayv1.MxDataType_MX_DATA_TYPE_TIME
		case et == reflect.TypeFor[time.Duration]():
			dt = mxgatewayv1.MxDataType_MX_DATA_TYPE_ELAPSED_TIME
		default:
			switch et.Kind() {
			case reflect.Bool:
				dt = mxgatewayv1.MxDataType_MX_DATA_TYPE_BOOLEAN
			case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
				reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
				dt = mxgatewayv1.MxDataType_MX_DATA_TYPE_INTEGER
			case reflect.Float32:
				dt = mxgatewayv1.MxDataType_MX_DATA_TYPE_FLOAT
			case reflect.Float64:
				dt = mxgatewayv1.MxDataType_MX_DATA_TYPE_DOUBLE
			case reflect.String:
				dt = mxgatewayv1.MxDataType_MX_DATA_TYPE_STRING
			default:
				return Value{}, convErr(rv.Type().String(), "an MXAccess array", "unsupported element type")
			}
		}
		return ConvertValue(dt, x)
	}
	return Value{}, convErr(fmt.Sprintf("%T", x), "an MXAccess value", "unsupported Go type")
}

// MustValue is NewValue that panics on error, for constants in examples and
// tests.
func MustValue(x any) Value {
	v, err := NewValue(x)
	if err != nil {
		panic(err)
	}
	return v
}

// ConvertValue converts a Go value to the MXAccess data type dt, failing with
// a *ConversionError instead of losing information: integers out of int32
// range for MxInteger, non-integral floats for MxInteger, integers beyond 2^24
// (MxFloat) or 2^53 (MxDouble) that the float cannot hold exactly, float64
// outside the float32 range, numbers for strings and strings for numbers.
// (A float64 that is in range is rounded to the nearest float32 for MxFloat:
// that is the precision of the attribute itself.) A slice converts to an array
// whose element type is dt. A Text is parsed for dt. MxUnknown infers the type
// as NewValue does.
func ConvertValue(dt mxgatewayv1.MxDataType, x any) (Value, error) {
	switch t := x.(type) {
	case nil:
		return Null(), nil
	case Value:
		if t.DataType() == dt || t.IsNull() {
			return t, nil
		}
		return ConvertValue(dt, t.Interface())
	case *mxgatewayv1.MxValue:
		return ConvertValue(dt, ValueFromProto(t))
	case Text:
		return ParseValue(dt, string(t))
	}
	if dt == mxgatewayv1.MxDataType_MX_DATA_TYPE_UNKNOWN {
		return NewValue(x)
	}
	rv := reflect.ValueOf(x)
	if (rv.Kind() == reflect.Slice && rv.Type().Elem().Kind() != reflect.Uint8) || rv.Kind() == reflect.Array {
		return convertSlice(dt, rv)
	}
	if rv.Kind() == reflect.Slice { // []byte has no MXAccess meaning
		return Value{}, convErr("[]byte", dtName(dt), "byte slices have no MXAccess type")
	}
	k, err := scalarKind(dt)
	if err != nil {
		return Value{}, err
	}
	p := &mxgatewayv1.MxValue{DataType: dt}
	switch k {
	case kindBool:
		b, ok := x.(bool)
		if !ok {
			return Value{}, convErr(fmt.Sprintf("%T", x), dtName(dt), "only a bool converts to a boolean")
		}
		p.VariantType, p.Kind = vtBool, &mxgatewayv1.MxValue_BoolValue{BoolValue: b}
	case kindInt32:
		n, err := toInt32(x, dt)
		if err != nil {
			return Value{}, err
		}
		p.VariantType, p.Kind = vtI4, &mxgatewayv1.MxValue_Int32Value{Int32Value: n}
	case kindFloat:
		f, err := toFloat(x, dt, 24)
		if err != nil {
			return Value{}, err
		}
		if !math.IsInf(f, 0) && !math.IsNaN(f) && math.Abs(f) > math.MaxFloat32 {
			return Value{}, convErr(fmt.Sprintf("%T %v", x, x), dtName(dt), "outside the float32 range")
		}
		p.VariantType, p.Kind = vtR4, &mxgatewayv1.MxValue_FloatValue{FloatValue: float32(f)}
	case kindDouble:
		f, err := toFloat(x, dt, 53)
		if err != nil {
			return Value{}, err
		}
		p.VariantType, p.Kind = vtR8, &mxgatewayv1.MxValue_DoubleValue{DoubleValue: f}
	case kindString:
		s, ok := x.(string)
		if !ok {
			return Value{}, convErr(fmt.Sprintf("%T", x), dtName(dt), "only a string converts to a string type")
		}
		p.VariantType, p.Kind = vtBSTR, &mxgatewayv1.MxValue_StringValue{StringValue: s}
	case kindTime:
		tm, ok := x.(time.Time)
		if !ok {
			return Value{}, convErr(fmt.Sprintf("%T", x), dtName(dt), "only a time.Time converts to MxTime")
		}
		p.VariantType, p.Kind = vtDate, &mxgatewayv1.MxValue_TimestampValue{TimestampValue: timestamppb.New(tm.UTC())}
	case kindDuration:
		d, ok := x.(time.Duration)
		if !ok {
			return Value{}, convErr(fmt.Sprintf("%T", x), dtName(dt), "only a time.Duration converts to MxElapsedTime")
		}
		p.VariantType, p.Kind = vtR8, &mxgatewayv1.MxValue_DurationValue{DurationValue: durationpb.New(d)}
	}
	return Value{p: p}, nil
}

type scalar int

const (
	kindBool scalar = iota + 1
	kindInt32
	kindFloat
	kindDouble
	kindString
	kindTime
	kindDuration
)

func scalarKind(dt mxgatewayv1.MxDataType) (scalar, error) {
	switch dt {
	case mxgatewayv1.MxDataType_MX_DATA_TYPE_BOOLEAN:
		return kindBool, nil
	case mxgatewayv1.MxDataType_MX_DATA_TYPE_INTEGER, mxgatewayv1.MxDataType_MX_DATA_TYPE_STATUS,
		mxgatewayv1.MxDataType_MX_DATA_TYPE_DATA_TYPE_ENUM, mxgatewayv1.MxDataType_MX_DATA_TYPE_SECURITY_CLASSIFICATION_ENUM,
		mxgatewayv1.MxDataType_MX_DATA_TYPE_DATA_QUALITY:
		return kindInt32, nil
	case mxgatewayv1.MxDataType_MX_DATA_TYPE_FLOAT:
		return kindFloat, nil
	case mxgatewayv1.MxDataType_MX_DATA_TYPE_DOUBLE:
		return kindDouble, nil
	case mxgatewayv1.MxDataType_MX_DATA_TYPE_STRING, mxgatewayv1.MxDataType_MX_DATA_TYPE_REFERENCE,
		mxgatewayv1.MxDataType_MX_DATA_TYPE_QUALIFIED_ENUM, mxgatewayv1.MxDataType_MX_DATA_TYPE_INTERNATIONALIZED_STRING,
		mxgatewayv1.MxDataType_MX_DATA_TYPE_BIG_STRING:
		return kindString, nil
	case mxgatewayv1.MxDataType_MX_DATA_TYPE_TIME:
		return kindTime, nil
	case mxgatewayv1.MxDataType_MX_DATA_TYPE_ELAPSED_TIME:
		return kindDuration, nil
	}
	return 0, convErr("a Go value", dtName(dt), "the type has no writable value form")
}

func dtName(dt mxgatewayv1.MxDataType) string { return mxtypes.DataTypeName(dt) }

// DataTypeName returns MXAccess's own name of a data type, for example
// "MxInteger".
func DataTypeName(dt mxgatewayv1.MxDataType) string { return dtName(dt) }

// ParseDataType parses a data type name as mxctl accepts it: MXAccess names
// ("MxInteger"), short names ("integer", "int", "float", "double", "bool",
// "string", "time", "elapsed", ...) or the number.
func ParseDataType(s string) (mxgatewayv1.MxDataType, error) {
	k := strings.ToLower(strings.TrimPrefix(strings.TrimPrefix(s, "Mx"), "mx"))
	switch k {
	case "nodata", "null", "empty":
		return mxgatewayv1.MxDataType_MX_DATA_TYPE_NO_DATA, nil
	case "boolean", "bool":
		return mxgatewayv1.MxDataType_MX_DATA_TYPE_BOOLEAN, nil
	case "integer", "int", "int32", "i4":
		return mxgatewayv1.MxDataType_MX_DATA_TYPE_INTEGER, nil
	case "float", "float32", "real", "r4":
		return mxgatewayv1.MxDataType_MX_DATA_TYPE_FLOAT, nil
	case "double", "float64", "r8":
		return mxgatewayv1.MxDataType_MX_DATA_TYPE_DOUBLE, nil
	case "string", "str":
		return mxgatewayv1.MxDataType_MX_DATA_TYPE_STRING, nil
	case "time", "datetime", "date":
		return mxgatewayv1.MxDataType_MX_DATA_TYPE_TIME, nil
	case "elapsedtime", "elapsed", "duration":
		return mxgatewayv1.MxDataType_MX_DATA_TYPE_ELAPSED_TIME, nil
	case "referencetype", "reference":
		return mxgatewayv1.MxDataType_MX_DATA_TYPE_REFERENCE, nil
	case "qualifiedenum":
		return mxgatewayv1.MxDataType_MX_DATA_TYPE_QUALIFIED_ENUM, nil
	case "internationalizedstring":
		return mxgatewayv1.MxDataType_MX_DATA_TYPE_INTERNATIONALIZED_STRING, nil
	case "bigstring":
		return mxgatewayv1.MxDataType_MX_DATA_TYPE_BIG_STRING, nil
	}
	if n, err := strconv.ParseInt(s, 10, 32); err == nil {
		if _, ok := mxgatewayv1.MxDataType_name[int32(n)]; ok {
			return mxgatewayv1.MxDataType(n), nil
		}
	}
	return 0, fmt.Errorf("client: unknown data type %q", s)
}

func toInt32(x any, dt mxgatewayv1.MxDataType) (int32, error) {
	from := fmt.Sprintf("%T %v", x, x)
	var i int64
	switch t := x.(type) {
	case int:
		i = int64(t)
	case int8:
		i = int64(t)
	case int16:
		i = int64(t)
	case int32:
		i = int64(t)
	case int64:
		i = t
	case uint8:
		i = int64(t)
	case uint16:
		i = int64(t)
	case uint32:
		i = int64(t)
	case uint:
		if uint64(t) > math.MaxInt32 {
			return 0, convErr(from, dtName(dt), "outside the int32 range")
		}
		i = int64(t)
	case uint64:
		if t > math.MaxInt32 {
			return 0, convErr(from, dtName(dt), "outside the int32 range")
		}
		i = int64(t)
	case float32:
		return floatToInt32(float64(t), from, dt)
	case float64:
		return floatToInt32(t, from, dt)
	default:
		return 0, convErr(fmt.Sprintf("%T", x), dtName(dt), "not a number")
	}
	if i < math.MinInt32 || i > math.MaxInt32 {
		return 0, convErr(from, dtName(dt), "outside the int32 range")
	}
	return int32(i), nil
}

func floatToInt32(f float64, from string, dt mxgatewayv1.MxDataType) (int32, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) || f != math.Trunc(f) {
		return 0, convErr(from, dtName(dt), "not an integral number")
	}
	if f < math.MinInt32 || f > math.MaxInt32 {
		return 0, convErr(from, dtName(dt), "outside the int32 range")
	}
	return int32(f), nil
}

// toFloat converts a number to float64, refusing integers beyond 2^mant that
// the target float cannot hold exactly.
func toFloat(x any, dt mxgatewayv1.MxDataType, mant uint) (float64, error) {
	from := fmt.Sprintf("%T %v", x, x)
	limit := int64(1) << mant
	checkI := func(i int64) (float64, error) {
		if i > limit || i < -limit {
			return 0, convErr(from, dtName(dt), fmt.Sprintf("beyond 2^%d the float cannot hold the integer exactly", mant))
		}
		return float64(i), nil
	}
	switch t := x.(type) {
	case int:
		return checkI(int64(t))
	case int8:
		return float64(t), nil
	case int16:
		return float64(t), nil
	case int32:
		return checkI(int64(t))
	case int64:
		return checkI(t)
	case uint8:
		return float64(t), nil
	case uint16:
		return float64(t), nil
	case uint32:
		return checkI(int64(t))
	case uint:
		if uint64(t) > uint64(limit) {
			return checkI(math.MaxInt64)
		}
		return float64(t), nil
	case uint64:
		if t > uint64(limit) {
			return checkI(math.MaxInt64)
		}
		return float64(t), nil
	case float32:
		return float64(t), nil
	case float64:
		return t, nil
	}
	return 0, convErr(fmt.Sprintf("%T", x), dtName(dt), "not a number")
}

func convertSlice(dt mxgatewayv1.MxDataType, rv reflect.Value) (Value, error) {
	k, err := scalarKind(dt)
	if err != nil {
		return Value{}, err
	}
	n := rv.Len()
	a := &mxgatewayv1.MxArray{ElementType: dt}
	elem := func(i int) (*mxgatewayv1.MxValue, error) {
		v, err := ConvertValue(dt, rv.Index(i).Interface())
		if err != nil {
			return nil, fmt.Errorf("element %d: %w", i, err)
		}
		return v.p, nil
	}
	switch k {
	case kindBool:
		vals := make([]bool, n)
		for i := range n {
			e, err := elem(i)
			if err != nil {
				return Value{}, err
			}
			vals[i] = e.GetBoolValue()
		}
		a.ElementVariantType, a.Elements = vtBool, &mxgatewayv1.MxArray_Bools{Bools: &mxgatewayv1.BoolArray{Values: vals}}
	case kindInt32:
		vals := make([]int32, n)
		for i := range n {
			e, err := elem(i)
			if err != nil {
				return Value{}, err
			}
			vals[i] = e.GetInt32Value()
		}
		a.ElementVariantType, a.Elements = vtI4, &mxgatewayv1.MxArray_Int32S{Int32S: &mxgatewayv1.Int32Array{Values: vals}}
	case kindFloat:
		vals := make([]float32, n)
		for i := range n {
			e, err := elem(i)
			if err != nil {
				return Value{}, err
			}
			vals[i] = e.GetFloatValue()
		}
		a.ElementVariantType, a.Elements = vtR4, &mxgatewayv1.MxArray_Floats{Floats: &mxgatewayv1.FloatArray{Values: vals}}
	case kindDouble:
		vals := make([]float64, n)
		for i := range n {
			e, err := elem(i)
			if err != nil {
				return Value{}, err
			}
			vals[i] = e.GetDoubleValue()
		}
		a.ElementVariantType, a.Elements = vtR8, &mxgatewayv1.MxArray_Doubles{Doubles: &mxgatewayv1.DoubleArray{Values: vals}}
	case kindString:
		vals := make([]string, n)
		for i := range n {
			e, err := elem(i)
			if err != nil {
				return Value{}, err
			}
			vals[i] = e.GetStringValue()
		}
		a.ElementVariantType, a.Elements = vtBSTR, &mxgatewayv1.MxArray_Strings{Strings: &mxgatewayv1.StringArray{Values: vals}}
	case kindTime:
		vals := make([]int64, n)
		for i := range n {
			e, err := elem(i)
			if err != nil {
				return Value{}, err
			}
			vals[i] = e.GetTimestampValue().AsTime().UnixNano()
		}
		a.ElementVariantType, a.Elements = vtDate, &mxgatewayv1.MxArray_Timestamps{Timestamps: &mxgatewayv1.TimestampArray{UnixNanos: vals}}
	case kindDuration:
		vals := make([]int64, n)
		for i := range n {
			e, err := elem(i)
			if err != nil {
				return Value{}, err
			}
			vals[i] = int64(e.GetDurationValue().AsDuration())
		}
		a.ElementVariantType, a.Elements = vtR8, &mxgatewayv1.MxArray_Durations{Durations: &mxgatewayv1.DurationArray{Nanos: vals}}
	}
	return Value{p: &mxgatewayv1.MxValue{
		DataType:    dt,
		VariantType: vtArray | a.ElementVariantType,
		Kind:        &mxgatewayv1.MxValue_ArrayValue{ArrayValue: a},
	}}, nil
}

// ParseValue parses text for the data type dt, in the invariant culture:
// booleans true/false/1/0, integers in decimal, floats with '.', times in
// RFC 3339, elapsed times as Go durations ("1m30s") or seconds ("90.5").
// Arrays are written as comma-separated elements in brackets ("[1,2,3]").
func ParseValue(dt mxgatewayv1.MxDataType, s string) (Value, error) {
	if t := strings.TrimSpace(s); strings.HasPrefix(t, "[") && strings.HasSuffix(t, "]") {
		k, err := scalarKind(dt)
		if err != nil {
			return Value{}, err
		}
		inner := strings.TrimSpace(t[1 : len(t)-1])
		var parts []string
		if inner != "" {
			parts = strings.Split(inner, ",")
		}
		elems := make([]any, len(parts))
		for i, part := range parts {
			part = strings.TrimSpace(part)
			if k == kindString {
				if uq, err := strconv.Unquote(part); err == nil {
					part = uq
				}
			}
			v, err := ParseValue(dt, part)
			if err != nil {
				return Value{}, fmt.Errorf("element %d: %w", i, err)
			}
			elems[i] = v.Interface()
		}
		return convertAnySlice(dt, k, elems)
	}
	k, err := scalarKind(dt)
	if err != nil {
		return Value{}, err
	}
	bad := func(reason string) error { return convErr(strconv.Quote(s), dtName(dt), reason) }
	switch k {
	case kindBool:
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "true", "1", "on", "yes":
			return ConvertValue(dt, true)
		case "false", "0", "off", "no":
			return ConvertValue(dt, false)
		}
		return Value{}, bad("not a boolean (true/false)")
	case kindInt32:
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return Value{}, bad("not an integer")
		}
		return ConvertValue(dt, n)
	case kindFloat:
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 32)
		if err != nil {
			return Value{}, bad("not a float32 number")
		}
		return ConvertValue(dt, f)
	case kindDouble:
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return Value{}, bad("not a number")
		}
		return ConvertValue(dt, f)
	case kindString:
		return ConvertValue(dt, s)
	case kindTime:
		tm, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s))
		if err != nil {
			return Value{}, bad("not an RFC 3339 time")
		}
		return ConvertValue(dt, tm)
	case kindDuration:
		t := strings.TrimSpace(s)
		if d, err := time.ParseDuration(t); err == nil {
			return ConvertValue(dt, d)
		}
		f, err := strconv.ParseFloat(t, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > float64(math.MaxInt64)/float64(time.Second) {
			return Value{}, bad("not a duration (1m30s) or seconds")
		}
		return ConvertValue(dt, time.Duration(f*float64(time.Second)))
	}
	return Value{}, bad("unsupported")
}

func convertAnySlice(dt mxgatewayv1.MxDataType, k scalar, elems []any) (Value, error) {
	switch k {
	case kindBool:
		return ConvertValue(dt, collect[bool](elems))
	case kindInt32:
		return ConvertValue(dt, collect[int32](elems))
	case kindFloat:
		return ConvertValue(dt, collect[float32](elems))
	case kindDouble:
		return ConvertValue(dt, collect[float64](elems))
	case kindString:
		return ConvertValue(dt, collect[string](elems))
	case kindTime:
		return ConvertValue(dt, collect[time.Time](elems))
	default:
		return ConvertValue(dt, collect[time.Duration](elems))
	}
}

func collect[T any](elems []any) []T {
	out := make([]T, len(elems))
	for i, e := range elems {
		out[i], _ = e.(T)
	}
	return out
}

// ---------------------------------------------------------------------------
// MXAccess → Go

func (v Value) from() string {
	if v.IsNull() {
		return "null " + dtName(v.DataType())
	}
	if v.IsArray() {
		return dtName(v.DataType()) + " array"
	}
	return dtName(v.DataType())
}

// AsBool returns a boolean value.
func (v Value) AsBool() (bool, error) {
	if k, ok := v.p.GetKind().(*mxgatewayv1.MxValue_BoolValue); ok && !v.IsNull() {
		return k.BoolValue, nil
	}
	return false, convErr(v.from(), "bool", "not a boolean")
}

// AsInt64 returns an integer value, or a float value that is integral.
func (v Value) AsInt64() (int64, error) {
	if v.IsNull() {
		return 0, convErr(v.from(), "int64", "no value")
	}
	switch k := v.p.GetKind().(type) {
	case *mxgatewayv1.MxValue_Int32Value:
		return int64(k.Int32Value), nil
	case *mxgatewayv1.MxValue_Int64Value:
		return k.Int64Value, nil
	case *mxgatewayv1.MxValue_FloatValue:
		return floatToInt64(float64(k.FloatValue), v.from())
	case *mxgatewayv1.MxValue_DoubleValue:
		return floatToInt64(k.DoubleValue, v.from())
	}
	return 0, convErr(v.from(), "int64", "not a number")
}

func floatToInt64(f float64, from string) (int64, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) || f != math.Trunc(f) {
		return 0, convErr(from, "int64", "not an integral number")
	}
	if f < math.MinInt64 || f >= math.MaxInt64 {
		return 0, convErr(from, "int64", "outside the int64 range")
	}
	return int64(f), nil
}

// AsInt32 returns an integer value that fits in int32.
func (v Value) AsInt32() (int32, error) {
	i, err := v.AsInt64()
	if err != nil {
		return 0, err
	}
	if i < math.MinInt32 || i > math.MaxInt32 {
		return 0, convErr(v.from(), "int32", "outside the int32 range")
	}
	return int32(i), nil
}

// AsInt returns an integer value as int.
func (v Value) AsInt() (int, error) {
	i, err := v.AsInt64()
	if err != nil {
		return 0, err
	}
	if int64(int(i)) != i {
		return 0, convErr(v.from(), "int", "outside the int range")
	}
	return int(i), nil
}

// AsFloat64 returns a numeric value as float64; integers beyond 2^53 are an
// error because float64 cannot hold them exactly.
func (v Value) AsFloat64() (float64, error) {
	if v.IsNull() {
		return 0, convErr(v.from(), "float64", "no value")
	}
	switch k := v.p.GetKind().(type) {
	case *mxgatewayv1.MxValue_Int32Value:
		return float64(k.Int32Value), nil
	case *mxgatewayv1.MxValue_Int64Value:
		if k.Int64Value > 1<<53 || k.Int64Value < -(1<<53) {
			return 0, convErr(v.from(), "float64", "beyond 2^53 float64 cannot hold the integer exactly")
		}
		return float64(k.Int64Value), nil
	case *mxgatewayv1.MxValue_FloatValue:
		return float64(k.FloatValue), nil
	case *mxgatewayv1.MxValue_DoubleValue:
		return k.DoubleValue, nil
	}
	return 0, convErr(v.from(), "float64", "not a number")
}

// AsFloat32 returns a numeric value as float32 when that loses nothing: an
// MxFloat, a double that float32 holds exactly, or an integer up to 2^24.
func (v Value) AsFloat32() (float32, error) {
	if k, ok := v.p.GetKind().(*mxgatewayv1.MxValue_FloatValue); ok && !v.IsNull() {
		return k.FloatValue, nil
	}
	f, err := v.AsFloat64()
	if err != nil {
		return 0, err
	}
	if float64(float32(f)) != f && !math.IsNaN(f) {
		return 0, convErr(v.from(), "float32", "float32 cannot hold the value exactly")
	}
	return float32(f), nil
}

// AsString returns a string value (MxString, MxReferenceType, MxBigString and
// the other string-carried types). Use String to format any value.
func (v Value) AsString() (string, error) {
	if k, ok := v.p.GetKind().(*mxgatewayv1.MxValue_StringValue); ok && !v.IsNull() {
		return k.StringValue, nil
	}
	return "", convErr(v.from(), "string", "not a string")
}

// AsTime returns an MxTime value, in UTC.
func (v Value) AsTime() (time.Time, error) {
	if k, ok := v.p.GetKind().(*mxgatewayv1.MxValue_TimestampValue); ok && !v.IsNull() {
		return k.TimestampValue.AsTime().UTC(), nil
	}
	return time.Time{}, convErr(v.from(), "time.Time", "not a time")
}

// AsDuration returns an MxElapsedTime value; an elapsed time carried as
// seconds in a double (VT_R8) converts too.
func (v Value) AsDuration() (time.Duration, error) {
	if v.IsNull() {
		return 0, convErr(v.from(), "time.Duration", "no value")
	}
	switch k := v.p.GetKind().(type) {
	case *mxgatewayv1.MxValue_DurationValue:
		return k.DurationValue.AsDuration(), nil
	case *mxgatewayv1.MxValue_DoubleValue:
		if v.DataType() == mxgatewayv1.MxDataType_MX_DATA_TYPE_ELAPSED_TIME {
			return time.Duration(k.DoubleValue * float64(time.Second)), nil
		}
	}
	return 0, convErr(v.from(), "time.Duration", "not an elapsed time")
}

// Elements returns the elements of an array as scalar Values, in order. It
// returns nil for a scalar or null value.
func (v Value) Elements() []Value {
	a := v.p.GetArrayValue()
	if a == nil || v.IsNull() {
		return nil
	}
	dt := a.GetElementType()
	evt := a.GetElementVariantType()
	mk := func(set func(p *mxgatewayv1.MxValue)) Value {
		p := &mxgatewayv1.MxValue{DataType: dt, VariantType: evt}
		set(p)
		return Value{p: p}
	}
	var out []Value
	switch e := a.GetElements().(type) {
	case *mxgatewayv1.MxArray_Bools:
		for _, x := range e.Bools.GetValues() {
			out = append(out, mk(func(p *mxgatewayv1.MxValue) { p.Kind = &mxgatewayv1.MxValue_BoolValue{BoolValue: x} }))
		}
	case *mxgatewayv1.MxArray_Int32S:
		for _, x := range e.Int32S.GetValues() {
			out = append(out, mk(func(p *mxgatewayv1.MxValue) { p.Kind = &mxgatewayv1.MxValue_Int32Value{Int32Value: x} }))
		}
	case *mxgatewayv1.MxArray_Int64S:
		for _, x := range e.Int64S.GetValues() {
			out = append(out, mk(func(p *mxgatewayv1.MxValue) { p.Kind = &mxgatewayv1.MxValue_Int64Value{Int64Value: x} }))
		}
	case *mxgatewayv1.MxArray_Floats:
		for _, x := range e.Floats.GetValues() {
			out = append(out, mk(func(p *mxgatewayv1.MxValue) { p.Kind = &mxgatewayv1.MxValue_FloatValue{FloatValue: x} }))
		}
	case *mxgatewayv1.MxArray_Doubles:
		for _, x := range e.Doubles.GetValues() {
			out = append(out, mk(func(p *mxgatewayv1.MxValue) { p.Kind = &mxgatewayv1.MxValue_DoubleValue{DoubleValue: x} }))
		}
	case *mxgatewayv1.MxArray_Strings:
		for _, x := range e.Strings.GetValues() {
			out = append(out, mk(func(p *mxgatewayv1.MxValue) { p.Kind = &mxgatewayv1.MxValue_StringValue{StringValue: x} }))
		}
	case *mxgatewayv1.MxArray_Timestamps:
		for _, x := range e.Timestamps.GetUnixNanos() {
			out = append(out, mk(func(p *mxgatewayv1.MxValue) {
				p.Kind = &mxgatewayv1.MxValue_TimestampValue{TimestampValue: timestamppb.New(time.Unix(0, x).UTC())}
			}))
		}
	case *mxgatewayv1.MxArray_Durations:
		for _, x := range e.Durations.GetNanos() {
			out = append(out, mk(func(p *mxgatewayv1.MxValue) {
				p.Kind = &mxgatewayv1.MxValue_DurationValue{DurationValue: durationpb.New(time.Duration(x))}
			}))
		}
	}
	if out == nil {
		out = []Value{}
	}
	return out
}

func asSlice[T any](v Value, to string, f func(Value) (T, error)) ([]T, error) {
	if !v.IsArray() || v.IsNull() {
		return nil, convErr(v.from(), to, "not an array")
	}
	els := v.Elements()
	out := make([]T, len(els))
	for i, e := range els {
		x, err := f(e)
		if err != nil {
			return nil, fmt.Errorf("element %d: %w", i, err)
		}
		out[i] = x
	}
	return out, nil
}

// AsBools returns a boolean array.
func (v Value) AsBools() ([]bool, error) { return asSlice(v, "[]bool", Value.AsBool) }

// AsInt32s returns an integer array whose elements fit in int32.
func (v Value) AsInt32s() ([]int32, error) { return asSlice(v, "[]int32", Value.AsInt32) }

// AsInt64s returns an integer array.
func (v Value) AsInt64s() ([]int64, error) { return asSlice(v, "[]int64", Value.AsInt64) }

// AsInts returns an integer array as []int.
func (v Value) AsInts() ([]int, error) { return asSlice(v, "[]int", Value.AsInt) }

// AsFloat32s returns a numeric array as float32 when that loses nothing.
func (v Value) AsFloat32s() ([]float32, error) { return asSlice(v, "[]float32", Value.AsFloat32) }

// AsFloat64s returns a numeric array as float64.
func (v Value) AsFloat64s() ([]float64, error) { return asSlice(v, "[]float64", Value.AsFloat64) }

// AsStrings returns a string array.
func (v Value) AsStrings() ([]string, error) { return asSlice(v, "[]string", Value.AsString) }

// AsTimes returns a time array, in UTC.
func (v Value) AsTimes() ([]time.Time, error) { return asSlice(v, "[]time.Time", Value.AsTime) }

// AsDurations returns an elapsed-time array.
func (v Value) AsDurations() ([]time.Duration, error) {
	return asSlice(v, "[]time.Duration", Value.AsDuration)
}

// Interface returns the value as a plain Go value: nil, bool, int32, int64,
// float32, float64, string, time.Time, time.Duration, or a slice of one of
// those for an array.
func (v Value) Interface() any {
	if v.IsNull() {
		return nil
	}
	switch k := v.p.GetKind().(type) {
	case *mxgatewayv1.MxValue_BoolValue:
		return k.BoolValue
	case *mxgatewayv1.MxValue_Int32Value:
		return k.Int32Value
	case *mxgatewayv1.MxValue_Int64Value:
		return k.Int64Value
	case *mxgatewayv1.MxValue_FloatValue:
		return k.FloatValue
	case *mxgatewayv1.MxValue_DoubleValue:
		if v.DataType() == mxgatewayv1.MxDataType_MX_DATA_TYPE_ELAPSED_TIME {
			d, _ := v.AsDuration()
			return d
		}
		return k.DoubleValue
	case *mxgatewayv1.MxValue_StringValue:
		return k.StringValue
	case *mxgatewayv1.MxValue_TimestampValue:
		return k.TimestampValue.AsTime().UTC()
	case *mxgatewayv1.MxValue_DurationValue:
		return k.DurationValue.AsDuration()
	case *mxgatewayv1.MxValue_ArrayValue:
		switch e := k.ArrayValue.GetElements().(type) {
		case *mxgatewayv1.MxArray_Bools:
			return append([]bool{}, e.Bools.GetValues()...)
		case *mxgatewayv1.MxArray_Int32S:
			return append([]int32{}, e.Int32S.GetValues()...)
		case *mxgatewayv1.MxArray_Int64S:
			return append([]int64{}, e.Int64S.GetValues()...)
		case *mxgatewayv1.MxArray_Floats:
			return append([]float32{}, e.Floats.GetValues()...)
		case *mxgatewayv1.MxArray_Doubles:
			return append([]float64{}, e.Doubles.GetValues()...)
		case *mxgatewayv1.MxArray_Strings:
			return append([]string{}, e.Strings.GetValues()...)
		case *mxgatewayv1.MxArray_Timestamps:
			out, _ := v.AsTimes()
			return out
		case *mxgatewayv1.MxArray_Durations:
			out, _ := v.AsDurations()
			return out
		}
		return []any{}
	}
	return nil
}

// String formats the value for people: numbers in their shortest exact form,
// times in RFC 3339 UTC, arrays in brackets, strings in an array quoted, and
// "null" for no value.
func (v Value) String() string {
	if v.IsNull() {
		return "null"
	}
	if v.IsArray() {
		els := v.Elements()
		parts := make([]string, len(els))
		for i, e := range els {
			if s, err := e.AsString(); err == nil {
				parts[i] = strconv.Quote(s)
			} else {
				parts[i] = e.String()
			}
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	switch x := v.Interface().(type) {
	case bool:
		return strconv.FormatBool(x)
	case int32:
		return strconv.FormatInt(int64(x), 10)
	case int64:
		return strconv.FormatInt(x, 10)
	case float32:
		return strconv.FormatFloat(float64(x), 'g', -1, 32)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case string:
		return x
	case time.Time:
		return x.Format(time.RFC3339Nano)
	case time.Duration:
		return x.String()
	}
	return fmt.Sprint(v.Interface())
}

// MarshalJSON encodes the plain Go value: JSON numbers, strings and booleans,
// times as RFC 3339 strings, elapsed times as Go duration strings, arrays as
// JSON arrays, null for no value, and NaN or infinities as strings.
func (v Value) MarshalJSON() ([]byte, error) {
	return json.Marshal(jsonable(v))
}

func jsonable(v Value) any {
	if v.IsArray() && !v.IsNull() {
		els := v.Elements()
		out := make([]any, len(els))
		for i, e := range els {
			out[i] = jsonable(e)
		}
		return out
	}
	switch x := v.Interface().(type) {
	case float32:
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return v.String()
		}
		return json.Number(v.String())
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return v.String()
		}
		return json.Number(v.String())
	case time.Duration:
		return x.String()
	default:
		return x
	}
}
