package sim

import (
	"fmt"
	"math"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/mxtypes"
)

// unknownField is an encoded field (number 99, varint 1) no message here
// declares.
var unknownField = protowire.AppendVarint(protowire.AppendTag(nil, 99, protowire.VarintType), 1)

func withUnknown[M proto.Message](m M) M {
	m.ProtoReflect().SetUnknown(unknownField)
	return m
}

func arrayOf(a *mxgatewayv1.MxArray) *mxgatewayv1.MxValue {
	return &mxgatewayv1.MxValue{DataType: tInt, VariantType: 0x2003, Kind: &mxgatewayv1.MxValue_ArrayValue{ArrayValue: a}}
}

// valueCases returns a fresh set of values covering every field, every kind,
// and the corner cases (typed-nil wrappers, nil messages inside oneofs, NaN
// and signed zeros, unknown fields at every level). Several are equal to
// each other on purpose.
func valueCases() map[string]*mxgatewayv1.MxValue {
	nan32b := math.Float32frombits(0x7fc00001) // a NaN with another payload
	nan64b := math.Float64frombits(0x7ff8000000000001)
	ts := func(s int64, n int32) *mxgatewayv1.MxValue {
		return &mxgatewayv1.MxValue{DataType: tTime, Kind: &mxgatewayv1.MxValue_TimestampValue{TimestampValue: &timestamppb.Timestamp{Seconds: s, Nanos: n}}}
	}
	dur := func(s int64, n int32) *mxgatewayv1.MxValue {
		return &mxgatewayv1.MxValue{DataType: tElapsed, Kind: &mxgatewayv1.MxValue_DurationValue{DurationValue: &durationpb.Duration{Seconds: s, Nanos: n}}}
	}
	i32s := func(v ...int32) *mxgatewayv1.MxValue {
		return arrayOf(&mxgatewayv1.MxArray{ElementType: tInt, ElementVariantType: 3,
			Elements: &mxgatewayv1.MxArray_Int32S{Int32S: &mxgatewayv1.Int32Array{Values: v}}})
	}
	dbls := func(v ...float64) *mxgatewayv1.MxValue {
		return arrayOf(&mxgatewayv1.MxArray{ElementType: tDouble, ElementVariantType: 5,
			Elements: &mxgatewayv1.MxArray_Doubles{Doubles: &mxgatewayv1.DoubleArray{Values: v}}})
	}
	flts := func(v ...float32) *mxgatewayv1.MxValue {
		return arrayOf(&mxgatewayv1.MxArray{ElementType: tFloat, ElementVariantType: 4,
			Elements: &mxgatewayv1.MxArray_Floats{Floats: &mxgatewayv1.FloatArray{Values: v}}})
	}
	strs := func(v ...string) *mxgatewayv1.MxValue {
		return arrayOf(&mxgatewayv1.MxArray{ElementType: tString, ElementVariantType: 8,
			Elements: &mxgatewayv1.MxArray_Strings{Strings: &mxgatewayv1.StringArray{Values: v}}})
	}
	withUnknownTS := ts(1, 0)
	withUnknown(withUnknownTS.GetTimestampValue())
	withUnknownDur := dur(1, 0)
	withUnknown(withUnknownDur.GetDurationValue())
	withUnknownArr := i32s(1, 2)
	withUnknown(withUnknownArr.GetArrayValue())
	withUnknownInner := i32s(1, 2)
	withUnknown(withUnknownInner.GetArrayValue().GetInt32S())

	return map[string]*mxgatewayv1.MxValue{
		"nil":              nil,
		"empty":            {},
		"empty/typed-nil":  {Kind: (*mxgatewayv1.MxValue_BoolValue)(nil)},
		"empty/typed-nil2": {Kind: (*mxgatewayv1.MxValue_ArrayValue)(nil)},
		"null":             mxtypes.NullValue(tNoData),
		"null/int":         mxtypes.NullValue(tInt),
		"datatype":         {DataType: tInt},
		"varianttype":      {VariantType: 3},
		"isnull":           {IsNull: true},
		"diagnostic":       {Diagnostic: "lossy"},
		"diagnostic/b":     {Diagnostic: "other"},
		"unknown/top":      withUnknown(&mxgatewayv1.MxValue{}),
		"unknown/top-int":  withUnknown(mxtypes.IntegerValue(1)),

		"bool/false":     mxtypes.BoolValue(false),
		"bool/true":      mxtypes.BoolValue(true),
		"bool/true-b":    mxtypes.BoolValue(true),
		"int32/0":        mxtypes.IntegerValue(0),
		"int32/1":        mxtypes.IntegerValue(1),
		"int32/1-b":      mxtypes.IntegerValue(1),
		"int32/-1":       mxtypes.IntegerValue(-1),
		"int32/1-untyp":  {Kind: &mxgatewayv1.MxValue_Int32Value{Int32Value: 1}},
		"int32/1-dtenum": mxtypes.Int32Value(tDTEnum, 1),
		"int64/0":        {DataType: tInt, Kind: &mxgatewayv1.MxValue_Int64Value{}},
		"int64/1":        {DataType: tInt, Kind: &mxgatewayv1.MxValue_Int64Value{Int64Value: 1}},
		"int64/big":      {DataType: tInt, Kind: &mxgatewayv1.MxValue_Int64Value{Int64Value: 1 << 40}},

		"float/0":      mxtypes.FloatValue(0),
		"float/-0":     mxtypes.FloatValue(float32(math.Copysign(0, -1))),
		"float/1.5":    mxtypes.FloatValue(1.5),
		"float/nan":    mxtypes.FloatValue(float32(math.NaN())),
		"float/nan-b":  mxtypes.FloatValue(nan32b),
		"float/inf":    mxtypes.FloatValue(float32(math.Inf(1))),
		"double/0":     mxtypes.DoubleValue(0),
		"double/-0":    mxtypes.DoubleValue(math.Copysign(0, -1)),
		"double/1.5":   mxtypes.DoubleValue(1.5),
		"double/1.5-b": mxtypes.DoubleValue(1.5),
		"double/nan":   mxtypes.DoubleValue(math.NaN()),
		"double/nan-b": mxtypes.DoubleValue(nan64b),
		"double/-inf":  mxtypes.DoubleValue(math.Inf(-1)),

		"string/empty": mxtypes.StringValue(""),
		"string/a":     mxtypes.StringValue("a"),
		"string/a-b":   mxtypes.StringValue("a"),
		"string/b":     mxtypes.StringValue("b"),

		"time/nil":     {DataType: tTime, Kind: &mxgatewayv1.MxValue_TimestampValue{}},
		"time/zero":    ts(0, 0),
		"time/1s":      ts(1, 0),
		"time/1s-b":    ts(1, 0),
		"time/1ns":     ts(0, 1),
		"time/now":     mxtypes.TimeValue(testStart),
		"time/unknown": withUnknownTS,
		"dur/nil":      {DataType: tElapsed, Kind: &mxgatewayv1.MxValue_DurationValue{}},
		"dur/zero":     dur(0, 0),
		"dur/1s":       dur(1, 0),
		"dur/1ns":      dur(0, 1),
		"dur/unknown":  withUnknownDur,

		"arr/nil":              arrayOf(nil),
		"arr/empty":            arrayOf(&mxgatewayv1.MxArray{}),
		"arr/eltype":           arrayOf(&mxgatewayv1.MxArray{ElementType: tInt}),
		"arr/elvt":             arrayOf(&mxgatewayv1.MxArray{ElementVariantType: 3}),
		"arr/typed-nil":        arrayOf(&mxgatewayv1.MxArray{Elements: (*mxgatewayv1.MxArray_Int32S)(nil)}),
		"arr/int32s-nil-inner": arrayOf(&mxgatewayv1.MxArray{Elements: &mxgatewayv1.MxArray_Int32S{}}),
		"arr/int32s-empty":     arrayOf(&mxgatewayv1.MxArray{Elements: &mxgatewayv1.MxArray_Int32S{Int32S: &mxgatewayv1.Int32Array{}}}),
		"arr/int64s-empty":     arrayOf(&mxgatewayv1.MxArray{Elements: &mxgatewayv1.MxArray_Int64S{Int64S: &mxgatewayv1.Int64Array{}}}),
		"arr/int32s-1,2":       i32s(1, 2),
		"arr/int32s-1,2-b":     i32s(1, 2),
		"arr/int32s-1,3":       i32s(1, 3),
		"arr/int32s-1,2,3":     i32s(1, 2, 3),
		"arr/int32s-1":         i32s(1),
		"arr/unknown":          withUnknownArr,
		"arr/unknown-inner":    withUnknownInner,
		"arr/dbl-nan":          dbls(1, math.NaN()),
		"arr/dbl-nan-b":        dbls(1, nan64b),
		"arr/dbl-1,2":          dbls(1, 2),
		"arr/dbl-zeros":        dbls(0, 0),
		"arr/dbl-negzeros":     dbls(math.Copysign(0, -1), 0),
		"arr/flt-nan":          flts(float32(math.NaN())),
		"arr/flt-nan-b":        flts(nan32b),
		"arr/flt-1":            flts(1),
		"arr/str-a,b":          strs("a", "b"),
		"arr/str-a,b-b":        strs("a", "b"),
		"arr/str-a,c":          strs("a", "c"),
		"arr/str-empty":        strs(),
		"arr/bools":            buildArray(tBool, []*mxgatewayv1.MxValue{mxtypes.BoolValue(true), mxtypes.BoolValue(false)}),
		"arr/bools-b":          buildArray(tBool, []*mxgatewayv1.MxValue{mxtypes.BoolValue(true), mxtypes.BoolValue(true)}),
		"arr/int64s": arrayOf(&mxgatewayv1.MxArray{Elements: &mxgatewayv1.MxArray_Int64S{
			Int64S: &mxgatewayv1.Int64Array{Values: []int64{1 << 40}}}}),
		"arr/times": arrayOf(&mxgatewayv1.MxArray{Elements: &mxgatewayv1.MxArray_Timestamps{
			Timestamps: &mxgatewayv1.TimestampArray{UnixNanos: []int64{1, 2}}}}),
		"arr/times-b": arrayOf(&mxgatewayv1.MxArray{Elements: &mxgatewayv1.MxArray_Timestamps{
			Timestamps: &mxgatewayv1.TimestampArray{UnixNanos: []int64{1, 3}}}}),
		"arr/times-nil": arrayOf(&mxgatewayv1.MxArray{Elements: &mxgatewayv1.MxArray_Timestamps{}}),
		"arr/durs": arrayOf(&mxgatewayv1.MxArray{Elements: &mxgatewayv1.MxArray_Durations{
			Durations: &mxgatewayv1.DurationArray{Nanos: []int64{5}}}}),
		"arr/durs-nil": arrayOf(&mxgatewayv1.MxArray{Elements: &mxgatewayv1.MxArray_Durations{}}),
	}
}

