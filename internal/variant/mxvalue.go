package variant

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/mxtypes"
)

// DataTypeOf infers the MxDataType a VARIANT type stands for (see
// mxtypes.DataTypeOf).
func DataTypeOf(vt VT) mxgatewayv1.MxDataType { return mxtypes.DataTypeOf(vt) }

// ToMxValue converts a decoded VARIANT to the wire value. VT_DATE is read
// as wall-clock time in loc and sent as UTC. Nothing fails: a value that
// cannot be represented exactly keeps its VARIANT type and gets a
// diagnostic with the raw form (parity principle 5).
func ToMxValue(v Value, loc *time.Location) *mxgatewayv1.MxValue {
	out := &mxgatewayv1.MxValue{
		DataType:    DataTypeOf(v.VT),
		VariantType: uint32(v.VT),
	}
	if v.RawVT != v.VT && v.RawVT != 0 {
		out.Diagnostic = "received as " + v.RawVT.String()
	}
	note := func(format string, args ...any) {
		d := fmt.Sprintf(format, args...)
		if out.Diagnostic != "" {
			d = out.Diagnostic + "; " + d
		}
		out.Diagnostic = d
	}
	if v.VT.IsArray() {
		arr, diag := toMxArray(v, loc)
		out.Kind = &mxgatewayv1.MxValue_ArrayValue{ArrayValue: arr}
		out.DataType = arr.ElementType
		if diag != "" {
			note("%s", diag)
		}
		return out
	}
	switch v.VT {
	case VT_EMPTY, VT_NULL:
		out.IsNull = true
	case VT_BOOL:
		b := uint16(v.Bits)
		out.Kind = &mxgatewayv1.MxValue_BoolValue{BoolValue: b != 0}
		if b != 0 && b != 0xFFFF {
			note("VT_BOOL raw 0x%04X", b)
		}
	case VT_I1, VT_UI1, VT_I2, VT_UI2, VT_I4, VT_INT, VT_UI4, VT_UINT, VT_I8, VT_ERROR:
		i, _ := v.Int()
		if i >= math.MinInt32 && i <= math.MaxInt32 {
			out.Kind = &mxgatewayv1.MxValue_Int32Value{Int32Value: int32(i)}
		} else {
			out.Kind = &mxgatewayv1.MxValue_Int64Value{Int64Value: i}
		}
		if v.VT == VT_ERROR {
			note("VT_ERROR scode 0x%08X", uint32(v.Bits))
		}
	case VT_UI8:
		if v.Bits <= math.MaxInt32 {
			out.Kind = &mxgatewayv1.MxValue_Int32Value{Int32Value: int32(v.Bits)}
		} else {
			out.Kind = &mxgatewayv1.MxValue_Int64Value{Int64Value: int64(v.Bits)}
			if v.Bits > math.MaxInt64 {
				note("VT_UI8 %d does not fit int64; raw bits kept", v.Bits)
			}
		}
	case VT_R4:
		out.Kind = &mxgatewayv1.MxValue_FloatValue{FloatValue: math.Float32frombits(uint32(v.Bits))}
	case VT_R8:
		out.Kind = &mxgatewayv1.MxValue_DoubleValue{DoubleValue: math.Float64frombits(v.Bits)}
	case VT_CY:
		// Currency: int64 scaled by 10,000.
		out.Kind = &mxgatewayv1.MxValue_DoubleValue{DoubleValue: float64(int64(v.Bits)) / 10000}
		note("VT_CY raw %d", int64(v.Bits))
	case VT_DECIMAL:
		f, raw := decimalToFloat(v.Raw)
		out.Kind = &mxgatewayv1.MxValue_DoubleValue{DoubleValue: f}
		note("VT_DECIMAL raw %s", raw)
	case VT_BSTR:
		out.Kind = &mxgatewayv1.MxValue_StringValue{StringValue: v.Str}
	case VT_DATE:
		oa := math.Float64frombits(v.Bits)
		t, err := FromOADate(oa, loc)
		if err != nil {
			out.Kind = &mxgatewayv1.MxValue_DoubleValue{DoubleValue: oa}
			note("VT_DATE %v out of range", oa)
		} else {
			out.Kind = &mxgatewayv1.MxValue_TimestampValue{TimestampValue: timestamppb.New(t)}
		}
	case VT_FILETIME:
		out.Kind = &mxgatewayv1.MxValue_TimestampValue{TimestampValue: timestamppb.New(FromFILETIME(v.Bits))}
	default:
		out.DataType = mxgatewayv1.MxDataType_MX_DATA_TYPE_UNKNOWN
		note("unsupported VARIANT type %s: %s", v.VT, v.String())
	}
	return out
}

