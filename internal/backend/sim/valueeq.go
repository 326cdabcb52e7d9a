package sim

import (
	"slices"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
)

// Typed value comparison and copy. Every generated value and every write is
// compared with the attribute's current value, and every delivered value is
// copied into its event: proto.Equal and proto.Clone walk the message by
// reflection, which made them the largest CPU cost of an event storm. These
// functions do the same job field by field and agree with proto.Equal and
// proto.Clone on every MxValue (valueeq_test.go checks it), including the
// corner cases of the generated API:
//
//   - a typed-nil oneof wrapper (Kind: (*MxValue_BoolValue)(nil)) is unset;
//   - a oneof wrapper holding a nil message (a nil Timestamp, MxArray or
//     element list) equals one holding the empty message;
//   - floats compare with ==, except that NaN equals NaN (as proto.Equal):
//     a value that stays NaN is not a change and does not fire every tick,
//     while NaN against a number is a change; -0 equals +0;
//   - unknown fields (from a newer peer) count: a value carrying any falls
//     back to proto.Equal / proto.Clone, which handle them.
//
// A new field in MxValue or MxArray must be added here; TestValueEqualCoversFields
// fails until it is.

// valueEqual reports whether a and b are equal in the sense of proto.Equal.
func valueEqual(a, b *mxgatewayv1.MxValue) bool {
	if a == b {
		return true
	}
	if a == nil || b == nil {
		return false
	}
	if a.DataType != b.DataType || a.VariantType != b.VariantType || a.IsNull != b.IsNull || a.Diagnostic != b.Diagnostic {
		return false
	}
	// Two integers that differ are unequal whatever unknown fields either
	// carries (proto.Equal finds them unequal too): a storm's changes skip
	// the unknown-field look-ups.
	if x, ok := a.Kind.(*mxgatewayv1.MxValue_Int32Value); ok && x != nil {
		if y, ok := b.Kind.(*mxgatewayv1.MxValue_Int32Value); ok && y != nil && x.Int32Value != y.Int32Value {
			return false
		}
	}
	if valueHasUnknown(a) || valueHasUnknown(b) {
		return proto.Equal(a, b)
	}
	switch x := a.Kind.(type) {
	case nil:
		return kindUnset(b)
	case *mxgatewayv1.MxValue_BoolValue:
		if x == nil {
			return kindUnset(b)
		}
		y, ok := b.Kind.(*mxgatewayv1.MxValue_BoolValue)
		return ok && y != nil && x.BoolValue == y.BoolValue
	case *mxgatewayv1.MxValue_Int32Value:
		if x == nil {
			return kindUnset(b)
		}
		y, ok := b.Kind.(*mxgatewayv1.MxValue_Int32Value)
		return ok && y != nil && x.Int32Value == y.Int32Value
	case *mxgatewayv1.MxValue_Int64Value:
		if x == nil {
			return kindUnset(b)
		}
		y, ok := b.Kind.(*mxgatewayv1.MxValue_Int64Value)
		return ok && y != nil && x.Int64Value == y.Int64Value
	case *mxgatewayv1.MxValue_FloatValue:
		if x == nil {
			return kindUnset(b)
		}
		y, ok := b.Kind.(*mxgatewayv1.MxValue_FloatValue)
		return ok && y != nil && floatEqual(float64(x.FloatValue), float64(y.FloatValue))
	case *mxgatewayv1.MxValue_DoubleValue:
		if x == nil {
			return kindUnset(b)
		}
		y, ok := b.Kind.(*mxgatewayv1.MxValue_DoubleValue)
		return ok && y != nil && floatEqual(x.DoubleValue, y.DoubleValue)
	case *mxgatewayv1.MxValue_StringValue:
		if x == nil {
			return kindUnset(b)
		}
		y, ok := b.Kind.(*mxgatewayv1.MxValue_StringValue)
		return ok && y != nil && x.StringValue == y.StringValue
	case *mxgatewayv1.MxValue_TimestampValue:
		if x == nil {
			return kindUnset(b)
		}
		y, ok := b.Kind.(*mxgatewayv1.MxValue_TimestampValue)
		// Getters read a nil message as the empty one, as proto.Equal does
		// inside a oneof.
		return ok && y != nil && x.TimestampValue.GetSeconds() == y.TimestampValue.GetSeconds() &&
			x.TimestampValue.GetNanos() == y.TimestampValue.GetNanos()
	case *mxgatewayv1.MxValue_DurationValue:
		if x == nil {
			return kindUnset(b)
		}
		y, ok := b.Kind.(*mxgatewayv1.MxValue_DurationValue)
		return ok && y != nil && x.DurationValue.GetSeconds() == y.DurationValue.GetSeconds() &&
			x.DurationValue.GetNanos() == y.DurationValue.GetNanos()
	case *mxgatewayv1.MxValue_ArrayValue:
		if x == nil {
			return kindUnset(b)
		}
		y, ok := b.Kind.(*mxgatewayv1.MxValue_ArrayValue)
		return ok && y != nil && arrayEqual(x.ArrayValue, y.ArrayValue)
	}
	return proto.Equal(a, b) // a kind this file does not know yet
}

