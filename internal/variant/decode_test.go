package variant

import (
	"encoding/binary"
	"errors"
	"math"
	"testing"
)

func u64(b []byte) uint64 {
	var x [8]byte
	copy(x[:], b)
	return binary.LittleEndian.Uint64(x[:])
}

func TestVTString(t *testing.T) {
	cases := map[VT]string{
		VT_I4:                           "VT_I4",
		VT_BYREF | VT_ARRAY | VT_RECORD: "VT_BYREF|VT_ARRAY|VT_RECORD",
		VT(0x77):                        "VT_0x77",
	}
	for vt, want := range cases {
		if got := vt.String(); got != want {
			t.Errorf("%#x: got %q want %q", uint16(vt), got, want)
		}
	}
}

func TestReadVariantScalars(t *testing.T) {
	a := NewArena()
	i32 := a.Alloc([]byte{0xFE, 0xFF, 0xFF, 0xFF}) // -2
	bstr := a.BSTR("Tank\U0001F600.PV")
	bstrSlot := a.Alloc(binary.LittleEndian.AppendUint32(nil, bstr))
	inner := a.Variant(VT_R8, math.Float64bits(2.5))
	dec := make([]byte, 16)
	dec[2] = 2                                    // scale
	dec[3] = 0x80                                 // negative
	binary.LittleEndian.PutUint64(dec[8:], 12345) // -123.45

	cases := []struct {
		name    string
		raw     []byte
		wantVT  VT
		wantInt int64
		wantF   float64
		wantStr string
		isInt   bool
		isFloat bool
	}{
		{name: "I2 negative", raw: VariantRaw(VT_I2, 0xFFFF_FFFF_FFFF_8000), wantVT: VT_I2, wantInt: -32768, isInt: true},
		{name: "I4", raw: VariantRaw(VT_I4, 0xDEAD_0000_0000_002A), wantVT: VT_I4, wantInt: 42, isInt: true},
		{name: "UI1", raw: VariantRaw(VT_UI1, 0xFF), wantVT: VT_UI1, wantInt: 255, isInt: true},
		{name: "I1", raw: VariantRaw(VT_I1, 0x80), wantVT: VT_I1, wantInt: -128, isInt: true},
		{name: "UI4 high", raw: VariantRaw(VT_UI4, 0xFFFFFFFF), wantVT: VT_UI4, wantInt: 4294967295, isInt: true},
		{name: "I8", raw: VariantRaw(VT_I8, uint64(1)<<40), wantVT: VT_I8, wantInt: 1 << 40, isInt: true},
		{name: "R4", raw: VariantRaw(VT_R4, uint64(math.Float32bits(1.5))), wantVT: VT_R4, wantF: 1.5, isFloat: true},
		{name: "R8", raw: VariantRaw(VT_R8, math.Float64bits(-3.25)), wantVT: VT_R8, wantF: -3.25, isFloat: true},
		{name: "DATE", raw: VariantRaw(VT_DATE, math.Float64bits(45000.5)), wantVT: VT_DATE, wantF: 45000.5, isFloat: true},
		{name: "BSTR with surrogate pair", raw: VariantRaw(VT_BSTR, uint64(bstr)), wantVT: VT_BSTR, wantStr: "Tank\U0001F600.PV"},
		{name: "null BSTR is empty", raw: VariantRaw(VT_BSTR, 0), wantVT: VT_BSTR, wantStr: ""},
		{name: "BYREF I4", raw: VariantRaw(VT_BYREF|VT_I4, uint64(i32)), wantVT: VT_I4, wantInt: -2, isInt: true},
		{name: "BYREF BSTR", raw: VariantRaw(VT_BYREF|VT_BSTR, uint64(bstrSlot)), wantVT: VT_BSTR, wantStr: "Tank\U0001F600.PV"},
		{name: "BYREF VARIANT", raw: VariantRaw(VT_BYREF|VT_VARIANT, uint64(inner)), wantVT: VT_R8, wantF: 2.5, isFloat: true},
		{name: "EMPTY", raw: VariantRaw(VT_EMPTY, 0), wantVT: VT_EMPTY},
		{name: "DECIMAL", raw: append(binary.LittleEndian.AppendUint16(nil, uint16(VT_DECIMAL)), dec[2:]...), wantVT: VT_DECIMAL},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			addr := a.Alloc(tc.raw)
			v, err := ReadVariant(a, addr)
			if err != nil {
				t.Fatal(err)
			}
			if v.VT != tc.wantVT {
				t.Fatalf("VT %s, want %s", v.VT, tc.wantVT)
			}
			if v.RawVT != VT(binary.LittleEndian.Uint16(tc.raw)) {
				t.Errorf("RawVT %s", v.RawVT)
			}
			if tc.isInt {
				if i, ok := v.Int(); !ok || i != tc.wantInt {
					t.Errorf("Int = %d,%v want %d", i, ok, tc.wantInt)
				}
			}
			if tc.isFloat {
				if f, ok := v.Float(); !ok || f != tc.wantF {
					t.Errorf("Float = %v,%v want %v", f, ok, tc.wantF)
				}
			}
			if v.Str != tc.wantStr {
				t.Errorf("Str = %q want %q", v.Str, tc.wantStr)
			}
		})
	}
}