func toMxArray(v Value, loc *time.Location) (*mxgatewayv1.MxArray, string) {
	a := v.Array
	if a == nil {
		a = &Array{ElemVT: v.VT.Base()}
	}
	out := &mxgatewayv1.MxArray{ElementType: DataTypeOf(a.ElemVT), ElementVariantType: uint32(a.ElemVT)}
	var diags []string
	if len(a.Header.Bounds) > 1 {
		diags = append(diags, fmt.Sprintf("%d-dimensional SAFEARRAY flattened in memory order", len(a.Header.Bounds)))
	}
	if len(a.Header.Bounds) == 1 && a.Header.Bounds[0].Lower != 0 {
		diags = append(diags, fmt.Sprintf("lower bound %d", a.Header.Bounds[0].Lower))
	}
	elems := a.Elems
	elemVT := a.ElemVT
	if elemVT == VT_VARIANT && len(elems) > 0 {
		// A VARIANT array whose elements share one type is that type's array;
		// mixed types cannot be packed and keep only a diagnostic.
		first := elems[0].VT
		for _, e := range elems[1:] {
			if e.VT != first {
				diags = append(diags, "VT_ARRAY|VT_VARIANT with mixed element types "+mixedTypes(elems))
				out.ElementType = mxgatewayv1.MxDataType_MX_DATA_TYPE_UNKNOWN
				return out, strings.Join(diags, "; ")
			}
		}
		elemVT = first
		out.ElementType = DataTypeOf(elemVT)
		diags = append(diags, "elements were VT_VARIANT("+first.String()+")")
	}
	switch elemVT {
	case VT_BOOL:
		vals := make([]bool, len(elems))
		for i, e := range elems {
			vals[i] = uint16(e.Bits) != 0
		}
		out.Elements = &mxgatewayv1.MxArray_Bools{Bools: &mxgatewayv1.BoolArray{Values: vals}}
	case VT_I1, VT_UI1, VT_I2, VT_UI2, VT_I4, VT_INT:
		vals := make([]int32, len(elems))
		for i, e := range elems {
			n, _ := e.Int()
			vals[i] = int32(n)
		}
		out.Elements = &mxgatewayv1.MxArray_Int32S{Int32S: &mxgatewayv1.Int32Array{Values: vals}}
	case VT_UI4, VT_UINT, VT_I8, VT_UI8:
		vals := make([]int64, len(elems))
		for i, e := range elems {
			vals[i] = int64(e.Bits)
			if n, ok := e.Int(); ok {
				vals[i] = n
			}
		}
		out.Elements = &mxgatewayv1.MxArray_Int64S{Int64S: &mxgatewayv1.Int64Array{Values: vals}}
	case VT_R4:
		vals := make([]float32, len(elems))
		for i, e := range elems {
			vals[i] = math.Float32frombits(uint32(e.Bits))
		}
		out.Elements = &mxgatewayv1.MxArray_Floats{Floats: &mxgatewayv1.FloatArray{Values: vals}}
	case VT_R8:
		vals := make([]float64, len(elems))
		for i, e := range elems {
			vals[i] = math.Float64frombits(e.Bits)
		}
		out.Elements = &mxgatewayv1.MxArray_Doubles{Doubles: &mxgatewayv1.DoubleArray{Values: vals}}
	case VT_BSTR:
		vals := make([]string, len(elems))
		for i, e := range elems {
			vals[i] = e.Str
		}
		out.Elements = &mxgatewayv1.MxArray_Strings{Strings: &mxgatewayv1.StringArray{Values: vals}}
	case VT_DATE:
		vals := make([]int64, len(elems))
		for i, e := range elems {
			t, err := FromOADate(math.Float64frombits(e.Bits), loc)
			if err != nil {
				diags = append(diags, fmt.Sprintf("element %d: %v", i, err))
				continue
			}
			vals[i] = t.UnixNano()
		}
		out.Elements = &mxgatewayv1.MxArray_Timestamps{Timestamps: &mxgatewayv1.TimestampArray{UnixNanos: vals}}
	default:
		out.ElementType = mxgatewayv1.MxDataType_MX_DATA_TYPE_UNKNOWN
		diags = append(diags, "unsupported array element type "+elemVT.String())
	}
	return out, strings.Join(diags, "; ")
}