// kindUnset reports whether v's oneof is unset (nil, or a typed-nil wrapper).
func kindUnset(v *mxgatewayv1.MxValue) bool {
	switch k := v.Kind.(type) {
	case nil:
		return true
	case *mxgatewayv1.MxValue_BoolValue:
		return k == nil
	case *mxgatewayv1.MxValue_Int32Value:
		return k == nil
	case *mxgatewayv1.MxValue_Int64Value:
		return k == nil
	case *mxgatewayv1.MxValue_FloatValue:
		return k == nil
	case *mxgatewayv1.MxValue_DoubleValue:
		return k == nil
	case *mxgatewayv1.MxValue_StringValue:
		return k == nil
	case *mxgatewayv1.MxValue_TimestampValue:
		return k == nil
	case *mxgatewayv1.MxValue_DurationValue:
		return k == nil
	case *mxgatewayv1.MxValue_ArrayValue:
		return k == nil
	}
	return false
}

// floatEqual is proto.Equal's float rule: == (so -0 equals +0), and NaN
// equals NaN.
func floatEqual(x, y float64) bool {
	return x == y || (x != x && y != y)
}

// arrayEqual compares two arrays; nil reads as the empty array. The caller
// has checked that neither carries unknown fields.
func arrayEqual(a, b *mxgatewayv1.MxArray) bool {
	if a.GetElementType() != b.GetElementType() || a.GetElementVariantType() != b.GetElementVariantType() {
		return false
	}
	var ea, eb any
	if a != nil {
		ea = a.Elements
	}
	if b != nil {
		eb = b.Elements
	}
	switch x := ea.(type) {
	case nil:
		return elementsUnset(eb)
	case *mxgatewayv1.MxArray_Bools:
		if x == nil {
			return elementsUnset(eb)
		}
		y, ok := eb.(*mxgatewayv1.MxArray_Bools)
		return ok && y != nil && slices.Equal(x.Bools.GetValues(), y.Bools.GetValues())
	case *mxgatewayv1.MxArray_Int32S:
		if x == nil {
			return elementsUnset(eb)
		}
		y, ok := eb.(*mxgatewayv1.MxArray_Int32S)
		return ok && y != nil && slices.Equal(x.Int32S.GetValues(), y.Int32S.GetValues())
	case *mxgatewayv1.MxArray_Int64S:
		if x == nil {
			return elementsUnset(eb)
		}
		y, ok := eb.(*mxgatewayv1.MxArray_Int64S)
		return ok && y != nil && slices.Equal(x.Int64S.GetValues(), y.Int64S.GetValues())
	case *mxgatewayv1.MxArray_Floats:
		if x == nil {
			return elementsUnset(eb)
		}
		y, ok := eb.(*mxgatewayv1.MxArray_Floats)
		return ok && y != nil && slices.EqualFunc(x.Floats.GetValues(), y.Floats.GetValues(),
			func(p, q float32) bool { return floatEqual(float64(p), float64(q)) })
	case *mxgatewayv1.MxArray_Doubles:
		if x == nil {
			return elementsUnset(eb)
		}
		y, ok := eb.(*mxgatewayv1.MxArray_Doubles)
		return ok && y != nil && slices.EqualFunc(x.Doubles.GetValues(), y.Doubles.GetValues(), floatEqual)
	case *mxgatewayv1.MxArray_Strings:
		if x == nil {
			return elementsUnset(eb)
		}
		y, ok := eb.(*mxgatewayv1.MxArray_Strings)
		return ok && y != nil && slices.Equal(x.Strings.GetValues(), y.Strings.GetValues())
	case *mxgatewayv1.MxArray_Timestamps:
		if x == nil {
			return elementsUnset(eb)
		}
		y, ok := eb.(*mxgatewayv1.MxArray_Timestamps)
		return ok && y != nil && slices.Equal(x.Timestamps.GetUnixNanos(), y.Timestamps.GetUnixNanos())
	case *mxgatewayv1.MxArray_Durations:
		if x == nil {
			return elementsUnset(eb)
		}
		y, ok := eb.(*mxgatewayv1.MxArray_Durations)
		return ok && y != nil && slices.Equal(x.Durations.GetNanos(), y.Durations.GetNanos())
	}
	return proto.Equal(a, b) // an element kind this file does not know yet
}