// TestValueEqualAgreesWithProtoEqual compares every pair of cases both ways.
func TestValueEqualAgreesWithProtoEqual(t *testing.T) {
	cases := valueCases()
	equalPairs := 0
	for na, a := range cases {
		for nb, b := range cases {
			want := proto.Equal(a, b)
			if got := valueEqual(a, b); got != want {
				t.Errorf("valueEqual(%s, %s) = %v, proto.Equal says %v", na, nb, got, want)
			}
			if want && na != nb {
				equalPairs++
			}
		}
	}
	// The table must exercise equality between distinct objects, not just
	// inequality.
	if equalPairs < 20 {
		t.Fatalf("only %d equal pairs of distinct cases; the table lost its equal twins", equalPairs)
	}
}

// TestValueEqualFloatRules pins the documented float rules.
func TestValueEqualFloatRules(t *testing.T) {
	nan := mxtypes.DoubleValue(math.NaN())
	for _, c := range []struct {
		name string
		a, b *mxgatewayv1.MxValue
		want bool
	}{
		{"NaN stays NaN", nan, mxtypes.DoubleValue(math.NaN()), true},
		{"NaN payloads", nan, mxtypes.DoubleValue(math.Float64frombits(0x7ff8000000000001)), true},
		{"NaN to number", nan, mxtypes.DoubleValue(1), false},
		{"number to NaN", mxtypes.DoubleValue(1), nan, false},
		{"-0 and +0", mxtypes.DoubleValue(math.Copysign(0, -1)), mxtypes.DoubleValue(0), true},
		{"float NaN", mxtypes.FloatValue(float32(math.NaN())), mxtypes.FloatValue(float32(math.NaN())), true},
		{"float vs double", mxtypes.FloatValue(1), mxtypes.DoubleValue(1), false},
	} {
		if got := valueEqual(c.a, c.b); got != c.want {
			t.Errorf("%s: valueEqual = %v, want %v", c.name, got, c.want)
		}
	}
}