func mixedTypes(elems []Value) string {
	seen := map[VT]bool{}
	var names []string
	for _, e := range elems {
		if !seen[e.VT] {
			seen[e.VT] = true
			names = append(names, e.VT.String())
		}
	}
	return "(" + strings.Join(names, ", ") + ")"
}

// decimalToFloat converts a DECIMAL (wReserved@0, scale@2, sign@3,
// Hi32@4, Lo64@8) to float64, returning its raw hex too.
func decimalToFloat(b []byte) (float64, string) {
	if len(b) != 16 {
		return 0, fmt.Sprintf("% X", b)
	}
	scale := b[2]
	neg := b[3]&0x80 != 0
	hi := uint64(b[4]) | uint64(b[5])<<8 | uint64(b[6])<<16 | uint64(b[7])<<24
	var lo uint64
	for i := 7; i >= 0; i-- {
		lo = lo<<8 | uint64(b[8+i])
	}
	f := (float64(hi)*math.Pow(2, 64) + float64(lo)) / math.Pow(10, float64(scale))
	if neg {
		f = -f
	}
	return f, fmt.Sprintf("% X", b)
}

// ErrNotConvertible is returned by FromMxValue when a value cannot be
// expressed as the requested VARIANT type without loss.
var ErrNotConvertible = errors.New("variant: value not convertible")

// NaturalVT returns the VARIANT type a wire value travels as when nothing
// else decides it: its own variant_type if set, else the type MXACCESS.md
// §5.3 gives its data type, else the type of its oneof.
func NaturalVT(v *mxgatewayv1.MxValue) VT {
	if v.GetVariantType() != 0 {
		return VT(v.GetVariantType())
	}
	if v.GetIsNull() {
		return VT_EMPTY
	}
	if a := v.GetArrayValue(); a != nil {
		if a.GetElementVariantType() != 0 {
			return VT_ARRAY | VT(a.GetElementVariantType())
		}
		return VT_ARRAY | naturalArrayElem(a)
	}
	switch v.GetDataType() {
	case mxgatewayv1.MxDataType_MX_DATA_TYPE_BOOLEAN:
		return VT_BOOL
	case mxgatewayv1.MxDataType_MX_DATA_TYPE_INTEGER, mxgatewayv1.MxDataType_MX_DATA_TYPE_STATUS,
		mxgatewayv1.MxDataType_MX_DATA_TYPE_DATA_TYPE_ENUM, mxgatewayv1.MxDataType_MX_DATA_TYPE_SECURITY_CLASSIFICATION_ENUM,
		mxgatewayv1.MxDataType_MX_DATA_TYPE_DATA_QUALITY:
		return VT_I4
	case mxgatewayv1.MxDataType_MX_DATA_TYPE_FLOAT:
		return VT_R4
	case mxgatewayv1.MxDataType_MX_DATA_TYPE_DOUBLE, mxgatewayv1.MxDataType_MX_DATA_TYPE_ELAPSED_TIME:
		return VT_R8
	case mxgatewayv1.MxDataType_MX_DATA_TYPE_STRING, mxgatewayv1.MxDataType_MX_DATA_TYPE_REFERENCE,
		mxgatewayv1.MxDataType_MX_DATA_TYPE_INTERNATIONALIZED_STRING, mxgatewayv1.MxDataType_MX_DATA_TYPE_BIG_STRING,
		mxgatewayv1.MxDataType_MX_DATA_TYPE_QUALIFIED_ENUM:
		return VT_BSTR
	case mxgatewayv1.MxDataType_MX_DATA_TYPE_TIME:
		return VT_DATE
	}
	switch v.GetKind().(type) {
	case *mxgatewayv1.MxValue_BoolValue:
		return VT_BOOL
	case *mxgatewayv1.MxValue_Int32Value:
		return VT_I4
	case *mxgatewayv1.MxValue_Int64Value:
		return VT_I4 // MXAccess has no 64-bit integer; must fit or is refused
	case *mxgatewayv1.MxValue_FloatValue:
		return VT_R4
	case *mxgatewayv1.MxValue_DoubleValue, *mxgatewayv1.MxValue_DurationValue:
		return VT_R8
	case *mxgatewayv1.MxValue_StringValue:
		return VT_BSTR
	case *mxgatewayv1.MxValue_TimestampValue:
		return VT_DATE
	}
	return VT_EMPTY
}