// elementsUnset reports whether an MxArray's elements oneof (passed as any)
// is unset (nil, or a typed-nil wrapper).
func elementsUnset(e any) bool {
	switch k := e.(type) {
	case nil:
		return true
	case *mxgatewayv1.MxArray_Bools:
		return k == nil
	case *mxgatewayv1.MxArray_Int32S:
		return k == nil
	case *mxgatewayv1.MxArray_Int64S:
		return k == nil
	case *mxgatewayv1.MxArray_Floats:
		return k == nil
	case *mxgatewayv1.MxArray_Doubles:
		return k == nil
	case *mxgatewayv1.MxArray_Strings:
		return k == nil
	case *mxgatewayv1.MxArray_Timestamps:
		return k == nil
	case *mxgatewayv1.MxArray_Durations:
		return k == nil
	}
	return false
}

// hasUnknown reports whether m (which may be a typed nil) carries unknown
// fields.
func hasUnknown[M interface {
	comparable
	proto.Message
}](m M) bool {
	var zero M
	return m != zero && len(m.ProtoReflect().GetUnknown()) > 0
}

// valueHasUnknown reports whether v or any message inside it carries
// unknown fields.
func valueHasUnknown(v *mxgatewayv1.MxValue) bool {
	if hasUnknown(v) {
		return true
	}
	switch k := v.Kind.(type) {
	case *mxgatewayv1.MxValue_TimestampValue:
		return k != nil && hasUnknown(k.TimestampValue)
	case *mxgatewayv1.MxValue_DurationValue:
		return k != nil && hasUnknown(k.DurationValue)
	case *mxgatewayv1.MxValue_ArrayValue:
		if k == nil || k.ArrayValue == nil {
			return false
		}
		a := k.ArrayValue
		if hasUnknown(a) {
			return true
		}
		switch e := a.Elements.(type) {
		case *mxgatewayv1.MxArray_Bools:
			return e != nil && hasUnknown(e.Bools)
		case *mxgatewayv1.MxArray_Int32S:
			return e != nil && hasUnknown(e.Int32S)
		case *mxgatewayv1.MxArray_Int64S:
			return e != nil && hasUnknown(e.Int64S)
		case *mxgatewayv1.MxArray_Floats:
			return e != nil && hasUnknown(e.Floats)
		case *mxgatewayv1.MxArray_Doubles:
			return e != nil && hasUnknown(e.Doubles)
		case *mxgatewayv1.MxArray_Strings:
			return e != nil && hasUnknown(e.Strings)
		case *mxgatewayv1.MxArray_Timestamps:
			return e != nil && hasUnknown(e.Timestamps)
		case *mxgatewayv1.MxArray_Durations:
			return e != nil && hasUnknown(e.Durations)
		}
	}
	return false
}

