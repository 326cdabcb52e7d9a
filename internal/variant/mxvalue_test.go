package variant

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
)

const (
	dtBool   = mxgatewayv1.MxDataType_MX_DATA_TYPE_BOOLEAN
	dtInt    = mxgatewayv1.MxDataType_MX_DATA_TYPE_INTEGER
	dtFloat  = mxgatewayv1.MxDataType_MX_DATA_TYPE_FLOAT
	dtDouble = mxgatewayv1.MxDataType_MX_DATA_TYPE_DOUBLE
	dtString = mxgatewayv1.MxDataType_MX_DATA_TYPE_STRING
	dtTime   = mxgatewayv1.MxDataType_MX_DATA_TYPE_TIME
	dtNone   = mxgatewayv1.MxDataType_MX_DATA_TYPE_NO_DATA
	dtUnk    = mxgatewayv1.MxDataType_MX_DATA_TYPE_UNKNOWN
)

func TestToMxValue(t *testing.T) {
	ts := time.Date(2023, 3, 15, 12, 0, 0, 123e6, time.UTC)
	oa, _ := ToOADate(ts, time.UTC)
	cases := []struct {
		name     string
		in       Value
		want     *mxgatewayv1.MxValue
		diagPart string
	}{
		{"empty", Empty(), &mxgatewayv1.MxValue{DataType: dtNone, IsNull: true}, ""},
		{"null", Value{VT: VT_NULL, RawVT: VT_NULL}, &mxgatewayv1.MxValue{DataType: dtNone, VariantType: 1, IsNull: true}, ""},
		{"bool true", Bool(true), &mxgatewayv1.MxValue{DataType: dtBool, VariantType: 11, Kind: &mxgatewayv1.MxValue_BoolValue{BoolValue: true}}, ""},
		{"bool odd raw", Scalar(VT_BOOL, 1), &mxgatewayv1.MxValue{DataType: dtBool, VariantType: 11, Kind: &mxgatewayv1.MxValue_BoolValue{BoolValue: true}}, "raw 0x0001"},
		{"I4", Int32(-7), &mxgatewayv1.MxValue{DataType: dtInt, VariantType: 3, Kind: &mxgatewayv1.MxValue_Int32Value{Int32Value: -7}}, ""},
		{"I2 projects to int32", Int16(-5), &mxgatewayv1.MxValue{DataType: dtInt, VariantType: 2, Kind: &mxgatewayv1.MxValue_Int32Value{Int32Value: -5}}, ""},
		{"UI4 big goes int64", Scalar(VT_UI4, 0xFFFFFFFF), &mxgatewayv1.MxValue{DataType: dtInt, VariantType: 19, Kind: &mxgatewayv1.MxValue_Int64Value{Int64Value: 4294967295}}, ""},
		{"R4", Float32(1.25), &mxgatewayv1.MxValue{DataType: dtFloat, VariantType: 4, Kind: &mxgatewayv1.MxValue_FloatValue{FloatValue: 1.25}}, ""},
		{"R8", Float64(2.5), &mxgatewayv1.MxValue{DataType: dtDouble, VariantType: 5, Kind: &mxgatewayv1.MxValue_DoubleValue{DoubleValue: 2.5}}, ""},
		{"BSTR", BSTR("hi"), &mxgatewayv1.MxValue{DataType: dtString, VariantType: 8, Kind: &mxgatewayv1.MxValue_StringValue{StringValue: "hi"}}, ""},
		{"DATE keeps ms", Date(oa), &mxgatewayv1.MxValue{DataType: dtTime, VariantType: 7, Kind: &mxgatewayv1.MxValue_TimestampValue{TimestampValue: timestamppb.New(ts)}}, ""},
		{"DATE out of range", Date(1e9), &mxgatewayv1.MxValue{DataType: dtTime, VariantType: 7, Kind: &mxgatewayv1.MxValue_DoubleValue{DoubleValue: 1e9}}, "out of range"},
		{"byref noted", Value{VT: VT_I4, RawVT: VT_BYREF | VT_I4, Bits: 3}, &mxgatewayv1.MxValue{DataType: dtInt, VariantType: 3, Kind: &mxgatewayv1.MxValue_Int32Value{Int32Value: 3}}, "received as VT_BYREF|VT_I4"},
		{"CY", Scalar(VT_CY, 12345), &mxgatewayv1.MxValue{DataType: dtDouble, VariantType: 6, Kind: &mxgatewayv1.MxValue_DoubleValue{DoubleValue: 1.2345}}, "VT_CY raw 12345"},
		{"dispatch unsupported", Value{VT: VT_DISPATCH, RawVT: VT_DISPATCH, Ptr: 0x1234}, &mxgatewayv1.MxValue{DataType: dtUnk, VariantType: 9}, "unsupported VARIANT type VT_DISPATCH"},
		{"string array", NewArray(VT_BSTR, []Value{BSTR("a"), BSTR("b")}), &mxgatewayv1.MxValue{DataType: dtString, VariantType: 0x2008, Kind: &mxgatewayv1.MxValue_ArrayValue{ArrayValue: &mxgatewayv1.MxArray{
			ElementType: dtString, ElementVariantType: 8, Elements: &mxgatewayv1.MxArray_Strings{Strings: &mxgatewayv1.StringArray{Values: []string{"a", "b"}}}}}}, ""},
		{"bool array", NewArray(VT_BOOL, []Value{Bool(true), Bool(false)}), &mxgatewayv1.MxValue{DataType: dtBool, VariantType: 0x200B, Kind: &mxgatewayv1.MxValue_ArrayValue{ArrayValue: &mxgatewayv1.MxArray{
			ElementType: dtBool, ElementVariantType: 11, Elements: &mxgatewayv1.MxArray_Bools{Bools: &mxgatewayv1.BoolArray{Values: []bool{true, false}}}}}}, ""},
		{"uniform variant array", NewArray(VT_VARIANT, []Value{Float64(1), Float64(2)}), &mxgatewayv1.MxValue{DataType: dtDouble, VariantType: 0x200C, Kind: &mxgatewayv1.MxValue_ArrayValue{ArrayValue: &mxgatewayv1.MxArray{
			ElementType: dtDouble, ElementVariantType: 12, Elements: &mxgatewayv1.MxArray_Doubles{Doubles: &mxgatewayv1.DoubleArray{Values: []float64{1, 2}}}}}}, "elements were VT_VARIANT(VT_R8)"},
		{"mixed variant array", NewArray(VT_VARIANT, []Value{Float64(1), BSTR("x")}), &mxgatewayv1.MxValue{DataType: dtUnk, VariantType: 0x200C, Kind: &mxgatewayv1.MxValue_ArrayValue{ArrayValue: &mxgatewayv1.MxArray{
			ElementType: dtUnk, ElementVariantType: 12}}}, "mixed element types"},
		{"date array", NewArray(VT_DATE, []Value{Date(25569)}), &mxgatewayv1.MxValue{DataType: dtTime, VariantType: 0x2007, Kind: &mxgatewayv1.MxValue_ArrayValue{ArrayValue: &mxgatewayv1.MxArray{
			ElementType: dtTime, ElementVariantType: 7, Elements: &mxgatewayv1.MxArray_Timestamps{Timestamps: &mxgatewayv1.TimestampArray{UnixNanos: []int64{0}}}}}}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := ToMxValue(tc.in, time.UTC)
			diag := got.Diagnostic
			got.Diagnostic = ""
			if !proto.Equal(got, tc.want) {
				t.Fatalf("got  %v\nwant %v", got, tc.want)
			}
			if tc.diagPart == "" && diag != "" {
				t.Errorf("unexpected diagnostic %q", diag)
			}
			if !strings.Contains(diag, tc.diagPart) {
				t.Errorf("diagnostic %q lacks %q", diag, tc.diagPart)
			}
		})
	}
}