// TestCloneValueMatchesProtoClone checks that cloneValue and cloneInto
// give what proto.Clone gives and that the copy shares nothing mutable.
func TestCloneValueMatchesProtoClone(t *testing.T) {
	t.Run("cloneValue", func(t *testing.T) { testClone(t, cloneValue) })
	t.Run("cloneInto", func(t *testing.T) {
		testClone(t, func(v *mxgatewayv1.MxValue) *mxgatewayv1.MxValue { return cloneInto(v, &int32Box{}) })
	})
}

func testClone(t *testing.T, clone func(*mxgatewayv1.MxValue) *mxgatewayv1.MxValue) {
	det := proto.MarshalOptions{Deterministic: true}
	for name, v := range valueCases() {
		got := clone(v)
		want := proto.Clone(v)
		if v == nil {
			if got != nil {
				t.Errorf("%s: clone of nil = %v", name, got)
			}
			continue
		}
		if got == v {
			t.Errorf("%s: clone is the same pointer", name)
		}
		if !proto.Equal(got, want) {
			t.Errorf("%s: cloneValue = %v, proto.Clone = %v", name, got, want)
		}
		gb, err1 := det.Marshal(got)
		wb, err2 := det.Marshal(want)
		if err1 != nil || err2 != nil || string(gb) != string(wb) {
			t.Errorf("%s: encodings differ: %x vs %x (%v, %v)", name, gb, wb, err1, err2)
		}
		// Scribble over every mutable part of the copy; the original must
		// not change.
		before := proto.Clone(v)
		scribble(got)
		if !proto.Equal(v, before) {
			t.Errorf("%s: changing the clone changed the original", name)
		}
	}
}