// cloneInto is cloneValue that copies an MxInteger value (the storm's)
// into box, so an event and its value can be one allocation.
func cloneInto(v *mxgatewayv1.MxValue, box *int32Box) *mxgatewayv1.MxValue {
	if k, ok := v.GetKind().(*mxgatewayv1.MxValue_Int32Value); ok && k != nil && !valueHasUnknown(v) {
		box.k.Int32Value = k.Int32Value
		box.v.Kind = &box.k
		copyHeader(&box.v, v)
		return &box.v
	}
	return cloneValue(v)
}

// cloneValue returns a deep copy of v that proto.Equal finds equal to
// proto.Clone(v) and that shares no mutable memory with v.
func cloneValue(v *mxgatewayv1.MxValue) *mxgatewayv1.MxValue {
	if v == nil {
		return nil
	}
	if valueHasUnknown(v) {
		return proto.Clone(v).(*mxgatewayv1.MxValue)
	}
	// The commonest kinds (the storm's and the generators') take one
	// allocation instead of two.
	switch k := v.Kind.(type) {
	case *mxgatewayv1.MxValue_Int32Value:
		if k != nil {
			bx := &int32Box{}
			bx.k.Int32Value = k.Int32Value
			bx.v.Kind = &bx.k
			copyHeader(&bx.v, v)
			return &bx.v
		}
	case *mxgatewayv1.MxValue_DoubleValue:
		if k != nil {
			bx := &doubleBox{}
			bx.k.DoubleValue = k.DoubleValue
			bx.v.Kind = &bx.k
			copyHeader(&bx.v, v)
			return &bx.v
		}
	}
	out := &mxgatewayv1.MxValue{}
	copyHeader(out, v)
	switch k := v.Kind.(type) {
	case nil:
	case *mxgatewayv1.MxValue_BoolValue:
		if k != nil {
			out.Kind = &mxgatewayv1.MxValue_BoolValue{BoolValue: k.BoolValue}
		}
	case *mxgatewayv1.MxValue_Int32Value:
		if k != nil {
			out.Kind = &mxgatewayv1.MxValue_Int32Value{Int32Value: k.Int32Value}
		}
	case *mxgatewayv1.MxValue_Int64Value:
		if k != nil {
			out.Kind = &mxgatewayv1.MxValue_Int64Value{Int64Value: k.Int64Value}
		}
	case *mxgatewayv1.MxValue_FloatValue:
		if k != nil {
			out.Kind = &mxgatewayv1.MxValue_FloatValue{FloatValue: k.FloatValue}
		}
	case *mxgatewayv1.MxValue_DoubleValue:
		if k != nil {
			out.Kind = &mxgatewayv1.MxValue_DoubleValue{DoubleValue: k.DoubleValue}
		}
	case *mxgatewayv1.MxValue_StringValue:
		if k != nil {
			out.Kind = &mxgatewayv1.MxValue_StringValue{StringValue: k.StringValue}
		}
	case *mxgatewayv1.MxValue_TimestampValue:
		if k != nil {
			ts := k.TimestampValue
			out.Kind = &mxgatewayv1.MxValue_TimestampValue{TimestampValue: &timestamppb.Timestamp{Seconds: ts.GetSeconds(), Nanos: ts.GetNanos()}}
		}
	case *mxgatewayv1.MxValue_DurationValue:
		if k != nil {
			d := k.DurationValue
			out.Kind = &mxgatewayv1.MxValue_DurationValue{DurationValue: &durationpb.Duration{Seconds: d.GetSeconds(), Nanos: d.GetNanos()}}
		}
	case *mxgatewayv1.MxValue_ArrayValue:
		if k != nil {
			out.Kind = &mxgatewayv1.MxValue_ArrayValue{ArrayValue: cloneArray(k.ArrayValue)}
		}
	default:
		return proto.Clone(v).(*mxgatewayv1.MxValue)
	}
	return out
}