func naturalArrayElem(a *mxgatewayv1.MxArray) VT {
	switch a.GetElements().(type) {
	case *mxgatewayv1.MxArray_Bools:
		return VT_BOOL
	case *mxgatewayv1.MxArray_Int32S, *mxgatewayv1.MxArray_Int64S:
		return VT_I4
	case *mxgatewayv1.MxArray_Floats:
		return VT_R4
	case *mxgatewayv1.MxArray_Doubles, *mxgatewayv1.MxArray_Durations:
		return VT_R8
	case *mxgatewayv1.MxArray_Strings:
		return VT_BSTR
	case *mxgatewayv1.MxArray_Timestamps:
		return VT_DATE
	}
	switch a.GetElementType() {
	case mxgatewayv1.MxDataType_MX_DATA_TYPE_BOOLEAN:
		return VT_BOOL
	case mxgatewayv1.MxDataType_MX_DATA_TYPE_FLOAT:
		return VT_R4
	case mxgatewayv1.MxDataType_MX_DATA_TYPE_DOUBLE:
		return VT_R8
	case mxgatewayv1.MxDataType_MX_DATA_TYPE_STRING:
		return VT_BSTR
	case mxgatewayv1.MxDataType_MX_DATA_TYPE_TIME:
		return VT_DATE
	}
	return VT_I4
}

// FromMxValue converts a wire value to a Value of VARIANT type target (the
// attribute's own type when known; 0 means NaturalVT). Conversions are
// lossless only: an integer into VT_R8 is fine, 2.5 into VT_I4 is not;
// strings are never parsed (locale rules belong to MXAccess, which refuses
// with E_INVALIDARG). Times are written as wall-clock time in loc.
func FromMxValue(v *mxgatewayv1.MxValue, target VT, loc *time.Location) (Value, error) {
	if v == nil {
		return Value{}, fmt.Errorf("%w: no value", ErrNotConvertible)
	}
	if target == 0 {
		target = NaturalVT(v)
	}
	if target.IsByRef() {
		return Value{}, fmt.Errorf("%w: %s", ErrNotConvertible, target)
	}
	if v.GetIsNull() || (v.GetKind() == nil && target == VT_EMPTY) {
		if target != VT_EMPTY && target != VT_NULL {
			return Value{}, fmt.Errorf("%w: null value as %s", ErrNotConvertible, target)
		}
		return Value{VT: target, RawVT: target}, nil
	}
	if target.IsArray() {
		a := v.GetArrayValue()
		if a == nil {
			return Value{}, fmt.Errorf("%w: scalar value as %s", ErrNotConvertible, target)
		}
		elems, err := arrayElems(a, target.Base(), loc)
		if err != nil {
			return Value{}, err
		}
		return NewArray(target.Base(), elems), nil
	}
	if v.GetArrayValue() != nil {
		return Value{}, fmt.Errorf("%w: array value as %s", ErrNotConvertible, target)
	}
	s, err := scalarOf(v)
	if err != nil {
		return Value{}, err
	}
	return s.to(target, loc)
}