// scribble changes every element, sub-message and list of v in place.
func scribble(v *mxgatewayv1.MxValue) {
	v.Diagnostic = "scribbled"
	switch k := v.Kind.(type) {
	case *mxgatewayv1.MxValue_Int32Value:
		k.Int32Value++
	case *mxgatewayv1.MxValue_DoubleValue:
		k.DoubleValue++
	case *mxgatewayv1.MxValue_StringValue:
		k.StringValue += "!"
	case *mxgatewayv1.MxValue_TimestampValue:
		if k.TimestampValue != nil {
			k.TimestampValue.Seconds++
		}
	case *mxgatewayv1.MxValue_DurationValue:
		if k.DurationValue != nil {
			k.DurationValue.Seconds++
		}
	case *mxgatewayv1.MxValue_ArrayValue:
		a := k.ArrayValue
		if a == nil {
			return
		}
		a.ElementVariantType++
		switch e := a.Elements.(type) {
		case *mxgatewayv1.MxArray_Int32S:
			for i := range e.Int32S.GetValues() {
				e.Int32S.Values[i]++
			}
		case *mxgatewayv1.MxArray_Doubles:
			for i := range e.Doubles.GetValues() {
				e.Doubles.Values[i]++
			}
		case *mxgatewayv1.MxArray_Floats:
			for i := range e.Floats.GetValues() {
				e.Floats.Values[i]++
			}
		case *mxgatewayv1.MxArray_Strings:
			for i := range e.Strings.GetValues() {
				e.Strings.Values[i] += "!"
			}
		case *mxgatewayv1.MxArray_Bools:
			for i := range e.Bools.GetValues() {
				e.Bools.Values[i] = !e.Bools.Values[i]
			}
		case *mxgatewayv1.MxArray_Int64S:
			for i := range e.Int64S.GetValues() {
				e.Int64S.Values[i]++
			}
		case *mxgatewayv1.MxArray_Timestamps:
			for i := range e.Timestamps.GetUnixNanos() {
				e.Timestamps.UnixNanos[i]++
			}
		case *mxgatewayv1.MxArray_Durations:
			for i := range e.Durations.GetNanos() {
				e.Durations.Nanos[i]++
			}
		}
	}
}