func TestReadVariantErrors(t *testing.T) {
	a := NewArena()
	nested := a.Variant(VT_BYREF|VT_VARIANT, 0x10000)
	cases := []struct {
		name string
		raw  []byte
		want error
	}{
		{"null byref", VariantRaw(VT_BYREF|VT_I4, 0), ErrNullPointer},
		{"nested byref variant", VariantRaw(VT_BYREF|VT_VARIANT, uint64(nested)), ErrMalformed},
		{"bare VT_VARIANT", VariantRaw(VT_VARIANT, 0), ErrMalformed},
		{"unknown VT", VariantRaw(VT(0x55), 0), ErrMalformed},
		{"dangling byref", VariantRaw(VT_BYREF|VT_I4, 0x7FFF0000), ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadVariant(a, a.Alloc(tc.raw))
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestReadArrays(t *testing.T) {
	a := NewArena()
	s1, s2 := a.BSTR("a"), a.BSTR("bc")
	strData := binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, s1), s2)
	strArr := a.SafeArray(FADF_BSTR|FADF_HAVEVARTYPE, VT_BSTR, 4, 1, 2, strData)

	var r8 []byte
	for _, f := range []float64{1, 2, 3} {
		r8 = binary.LittleEndian.AppendUint64(r8, math.Float64bits(f))
	}
	r8Arr := a.SafeArray(0, 0, 8, 0, 3, r8)
	badSize := a.SafeArray(0, 0, 4, 0, 3, r8)
	wrongVT := a.SafeArray(FADF_HAVEVARTYPE, VT_I4, 8, 0, 3, r8)
	varData := append(VariantRaw(VT_I4, 7), VariantRaw(VT_BOOL, 0xFFFF)...)
	varArr := a.SafeArray(FADF_VARIANT, 0, 16, 0, 2, varData)
	slot := a.Alloc(binary.LittleEndian.AppendUint32(nil, r8Arr))

	t.Run("BSTR array with lower bound 1", func(t *testing.T) {
		v, err := ReadVariant(a, a.Variant(VT_ARRAY|VT_BSTR, uint64(strArr)))
		if err != nil {
			t.Fatal(err)
		}
		if v.Array.Header.Bounds[0].Lower != 1 || len(v.Array.Elems) != 2 || v.Array.Elems[1].Str != "bc" {
			t.Fatalf("got %+v", v.Array)
		}
		if v.Array.Header.VT != VT_BSTR {
			t.Errorf("FADF_HAVEVARTYPE VT = %s", v.Array.Header.VT)
		}
	})
	t.Run("BYREF R8 array", func(t *testing.T) {
		v, err := ReadVariant(a, a.Variant(VT_BYREF|VT_ARRAY|VT_R8, uint64(slot)))
		if err != nil {
			t.Fatal(err)
		}
		if v.VT != VT_ARRAY|VT_R8 || len(v.Array.Elems) != 3 {
			t.Fatalf("got %s %+v", v.VT, v.Array)
		}
		if f, _ := v.Array.Elems[2].Float(); f != 3 {
			t.Errorf("elem 2 = %v", f)
		}
	})
	t.Run("VARIANT array", func(t *testing.T) {
		v, err := ReadVariant(a, a.Variant(VT_ARRAY|VT_VARIANT, uint64(varArr)))
		if err != nil {
			t.Fatal(err)
		}
		if v.Array.Elems[0].VT != VT_I4 || v.Array.Elems[1].VT != VT_BOOL {
			t.Fatalf("got %+v", v.Array.Elems)
		}
	})
	t.Run("null SAFEARRAY is empty", func(t *testing.T) {
		v, err := ReadVariant(a, a.Variant(VT_ARRAY|VT_I4, 0))
		if err != nil || v.Array == nil || len(v.Array.Elems) != 0 {
			t.Fatalf("v=%+v err=%v", v, err)
		}
	})
	t.Run("element size mismatch", func(t *testing.T) {
		if _, err := ReadVariant(a, a.Variant(VT_ARRAY|VT_R8, uint64(badSize))); !errors.Is(err, ErrMalformed) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("vartype mismatch", func(t *testing.T) {
		if _, err := ReadVariant(a, a.Variant(VT_ARRAY|VT_R8, uint64(wrongVT))); !errors.Is(err, ErrMalformed) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("too many elements", func(t *testing.T) {
		huge := a.SafeArray(0, 0, 4, 0, MaxArrayElements+1, []byte{1, 2, 3, 4})
		if _, err := ReadVariant(a, a.Variant(VT_ARRAY|VT_I4, uint64(huge))); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestReadArgsReversed(t *testing.T) {
	a := NewArena()
	dp := a.DispParams(VariantRaw(VT_I4, 1), VariantRaw(VT_I4, 2), VariantRaw(VT_BSTR, uint64(a.BSTR("x"))))
	args, err := ReadArgs(a, dp)
	if err != nil {
		t.Fatal(err)
	}
	if len(args) != 3 {
		t.Fatalf("%d args", len(args))
	}
	if i, _ := args[0].Int(); i != 1 {
		t.Errorf("arg0 = %v", args[0])
	}
	if i, _ := args[1].Int(); i != 2 {
		t.Errorf("arg1 = %v", args[1])
	}
	if args[2].Str != "x" {
		t.Errorf("arg2 = %v", args[2])
	}
}

func TestReadArgsNamed(t *testing.T) {
	a := NewArena()
	// cArgs 2, cNamedArgs 1: rgvarg[0] is named (DISPID 0), rgvarg[1] positional arg 0?
	// Positional arguments fill the low positions; the named one names position 1.
	rg := a.Alloc(append(VariantRaw(VT_I4, 20), VariantRaw(VT_I4, 10)...))
	named := a.Alloc(binary.LittleEndian.AppendUint32(nil, 1))
	b := make([]byte, DispParamsSize)
	binary.LittleEndian.PutUint32(b[0:], rg)
	binary.LittleEndian.PutUint32(b[4:], named)
	binary.LittleEndian.PutUint32(b[8:], 2)
	binary.LittleEndian.PutUint32(b[12:], 1)
	args, err := ReadArgs(a, a.Alloc(b))
	if err != nil {
		t.Fatal(err)
	}
	if i, _ := args[0].Int(); i != 10 {
		t.Errorf("arg0 = %v", args[0])
	}
	if i, _ := args[1].Int(); i != 20 {
		t.Errorf("arg1 = %v", args[1])
	}
}

func TestReadArgsRejectsMalformed(t *testing.T) {
	a := NewArena()
	b := make([]byte, DispParamsSize)
	binary.LittleEndian.PutUint32(b[8:], MaxArgs+1)
	if _, err := ReadArgs(a, a.Alloc(b)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("err = %v", err)
	}
	if _, err := ReadArgs(a, 0); !errors.Is(err, ErrNullPointer) {
		t.Fatalf("err = %v", err)
	}
}

func TestReadExcepInfo(t *testing.T) {
	a := NewArena()
	b := make([]byte, ExcepInfoSize)
	binary.LittleEndian.PutUint32(b[4:], a.BSTR("LMXProxy"))
	binary.LittleEndian.PutUint32(b[8:], a.BSTR("Value does not fall within the expected range."))
	binary.LittleEndian.PutUint32(b[28:], 0x80070057)
	e, err := ReadExcepInfo(a, a.Alloc(b))
	if err != nil {
		t.Fatal(err)
	}
	if e.HRESULT() != -2147024809 {
		t.Errorf("HRESULT = %#x", uint32(e.HRESULT()))
	}
	if e.Message() != "LMXProxy: Value does not fall within the expected range." {
		t.Errorf("Message = %q", e.Message())
	}
	if (ExcepInfo{Code: 5}).HRESULT() != int32(-2147221499) { // 0x80040005
		t.Errorf("wCode mapping")
	}
}

func TestVariantBytes(t *testing.T) {
	cases := []struct {
		name string
		v    Value
		ptr  uint32
		want []byte
	}{
		{"bool true", Bool(true), 0, []byte{11, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0, 0, 0, 0, 0, 0}},
		{"I4 -1", Int32(-1), 0, []byte{3, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0}},
		{"R4", Float32(1), 0, []byte{4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x3F, 0, 0, 0, 0}},
		{"BSTR ptr", BSTR("x"), 0x11223344, []byte{8, 0, 0, 0, 0, 0, 0, 0, 0x44, 0x33, 0x22, 0x11, 0, 0, 0, 0}},
		{"byref I4", Value{VT: VT_BYREF | VT_I4}, 0x1000, []byte{3, 0x40, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0}},
		{"UI1 (not go-ole's VT_I1)", Scalar(VT_UI1, 200), 0, []byte{17, 0, 0, 0, 0, 0, 0, 0, 200, 0, 0, 0, 0, 0, 0, 0}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := VariantBytes(tc.v, tc.ptr)
			if err != nil {
				t.Fatal(err)
			}
			if string(got[:]) != string(tc.want) {
				t.Fatalf("got % X\nwant % X", got, tc.want)
			}
		})
	}
	if _, err := VariantBytes(Value{VT: VT_RECORD}, 0); err == nil {
		t.Fatal("VT_RECORD encoded inline")
	}
}

func TestElementBytes(t *testing.T) {
	arr := NewArray(VT_BOOL, []Value{Bool(true), Bool(false), Bool(true)}).Array
	got, err := ElementBytes(arr)
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte{0xFF, 0xFF, 0, 0, 0xFF, 0xFF}; string(got) != string(want) {
		t.Fatalf("got % X", got)
	}
	// Round trip through the decoder.
	a := NewArena()
	sa := a.SafeArray(0, 0, 2, 0, 3, got)
	v, err := ReadVariant(a, a.Variant(VT_ARRAY|VT_BOOL, uint64(sa)))
	if err != nil || len(v.Array.Elems) != 3 || uint16(v.Array.Elems[1].Bits) != 0 {
		t.Fatalf("v=%+v err=%v", v, err)
	}
	if _, err := ElementBytes(NewArray(VT_BSTR, []Value{BSTR("a")}).Array); err == nil {
		t.Fatal("packed BSTR elements")
	}
	if _, err := ElementBytes(&Array{ElemVT: VT_I4, Elems: []Value{Float64(1)}}); err == nil {
		t.Fatal("packed mismatched element")
	}
}