// scalar is a wire scalar in a normal form for conversion.
type scalar struct {
	kind string // "bool", "int", "float", "string", "time", "duration"
	b    bool
	i    int64
	f    float64
	s    string
	t    time.Time
	d    time.Duration
}

func scalarOf(v *mxgatewayv1.MxValue) (scalar, error) {
	switch k := v.GetKind().(type) {
	case *mxgatewayv1.MxValue_BoolValue:
		return scalar{kind: "bool", b: k.BoolValue}, nil
	case *mxgatewayv1.MxValue_Int32Value:
		return scalar{kind: "int", i: int64(k.Int32Value)}, nil
	case *mxgatewayv1.MxValue_Int64Value:
		return scalar{kind: "int", i: k.Int64Value}, nil
	case *mxgatewayv1.MxValue_FloatValue:
		return scalar{kind: "float", f: float64(k.FloatValue)}, nil
	case *mxgatewayv1.MxValue_DoubleValue:
		return scalar{kind: "float", f: k.DoubleValue}, nil
	case *mxgatewayv1.MxValue_StringValue:
		return scalar{kind: "string", s: k.StringValue}, nil
	case *mxgatewayv1.MxValue_TimestampValue:
		if err := k.TimestampValue.CheckValid(); err != nil {
			return scalar{}, fmt.Errorf("%w: %v", ErrNotConvertible, err)
		}
		return scalar{kind: "time", t: k.TimestampValue.AsTime()}, nil
	case *mxgatewayv1.MxValue_DurationValue:
		if err := k.DurationValue.CheckValid(); err != nil {
			return scalar{}, fmt.Errorf("%w: %v", ErrNotConvertible, err)
		}
		return scalar{kind: "duration", d: k.DurationValue.AsDuration()}, nil
	}
	return scalar{}, fmt.Errorf("%w: value has no kind", ErrNotConvertible)
}