// TestValueEqualCoversFields fails when MxValue, MxArray or an element list
// gains a field: valueEqual and cloneValue must then learn it.
func TestValueEqualCoversFields(t *testing.T) {
	for _, c := range []struct {
		msg  proto.Message
		want string
	}{
		{&mxgatewayv1.MxValue{}, "data_type variant_type is_null diagnostic bool_value int32_value int64_value float_value double_value string_value timestamp_value duration_value array_value"},
		{&mxgatewayv1.MxArray{}, "element_type element_variant_type bools int32s int64s floats doubles strings timestamps durations"},
		{&mxgatewayv1.BoolArray{}, "values"},
		{&mxgatewayv1.Int32Array{}, "values"},
		{&mxgatewayv1.Int64Array{}, "values"},
		{&mxgatewayv1.FloatArray{}, "values"},
		{&mxgatewayv1.DoubleArray{}, "values"},
		{&mxgatewayv1.StringArray{}, "values"},
		{&mxgatewayv1.TimestampArray{}, "unix_nanos"},
		{&mxgatewayv1.DurationArray{}, "nanos"},
		{&timestamppb.Timestamp{}, "seconds nanos"},
		{&durationpb.Duration{}, "seconds nanos"},
	} {
		fields := c.msg.ProtoReflect().Descriptor().Fields()
		got := ""
		for i := range fields.Len() {
			if i > 0 {
				got += " "
			}
			got += string(fields.Get(i).Name())
		}
		if got != c.want {
			t.Errorf("%s has fields %q; valueeq.go handles %q", c.msg.ProtoReflect().Descriptor().FullName(), got, c.want)
		}
	}
}

// FuzzValueEqual decodes two values from arbitrary bytes (unknown fields
// included) and checks valueEqual against proto.Equal, and cloneValue
// against proto.Clone.
func FuzzValueEqual(f *testing.F) {
	var enc [][]byte
	for _, v := range valueCases() {
		if v == nil {
			continue
		}
		b, err := proto.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		enc = append(enc, b)
	}
	for i, a := range enc {
		f.Add(a, a)
		f.Add(a, enc[(i+1)%len(enc)])
	}
	f.Fuzz(func(t *testing.T, x, y []byte) {
		a, b := &mxgatewayv1.MxValue{}, &mxgatewayv1.MxValue{}
		if proto.Unmarshal(x, a) != nil || proto.Unmarshal(y, b) != nil {
			return
		}
		if got, want := valueEqual(a, b), proto.Equal(a, b); got != want {
			t.Fatalf("valueEqual(%v, %v) = %v, proto.Equal says %v", a, b, got, want)
		}
		if !valueEqual(a, a) || !valueEqual(a, proto.Clone(a).(*mxgatewayv1.MxValue)) {
			t.Fatalf("%v is not equal to itself", a)
		}
		if c := cloneValue(a); !proto.Equal(c, a) {
			t.Fatalf("cloneValue(%v) = %v", a, c)
		}
	})
}

// TestNaNValueFiresOnce: an attribute that becomes NaN sends one
// OnDataChange, writing NaN again sends none, and leaving NaN sends one.
func TestNaNValueFiresOnce(t *testing.T) {
	e := newEnv(t, envOpt{})
	h := e.reg()
	hi, _ := e.sub(h, "Obj.PV")
	step := func(v *mxgatewayv1.MxValue, want int) {
		t.Helper()
		e.write(h, hi, v)
		e.advance(time.Second)
		dcs := dataChanges(e.rec.take())
		if len(dcs) != want {
			t.Fatalf("write %v: %d OnDataChange, want %d", v, len(dcs), want)
		}
		if want == 1 && !valueEqual(dcs[0].GetValue(), v) {
			t.Fatalf("write %v: delivered %v", v, dcs[0].GetValue())
		}
	}
	step(mxtypes.DoubleValue(math.NaN()), 1)
	step(mxtypes.DoubleValue(math.NaN()), 0)
	step(mxtypes.DoubleValue(2.5), 1)
	step(mxtypes.DoubleValue(2.5), 0)
}