func TestToMxValueLocalZone(t *testing.T) {
	oa, _ := ToOADate(time.Date(2023, 3, 15, 12, 0, 0, 0, time.UTC), time.UTC)
	got := ToMxValue(Date(oa), time.FixedZone("+1", 3600))
	if h := got.GetTimestampValue().AsTime().Hour(); h != 11 {
		t.Fatalf("local 12:00 at +1 became %d:00 UTC", h)
	}
}

func TestFromMxValue(t *testing.T) {
	ts := time.Date(2023, 3, 15, 12, 0, 0, 5e6, time.UTC)
	oa, _ := ToOADate(ts, time.UTC)
	i32 := func(v int32) *mxgatewayv1.MxValue {
		return &mxgatewayv1.MxValue{Kind: &mxgatewayv1.MxValue_Int32Value{Int32Value: v}}
	}
	dbl := func(v float64) *mxgatewayv1.MxValue {
		return &mxgatewayv1.MxValue{Kind: &mxgatewayv1.MxValue_DoubleValue{DoubleValue: v}}
	}
	str := func(v string) *mxgatewayv1.MxValue {
		return &mxgatewayv1.MxValue{Kind: &mxgatewayv1.MxValue_StringValue{StringValue: v}}
	}
	cases := []struct {
		name    string
		in      *mxgatewayv1.MxValue
		target  VT
		want    Value
		wantErr bool
	}{
		{"int natural", i32(5), 0, Int32(5), false},
		{"int to R8", i32(5), VT_R8, Float64(5), false},
		{"int to I2", i32(-300), VT_I2, Scalar(VT_I2, 0xFED4), false},
		{"int to UI1 overflow", i32(300), VT_UI1, Value{}, true},
		{"int to BOOL refused", i32(1), VT_BOOL, Value{}, true},
		{"int to BSTR refused (no locale parsing)", i32(1), VT_BSTR, Value{}, true},
		{"whole double to I4", dbl(7), VT_I4, Int32(7), false},
		{"fractional double to I4", dbl(7.5), VT_I4, Value{}, true},
		{"double to R4 exact", dbl(0.5), VT_R4, Float32(0.5), false},
		{"double to R4 inexact", dbl(0.1), VT_R4, Value{}, true},
		{"string natural", str("x"), 0, BSTR("x"), false},
		{"string to I4 refused", str("1"), VT_I4, Value{}, true},
		{"bool natural", &mxgatewayv1.MxValue{Kind: &mxgatewayv1.MxValue_BoolValue{BoolValue: true}}, 0, Bool(true), false},
		{"time natural", &mxgatewayv1.MxValue{Kind: &mxgatewayv1.MxValue_TimestampValue{TimestampValue: timestamppb.New(ts)}}, 0, Date(oa), false},
		{"duration as seconds", &mxgatewayv1.MxValue{Kind: &mxgatewayv1.MxValue_DurationValue{DurationValue: durationpb.New(1500 * time.Millisecond)}}, 0, Float64(1.5), false},
		{"int64 natural must fit I4", &mxgatewayv1.MxValue{Kind: &mxgatewayv1.MxValue_Int64Value{Int64Value: 1 << 40}}, 0, Value{}, true},
		{"explicit variant type wins", &mxgatewayv1.MxValue{VariantType: 2, Kind: &mxgatewayv1.MxValue_Int32Value{Int32Value: 3}}, 0, Scalar(VT_I2, 3), false},
		{"data type decides", &mxgatewayv1.MxValue{DataType: dtDouble, Kind: &mxgatewayv1.MxValue_Int32Value{Int32Value: 3}}, 0, Float64(3), false},
		{"null", &mxgatewayv1.MxValue{IsNull: true}, 0, Empty(), false},
		{"null as I4 refused", &mxgatewayv1.MxValue{IsNull: true}, VT_I4, Value{}, true},
		{"byref target refused", i32(1), VT_BYREF | VT_I4, Value{}, true},
		{"nil", nil, 0, Value{}, true},
		{"no kind", &mxgatewayv1.MxValue{DataType: dtInt}, 0, Value{}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := FromMxValue(tc.in, tc.target, time.UTC)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("got %v, want error", got)
				}
				if !errors.Is(err, ErrNotConvertible) && !errors.Is(err, ErrDateRange) {
					t.Fatalf("err %v is not ErrNotConvertible", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.VT != tc.want.VT || got.Bits != tc.want.Bits || got.Str != tc.want.Str {
				t.Fatalf("got %v want %v", got, tc.want)
			}
		})
	}
}

