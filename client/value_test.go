package client

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"testing"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
)

var t0 = time.Date(2026, 11, 26, 8, 30, 15, 123000000, time.UTC)

// TestConvertEveryDataType converts a Go value to every writable MxDataType
// and back, as a scalar and as an array.
func TestConvertEveryDataType(t *testing.T) {
	cases := []struct {
		dt     mxgatewayv1.MxDataType
		in     any
		vt     uint32
		back   func(Value) (any, error)
		arr    any
		arrOut func(Value) (any, error)
	}{
		{mxgatewayv1.MxDataType_MX_DATA_TYPE_BOOLEAN, true, vtBool, func(v Value) (any, error) { return v.AsBool() },
			[]bool{true, false}, func(v Value) (any, error) { return v.AsBools() }},
		{mxgatewayv1.MxDataType_MX_DATA_TYPE_INTEGER, int32(-7), vtI4, func(v Value) (any, error) { return v.AsInt32() },
			[]int32{1, -2, math.MaxInt32}, func(v Value) (any, error) { return v.AsInt32s() }},
		{mxgatewayv1.MxDataType_MX_DATA_TYPE_FLOAT, float32(1.5), vtR4, func(v Value) (any, error) { return v.AsFloat32() },
			[]float32{0.25, -3}, func(v Value) (any, error) { return v.AsFloat32s() }},
		{mxgatewayv1.MxDataType_MX_DATA_TYPE_DOUBLE, 2.75, vtR8, func(v Value) (any, error) { return v.AsFloat64() },
			[]float64{0.1, 1e300}, func(v Value) (any, error) { return v.AsFloat64s() }},
		{mxgatewayv1.MxDataType_MX_DATA_TYPE_STRING, "héllo", vtBSTR, func(v Value) (any, error) { return v.AsString() },
			[]string{"a", "", "c,d"}, func(v Value) (any, error) { return v.AsStrings() }},
		{mxgatewayv1.MxDataType_MX_DATA_TYPE_TIME, t0, vtDate, func(v Value) (any, error) { return v.AsTime() },
			[]time.Time{t0, t0.Add(time.Hour)}, func(v Value) (any, error) { return v.AsTimes() }},
		{mxgatewayv1.MxDataType_MX_DATA_TYPE_ELAPSED_TIME, 90 * time.Second, vtR8, func(v Value) (any, error) { return v.AsDuration() },
			[]time.Duration{time.Second, time.Minute}, func(v Value) (any, error) { return v.AsDurations() }},
		{mxgatewayv1.MxDataType_MX_DATA_TYPE_REFERENCE, "TIC101", vtBSTR, func(v Value) (any, error) { return v.AsString() },
			[]string{"A", "B"}, func(v Value) (any, error) { return v.AsStrings() }},
		{mxgatewayv1.MxDataType_MX_DATA_TYPE_STATUS, int32(3), vtI4, func(v Value) (any, error) { return v.AsInt32() },
			[]int32{1}, func(v Value) (any, error) { return v.AsInt32s() }},
		{mxgatewayv1.MxDataType_MX_DATA_TYPE_DATA_TYPE_ENUM, int32(2), vtI4, func(v Value) (any, error) { return v.AsInt32() },
			[]int32{2}, func(v Value) (any, error) { return v.AsInt32s() }},
		{mxgatewayv1.MxDataType_MX_DATA_TYPE_SECURITY_CLASSIFICATION_ENUM, int32(1), vtI4, func(v Value) (any, error) { return v.AsInt32() },
			[]int32{0, 6}, func(v Value) (any, error) { return v.AsInt32s() }},
		{mxgatewayv1.MxDataType_MX_DATA_TYPE_DATA_QUALITY, int32(192), vtI4, func(v Value) (any, error) { return v.AsInt32() },
			[]int32{192, 0}, func(v Value) (any, error) { return v.AsInt32s() }},
		{mxgatewayv1.MxDataType_MX_DATA_TYPE_QUALIFIED_ENUM, "Running", vtBSTR, func(v Value) (any, error) { return v.AsString() },
			[]string{"On"}, func(v Value) (any, error) { return v.AsStrings() }},
		{mxgatewayv1.MxDataType_MX_DATA_TYPE_INTERNATIONALIZED_STRING, "Grüße", vtBSTR, func(v Value) (any, error) { return v.AsString() },
			[]string{"x"}, func(v Value) (any, error) { return v.AsStrings() }},
		{mxgatewayv1.MxDataType_MX_DATA_TYPE_BIG_STRING, string(make([]byte, 5000)), vtBSTR, func(v Value) (any, error) { return v.AsString() },
			[]string{"big"}, func(v Value) (any, error) { return v.AsStrings() }},
	}
	for _, tc := range cases {
		t.Run(DataTypeName(tc.dt), func(t *testing.T) {
			v, err := ConvertValue(tc.dt, tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if v.DataType() != tc.dt || v.VariantType() != tc.vt || v.IsNull() || v.IsArray() || v.Len() != 1 {
				t.Fatalf("wire form %v", v.Proto())
			}
			got, err := tc.back(v)
			if err != nil || !reflect.DeepEqual(got, tc.in) {
				t.Fatalf("round trip %v (%v), want %v", got, err, tc.in)
			}
			// Text parses to the same value.
			if tc.dt != mxgatewayv1.MxDataType_MX_DATA_TYPE_BIG_STRING {
				pv, err := ConvertValue(tc.dt, Text(v.String()))
				if err != nil || !pv.Equal(v) {
					t.Fatalf("Text(%q) parsed to %v (%v)", v.String(), pv.Proto(), err)
				}
			}
			a, err := ConvertValue(tc.dt, tc.arr)
			if err != nil {
				t.Fatal(err)
			}
			if !a.IsArray() || a.VariantType() != vtArray|tc.vt || a.DataType() != tc.dt || a.Len() != reflect.ValueOf(tc.arr).Len() {
				t.Fatalf("array wire form %v", a.Proto())
			}
			gotArr, err := tc.arrOut(a)
			if err != nil || !reflect.DeepEqual(gotArr, tc.arr) {
				t.Fatalf("array round trip %v (%v), want %v", gotArr, err, tc.arr)
			}
			if !reflect.DeepEqual(a.Interface(), tc.arr) {
				t.Fatalf("Interface() = %#v", a.Interface())
			}
			if _, err := json.Marshal(a); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestNoDataAndStruct(t *testing.T) {
	n, err := ConvertValue(mxgatewayv1.MxDataType_MX_DATA_TYPE_NO_DATA, nil)
	if err != nil || !n.IsNull() || n.Interface() != nil || n.String() != "null" || n.Len() != 0 {
		t.Fatalf("null: %v %v", n, err)
	}
	if _, err := n.AsFloat64(); err == nil {
		t.Fatal("null converted to a number")
	}
	if _, err := ConvertValue(mxgatewayv1.MxDataType_MX_DATA_TYPE_QUALIFIED_STRUCT, 1); err == nil {
		t.Fatal("MxQualifiedStruct is not writable whole")
	}
	if _, err := ConvertValue(mxgatewayv1.MxDataType_MX_DATA_TYPE_NO_DATA, 1); err == nil {
		t.Fatal("a number converted to MxNoData")
	}
}

func TestNewValueInfersTypes(t *testing.T) {
	cases := map[string]struct {
		in any
		dt mxgatewayv1.MxDataType
	}{
		"bool":     {true, mxgatewayv1.MxDataType_MX_DATA_TYPE_BOOLEAN},
		"int":      {42, mxgatewayv1.MxDataType_MX_DATA_TYPE_INTEGER},
		"int64":    {int64(-5), mxgatewayv1.MxDataType_MX_DATA_TYPE_INTEGER},
		"uint16":   {uint16(5), mxgatewayv1.MxDataType_MX_DATA_TYPE_INTEGER},
		"float32":  {float32(1), mxgatewayv1.MxDataType_MX_DATA_TYPE_FLOAT},
		"float64":  {1.0, mxgatewayv1.MxDataType_MX_DATA_TYPE_DOUBLE},
		"string":   {"s", mxgatewayv1.MxDataType_MX_DATA_TYPE_STRING},
		"time":     {t0, mxgatewayv1.MxDataType_MX_DATA_TYPE_TIME},
		"duration": {time.Second, mxgatewayv1.MxDataType_MX_DATA_TYPE_ELAPSED_TIME},
		"[]int":    {[]int{1, 2}, mxgatewayv1.MxDataType_MX_DATA_TYPE_INTEGER},
		"[]string": {[]string{"a"}, mxgatewayv1.MxDataType_MX_DATA_TYPE_STRING},
		"[]time":   {[]time.Time{t0}, mxgatewayv1.MxDataType_MX_DATA_TYPE_TIME},
	}
	for name, tc := range cases {
		v, err := NewValue(tc.in)
		if err != nil || v.DataType() != tc.dt {
			t.Errorf("%s: %v %v", name, v.Proto(), err)
		}
	}
}

func TestLossyConversionsFail(t *testing.T) {
	I := mxgatewayv1.MxDataType_MX_DATA_TYPE_INTEGER
	F := mxgatewayv1.MxDataType_MX_DATA_TYPE_FLOAT
	D := mxgatewayv1.MxDataType_MX_DATA_TYPE_DOUBLE
	S := mxgatewayv1.MxDataType_MX_DATA_TYPE_STRING
	B := mxgatewayv1.MxDataType_MX_DATA_TYPE_BOOLEAN
	cases := []struct {
		name string
		dt   mxgatewayv1.MxDataType
		in   any
	}{
		{"int64 beyond int32", I, int64(math.MaxInt32) + 1},
		{"int64 below int32", I, int64(math.MinInt32) - 1},
		{"uint64 beyond int32", I, uint64(1) << 40},
		{"fractional float to integer", I, 1.5},
		{"NaN to integer", I, math.NaN()},
		{"integer beyond 2^24 to float", F, 1<<24 + 1},
		{"double beyond float32 range", F, 1e300},
		{"integer beyond 2^53 to double", D, int64(1)<<53 + 1},
		{"number to string", S, 5},
		{"string to number", D, "5"},
		{"number to bool", B, 1},
		{"int slice element out of range", I, []int64{1, 1 << 40}},
		{"byte slice", S, []byte("x")},
		{"unsupported type", I, struct{}{}},
		{"bad text", I, Text("12x")},
		{"text out of range", I, Text("99999999999")},
	}
	for _, tc := range cases {
		_, err := ConvertValue(tc.dt, tc.in)
		var ce *ConversionError
		if !errors.As(err, &ce) {
			t.Errorf("%s: err = %v, want *ConversionError", tc.name, err)
		}
	}
	if _, err := NewValue(int64(1) << 33); err == nil {
		t.Error("NewValue accepted an int64 beyond MxInteger")
	}
	// Limits themselves convert.
	for _, in := range []any{int64(math.MaxInt32), int64(math.MinInt32), 3.0, uint32(math.MaxInt32)} {
		if _, err := ConvertValue(I, in); err != nil {
			t.Errorf("%T %v: %v", in, in, err)
		}
	}
	if _, err := ConvertValue(D, int64(1)<<53); err != nil {
		t.Error(err)
	}
}

func TestAccessorsRefuseLoss(t *testing.T) {
	big := ValueFromProto(&mxgatewayv1.MxValue{DataType: mxgatewayv1.MxDataType_MX_DATA_TYPE_INTEGER, VariantType: vtI8,
		Kind: &mxgatewayv1.MxValue_Int64Value{Int64Value: 1 << 40}})
	if _, err := big.AsInt32(); err == nil {
		t.Error("AsInt32 of 2^40")
	}
	if n, err := big.AsInt64(); err != nil || n != 1<<40 {
		t.Error("AsInt64", n, err)
	}
	frac := MustValue(2.5)
	if _, err := frac.AsInt64(); err == nil {
		t.Error("AsInt64 of 2.5")
	}
	if _, err := MustValue(0.1).AsFloat32(); err == nil {
		t.Error("AsFloat32 of 0.1 (not exact)")
	}
	if f, err := MustValue(0.5).AsFloat32(); err != nil || f != 0.5 {
		t.Error("AsFloat32 of 0.5", f, err)
	}
	if _, err := MustValue("x").AsBool(); err == nil {
		t.Error("AsBool of a string")
	}
	if _, err := MustValue(1).AsBools(); err == nil {
		t.Error("AsBools of a scalar")
	}
	// An elapsed time carried as VT_R8 seconds.
	sec := ValueFromProto(&mxgatewayv1.MxValue{DataType: mxgatewayv1.MxDataType_MX_DATA_TYPE_ELAPSED_TIME, VariantType: vtR8,
		Kind: &mxgatewayv1.MxValue_DoubleValue{DoubleValue: 1.5}})
	if d, err := sec.AsDuration(); err != nil || d != 1500*time.Millisecond {
		t.Error("AsDuration of seconds", d, err)
	}
}

func TestValueFormatting(t *testing.T) {
	cases := map[string]struct {
		v    Value
		str  string
		json string
	}{
		"bool":    {MustValue(true), "true", "true"},
		"int":     {MustValue(-3), "-3", "-3"},
		"float":   {MustValue(float32(0.1)), "0.1", "0.1"},
		"double":  {MustValue(21.5), "21.5", "21.5"},
		"nan":     {MustValue(math.NaN()), "NaN", `"NaN"`},
		"string":  {MustValue("a\"b"), "a\"b", `"a\"b"`},
		"time":    {MustValue(t0), "2026-11-26T08:30:15.123Z", `"2026-11-26T08:30:15.123Z"`},
		"elapsed": {MustValue(90 * time.Second), "1m30s", `"1m30s"`},
		"array":   {MustValue([]string{"a", "b"}), `["a", "b"]`, `["a","b"]`},
		"ints":    {MustValue([]int{1, 2}), `[1, 2]`, `[1,2]`},
		"empty":   {MustValue([]int{}), `[]`, `[]`},
		"null":    {Null(), "null", "null"},
	}
	for name, tc := range cases {
		if got := tc.v.String(); got != tc.str {
			t.Errorf("%s: String() = %q, want %q", name, got, tc.str)
		}
		b, err := json.Marshal(tc.v)
		if err != nil || string(b) != tc.json {
			t.Errorf("%s: JSON = %s (%v), want %s", name, b, err, tc.json)
		}
	}
}

func TestParseValueArraysAndTypes(t *testing.T) {
	v, err := ParseValue(mxgatewayv1.MxDataType_MX_DATA_TYPE_INTEGER, "[1, 2,3]")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := v.AsInt32s(); !reflect.DeepEqual(got, []int32{1, 2, 3}) {
		t.Fatal(got)
	}
	v, err = ParseValue(mxgatewayv1.MxDataType_MX_DATA_TYPE_STRING, `["a b", c]`)
	if got, _ := v.AsStrings(); err != nil || !reflect.DeepEqual(got, []string{"a b", "c"}) {
		t.Fatal(got, err)
	}
	v, err = ParseValue(mxgatewayv1.MxDataType_MX_DATA_TYPE_ELAPSED_TIME, "2.5")
	if d, _ := v.AsDuration(); err != nil || d != 2500*time.Millisecond {
		t.Fatal(d, err)
	}
	for in, want := range map[string]mxgatewayv1.MxDataType{
		"MxInteger": mxgatewayv1.MxDataType_MX_DATA_TYPE_INTEGER, "double": mxgatewayv1.MxDataType_MX_DATA_TYPE_DOUBLE,
		"bool": mxgatewayv1.MxDataType_MX_DATA_TYPE_BOOLEAN, "16": mxgatewayv1.MxDataType_MX_DATA_TYPE_BIG_STRING,
	} {
		if got, err := ParseDataType(in); err != nil || got != want {
			t.Errorf("ParseDataType(%q) = %v %v", in, got, err)
		}
	}
	if _, err := ParseDataType("complex"); err == nil {
		t.Error("ParseDataType accepted nonsense")
	}
}

func TestQualityText(t *testing.T) {
	cases := map[Quality]string{
		192:    "Good",
		0:      "Bad",
		4:      "Bad: configuration error",
		32:     "Bad: waiting for initial data",
		68:     "Uncertain: last usable value",
		66:     "Uncertain (high limited)",
		216:    "Good: local override",
		195:    "Good (constant)",
		0x80:   "Uncertain (substatus 0)",
		0x1004: "Bad: configuration error [0x1004]",
	}
	for q, want := range cases {
		if got := q.String(); got != want {
			t.Errorf("Quality(%d) = %q, want %q", q, got, want)
		}
	}
	if !Quality(0x1C0).IsGood() || Quality(0x100).IsGood() || !Quality(0x80).IsUncertain() || !Quality(0x3F).IsBad() {
		t.Error("classification uses the masked low byte")
	}
}