func (s scalar) to(vt VT, loc *time.Location) (Value, error) {
	fail := func() (Value, error) {
		return Value{}, fmt.Errorf("%w: %s value as %s", ErrNotConvertible, s.kind, vt)
	}
	// Integral view of the scalar, when it has an exact one.
	asInt := func() (int64, bool) {
		switch s.kind {
		case "int":
			return s.i, true
		case "float":
			if s.f == math.Trunc(s.f) && math.Abs(s.f) < 1<<63 {
				return int64(s.f), true
			}
		}
		return 0, false
	}
	asFloat := func() (float64, bool) {
		switch s.kind {
		case "float":
			return s.f, true
		case "int":
			f := float64(s.i)
			if int64(f) == s.i && math.Abs(f) <= 1<<53 {
				return f, true
			}
		case "duration":
			// [unverified] MxElapsedTime as seconds (the simulator's convention).
			return s.d.Seconds(), true
		}
		return 0, false
	}
	inRange := func(i, lo, hi int64) bool { return i >= lo && i <= hi }
	switch vt {
	case VT_BOOL:
		if s.kind != "bool" {
			return fail()
		}
		return Bool(s.b), nil
	case VT_I1, VT_I2, VT_I4, VT_INT, VT_UI1, VT_UI2, VT_UI4, VT_UINT, VT_I8, VT_UI8:
		i, ok := asInt()
		if !ok {
			return fail()
		}
		lim := map[VT][2]int64{
			VT_I1: {math.MinInt8, math.MaxInt8}, VT_I2: {math.MinInt16, math.MaxInt16},
			VT_I4: {math.MinInt32, math.MaxInt32}, VT_INT: {math.MinInt32, math.MaxInt32},
			VT_UI1: {0, math.MaxUint8}, VT_UI2: {0, math.MaxUint16},
			VT_UI4: {0, math.MaxUint32}, VT_UINT: {0, math.MaxUint32},
			VT_I8: {math.MinInt64, math.MaxInt64}, VT_UI8: {0, math.MaxInt64},
		}[vt]
		if !inRange(i, lim[0], lim[1]) {
			return Value{}, fmt.Errorf("%w: %d out of range for %s", ErrNotConvertible, i, vt)
		}
		return Scalar(vt, uint64(i)&maskOf(vt)), nil
	case VT_R4:
		f, ok := asFloat()
		if !ok {
			return fail()
		}
		f32 := float32(f)
		if float64(f32) != f && !math.IsNaN(f) {
			return Value{}, fmt.Errorf("%w: %v is not exact as VT_R4", ErrNotConvertible, f)
		}
		return Float32(f32), nil
	case VT_R8:
		f, ok := asFloat()
		if !ok {
			return fail()
		}
		return Float64(f), nil
	case VT_BSTR:
		if s.kind != "string" {
			return fail()
		}
		return BSTR(s.s), nil
	case VT_DATE:
		if s.kind != "time" {
			return fail()
		}
		oa, err := ToOADate(s.t, loc)
		if err != nil {
			return Value{}, err
		}
		return Date(oa), nil
	}
	return fail()
}

func maskOf(vt VT) uint64 {
	switch elemSize(vt) {
	case 1:
		return 0xFF
	case 2:
		return 0xFFFF
	case 4:
		return 0xFFFFFFFF
	}
	return math.MaxUint64
}

func arrayElems(a *mxgatewayv1.MxArray, elemVT VT, loc *time.Location) ([]Value, error) {
	var ss []scalar
	switch e := a.GetElements().(type) {
	case nil:
	case *mxgatewayv1.MxArray_Bools:
		for _, x := range e.Bools.GetValues() {
			ss = append(ss, scalar{kind: "bool", b: x})
		}
	case *mxgatewayv1.MxArray_Int32S:
		for _, x := range e.Int32S.GetValues() {
			ss = append(ss, scalar{kind: "int", i: int64(x)})
		}
	case *mxgatewayv1.MxArray_Int64S:
		for _, x := range e.Int64S.GetValues() {
			ss = append(ss, scalar{kind: "int", i: x})
		}
	case *mxgatewayv1.MxArray_Floats:
		for _, x := range e.Floats.GetValues() {
			ss = append(ss, scalar{kind: "float", f: float64(x)})
		}
	case *mxgatewayv1.MxArray_Doubles:
		for _, x := range e.Doubles.GetValues() {
			ss = append(ss, scalar{kind: "float", f: x})
		}
	case *mxgatewayv1.MxArray_Strings:
		for _, x := range e.Strings.GetValues() {
			ss = append(ss, scalar{kind: "string", s: x})
		}
	case *mxgatewayv1.MxArray_Timestamps:
		for _, x := range e.Timestamps.GetUnixNanos() {
			ss = append(ss, scalar{kind: "time", t: time.Unix(0, x).UTC()})
		}
	case *mxgatewayv1.MxArray_Durations:
		for _, x := range e.Durations.GetNanos() {
			ss = append(ss, scalar{kind: "duration", d: time.Duration(x)})
		}
	}
	if len(ss) > MaxArrayElements {
		return nil, fmt.Errorf("%w: %d elements", ErrTooLarge, len(ss))
	}
	out := make([]Value, len(ss))
	for i, s := range ss {
		v, err := s.to(elemVT, loc)
		if err != nil {
			return nil, fmt.Errorf("element %d: %w", i, err)
		}
		out[i] = v
	}
	return out, nil
}