func TestFromMxValueArrays(t *testing.T) {
	in := &mxgatewayv1.MxValue{Kind: &mxgatewayv1.MxValue_ArrayValue{ArrayValue: &mxgatewayv1.MxArray{
		Elements: &mxgatewayv1.MxArray_Doubles{Doubles: &mxgatewayv1.DoubleArray{Values: []float64{1, 2.5}}}}}}
	v, err := FromMxValue(in, 0, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	if v.VT != VT_ARRAY|VT_R8 || len(v.Array.Elems) != 2 || math.Float64frombits(v.Array.Elems[1].Bits) != 2.5 {
		t.Fatalf("got %v %+v", v, v.Array)
	}
	if _, err := FromMxValue(in, VT_ARRAY|VT_I4, time.UTC); err == nil {
		t.Fatal("2.5 packed as VT_I4")
	}
	if _, err := FromMxValue(in, VT_R8, time.UTC); err == nil {
		t.Fatal("array written as scalar")
	}
	strs := &mxgatewayv1.MxValue{Kind: &mxgatewayv1.MxValue_ArrayValue{ArrayValue: &mxgatewayv1.MxArray{
		Elements: &mxgatewayv1.MxArray_Strings{Strings: &mxgatewayv1.StringArray{Values: []string{"a"}}}}}}
	v, err = FromMxValue(strs, 0, time.UTC)
	if err != nil || v.VT != VT_ARRAY|VT_BSTR || v.Array.Elems[0].Str != "a" {
		t.Fatalf("v=%v err=%v", v, err)
	}
	// Round trip wire → Value → wire.
	back := ToMxValue(v, time.UTC)
	if got := back.GetArrayValue().GetStrings().GetValues(); len(got) != 1 || got[0] != "a" {
		t.Fatalf("round trip %v", back)
	}
}

func TestDataTypeOf(t *testing.T) {
	cases := map[VT]mxgatewayv1.MxDataType{
		VT_EMPTY: dtNone, VT_BOOL: dtBool, VT_I2: dtInt, VT_I4: dtInt, VT_R4: dtFloat,
		VT_R8: dtDouble, VT_BSTR: dtString, VT_DATE: dtTime, VT_ARRAY | VT_BSTR: dtString, VT_UNKNOWN: dtUnk,
	}
	for vt, want := range cases {
		if got := DataTypeOf(vt); got != want {
			t.Errorf("%s: %s want %s", vt, got, want)
		}
	}
}