// int32Box and doubleBox hold a value and its oneof wrapper in one
// allocation. The parts are ordinary messages; the box lives as long as
// either is referenced.
type (
	int32Box struct {
		v mxgatewayv1.MxValue
		k mxgatewayv1.MxValue_Int32Value
	}
	doubleBox struct {
		v mxgatewayv1.MxValue
		k mxgatewayv1.MxValue_DoubleValue
	}
)

// copyHeader copies the fields of v outside its oneof into dst.
func copyHeader(dst, v *mxgatewayv1.MxValue) {
	dst.DataType, dst.VariantType, dst.IsNull, dst.Diagnostic = v.DataType, v.VariantType, v.IsNull, v.Diagnostic
}

// cloneArray copies an array whose messages carry no unknown fields; nil
// becomes the empty array, as proto.Clone makes it inside a oneof.
func cloneArray(a *mxgatewayv1.MxArray) *mxgatewayv1.MxArray {
	out := &mxgatewayv1.MxArray{ElementType: a.GetElementType(), ElementVariantType: a.GetElementVariantType()}
	if a == nil {
		return out
	}
	switch e := a.Elements.(type) {
	case nil:
	case *mxgatewayv1.MxArray_Bools:
		if e != nil {
			out.Elements = &mxgatewayv1.MxArray_Bools{Bools: &mxgatewayv1.BoolArray{Values: slices.Clone(e.Bools.GetValues())}}
		}
	case *mxgatewayv1.MxArray_Int32S:
		if e != nil {
			out.Elements = &mxgatewayv1.MxArray_Int32S{Int32S: &mxgatewayv1.Int32Array{Values: slices.Clone(e.Int32S.GetValues())}}
		}
	case *mxgatewayv1.MxArray_Int64S:
		if e != nil {
			out.Elements = &mxgatewayv1.MxArray_Int64S{Int64S: &mxgatewayv1.Int64Array{Values: slices.Clone(e.Int64S.GetValues())}}
		}
	case *mxgatewayv1.MxArray_Floats:
		if e != nil {
			out.Elements = &mxgatewayv1.MxArray_Floats{Floats: &mxgatewayv1.FloatArray{Values: slices.Clone(e.Floats.GetValues())}}
		}
	case *mxgatewayv1.MxArray_Doubles:
		if e != nil {
			out.Elements = &mxgatewayv1.MxArray_Doubles{Doubles: &mxgatewayv1.DoubleArray{Values: slices.Clone(e.Doubles.GetValues())}}
		}
	case *mxgatewayv1.MxArray_Strings:
		if e != nil {
			out.Elements = &mxgatewayv1.MxArray_Strings{Strings: &mxgatewayv1.StringArray{Values: slices.Clone(e.Strings.GetValues())}}
		}
	case *mxgatewayv1.MxArray_Timestamps:
		if e != nil {
			out.Elements = &mxgatewayv1.MxArray_Timestamps{Timestamps: &mxgatewayv1.TimestampArray{UnixNanos: slices.Clone(e.Timestamps.GetUnixNanos())}}
		}
	case *mxgatewayv1.MxArray_Durations:
		if e != nil {
			out.Elements = &mxgatewayv1.MxArray_Durations{Durations: &mxgatewayv1.DurationArray{Nanos: slices.Clone(e.Durations.GetNanos())}}
		}
	default:
		return proto.Clone(a).(*mxgatewayv1.MxArray)
	}
	return out
}