// BenchmarkValueEqual compares the typed comparison with proto.Equal on a
// scalar pair and a 16-element array pair.
func BenchmarkValueEqual(b *testing.B) {
	arr := func() *mxgatewayv1.MxValue {
		e := make([]*mxgatewayv1.MxValue, 16)
		for i := range e {
			e[i] = mxtypes.DoubleValue(float64(i))
		}
		return buildArray(tDouble, e)
	}
	pairs := []struct {
		name string
		x, y *mxgatewayv1.MxValue
	}{
		{"int32", mxtypes.IntegerValue(1), mxtypes.IntegerValue(2)},
		{"array16", arr(), arr()},
	}
	for _, p := range pairs {
		b.Run(fmt.Sprintf("%s/typed", p.name), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				valueEqual(p.x, p.y)
			}
		})
		b.Run(fmt.Sprintf("%s/proto", p.name), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				proto.Equal(p.x, p.y)
			}
		})
	}
}

// TestInPlaceBuildersMatchBackend checks that the data change event built in
// one block carries what mxtypes.NewQuality and mxtypes.Timestamp make.
func TestInPlaceBuildersMatchBackend(t *testing.T) {
	for q := range 1 << 16 {
		var got mxgatewayv1.Quality
		setQuality(&got, uint16(q))
		if want := mxtypes.NewQuality(uint16(q)); !proto.Equal(&got, want) {
			t.Fatalf("quality %#x: %v, mxtypes.NewQuality gives %v", q, &got, want)
		}
	}
	// The memo, fed repeats and changes of quality, into a used message.
	var memo qualityMemo
	var got mxgatewayv1.Quality
	for _, q := range []uint16{mxtypes.QualityGood, mxtypes.QualityGood, mxtypes.QualityBad, 0x44, 0x44, mxtypes.QualityGood, 0xFFFF, 0} {
		memo.set(&got, q)
		if want := mxtypes.NewQuality(q); !proto.Equal(&got, want) {
			t.Errorf("memo, quality %#x: %v, mxtypes.NewQuality gives %v", q, &got, want)
		}
	}
	for _, s := range []statusSpec{
		{n: 1, success: -1}, {n: 1, success: 1}, {n: 3, category: catConfig, source: srcRespondingLmx, detail: detailArrayWithoutBrackets},
		{n: 1, category: -7, source: 99, detail: -2},
	} {
		got := &mxgatewayv1.MxStatus{Success: true, Detail: 5, CategoryRaw: 8}
		s.fill(got)
		want := mxtypes.NewStatus(s.success, s.category, s.source, s.detail)
		if !proto.Equal(got, want) {
			t.Errorf("%+v: fill gives %v, mxtypes.NewStatus %v", s, got, want)
		}
		arr := s.build()
		if len(arr) != s.n {
			t.Errorf("%+v: build gives %d entries", s, len(arr))
		}
		for _, e := range arr {
			if !proto.Equal(e, want) {
				t.Errorf("%+v: build gives %v, mxtypes.NewStatus %v", s, e, want)
			}
		}
	}
	for _, v := range []int32{0, 1, -1, math.MaxInt32, math.MinInt32} {
		if got, want := intValue(v), mxtypes.IntegerValue(v); !proto.Equal(got, want) {
			t.Errorf("intValue(%d) = %v, mxtypes.IntegerValue gives %v", v, got, want)
		}
	}
	zone := time.FixedZone("X", -5*3600)
	for _, ts := range []time.Time{
		testStart, testStart.Add(1234567 * time.Nanosecond), time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(2026, 3, 4, 5, 6, 7, 891011121, zone), {},
	} {
		var got timestamppb.Timestamp
		setTimestamp(&got, ts)
		if want := mxtypes.Timestamp(ts); !proto.Equal(&got, want) {
			t.Errorf("%v: %v, mxtypes.Timestamp gives %v", ts, &got, want)
		}
	}
}
