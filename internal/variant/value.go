package variant

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Value is a Go copy of a VARIANT, taken while the VARIANT was valid (for
// example inside an event callback). It owns no COM memory.
type Value struct {
	// VT is the effective type: VT_BYREF is followed, and a
	// VT_BYREF|VT_VARIANT is replaced by the referenced VARIANT's type.
	VT VT
	// RawVT is the type exactly as it was in the VARIANT.
	RawVT VT
	// Bits holds scalars as their little-endian bit pattern, zero-extended:
	// VT_I1..VT_UI8, VT_INT, VT_UINT, VT_R4 (float32 bits), VT_R8, VT_DATE
	// (float64 bits), VT_CY, VT_BOOL, VT_ERROR, VT_FILETIME.
	Bits uint64
	// Str holds a VT_BSTR.
	Str string
	// Array holds a VT_ARRAY.
	Array *Array
	// Raw holds a VT_DECIMAL (16 bytes) or a VT_RECORD's bytes.
	Raw []byte
	// Ptr holds the pointer of types this package does not follow
	// (VT_DISPATCH, VT_UNKNOWN), for diagnostics only.
	Ptr uint32
}

// Array is a decoded SAFEARRAY.
type Array struct {
	// ElemVT is the element type (VT_ARRAY stripped).
	ElemVT VT
	// Header is the descriptor as read.
	Header SafeArray
	// Elems holds the elements of non-record arrays, in memory order.
	Elems []Value
	// Raw holds the element bytes of record arrays (VT_RECORD elements),
	// Count*ElemSize bytes, exactly as in memory.
	Raw []byte
}

// Int32 returns a VT_I4 value.
func Int32(v int32) Value { return Value{VT: VT_I4, RawVT: VT_I4, Bits: uint64(uint32(v))} }

// Int16 returns a VT_I2 value.
func Int16(v int16) Value { return Value{VT: VT_I2, RawVT: VT_I2, Bits: uint64(uint16(v))} }

// Bool returns a VT_BOOL value (VARIANT_TRUE is -1).
func Bool(v bool) Value {
	var b uint16
	if v {
		b = 0xFFFF
	}
	return Value{VT: VT_BOOL, RawVT: VT_BOOL, Bits: uint64(b)}
}

// Float32 returns a VT_R4 value.
func Float32(v float32) Value {
	return Value{VT: VT_R4, RawVT: VT_R4, Bits: uint64(math.Float32bits(v))}
}

// Float64 returns a VT_R8 value.
func Float64(v float64) Value {
	return Value{VT: VT_R8, RawVT: VT_R8, Bits: math.Float64bits(v)}
}

// Date returns a VT_DATE value from an OLE Automation date.
func Date(oa float64) Value { return Value{VT: VT_DATE, RawVT: VT_DATE, Bits: math.Float64bits(oa)} }

// BSTR returns a VT_BSTR value.
func BSTR(s string) Value { return Value{VT: VT_BSTR, RawVT: VT_BSTR, Str: s} }

// Empty returns a VT_EMPTY value.
func Empty() Value { return Value{} }

// Scalar returns a value of scalar type vt with the given bit pattern.
func Scalar(vt VT, bits uint64) Value { return Value{VT: vt, RawVT: vt, Bits: bits} }

// NewArray returns a one-dimensional VT_ARRAY value with lower bound 0.
func NewArray(elemVT VT, elems []Value) Value {
	return Value{VT: VT_ARRAY | elemVT, RawVT: VT_ARRAY | elemVT, Array: &Array{
		ElemVT: elemVT,
		Header: SafeArray{Dims: 1, ElemSize: elemSize(elemVT), Bounds: []Bound{{Elements: uint32(len(elems))}}},
		Elems:  elems,
	}}
}

// Int returns the value of an integer type as int64 (signed types sign
// extended), and false for other types.
func (v Value) Int() (int64, bool) {
	switch v.VT {
	case VT_I1:
		return int64(int8(v.Bits)), true
	case VT_I2:
		return int64(int16(v.Bits)), true
	case VT_I4, VT_INT, VT_ERROR, VT_HRESULT:
		return int64(int32(v.Bits)), true
	case VT_I8:
		return int64(v.Bits), true
	case VT_UI1:
		return int64(uint8(v.Bits)), true
	case VT_UI2:
		return int64(uint16(v.Bits)), true
	case VT_UI4, VT_UINT:
		return int64(uint32(v.Bits)), true
	case VT_UI8:
		if v.Bits > math.MaxInt64 {
			return 0, false
		}
		return int64(v.Bits), true
	}
	return 0, false
}

// Float returns VT_R4, VT_R8 and VT_DATE values as float64.
func (v Value) Float() (float64, bool) {
	switch v.VT {
	case VT_R4:
		return float64(math.Float32frombits(uint32(v.Bits))), true
	case VT_R8, VT_DATE:
		return math.Float64frombits(v.Bits), true
	}
	return 0, false
}

// String describes the value for logs and diagnostics.
func (v Value) String() string {
	switch {
	case v.VT.IsArray() && v.Array != nil:
		n, _ := v.Array.Header.Count()
		return fmt.Sprintf("%s[%d]", v.VT, n)
	case v.VT == VT_BSTR:
		return fmt.Sprintf("%s(%q)", v.VT, v.Str)
	case v.VT == VT_BOOL:
		return fmt.Sprintf("%s(0x%04X)", v.VT, uint16(v.Bits))
	case v.VT == VT_EMPTY || v.VT == VT_NULL:
		return v.VT.String()
	}
	if i, ok := v.Int(); ok {
		return fmt.Sprintf("%s(%d)", v.VT, i)
	}
	if f, ok := v.Float(); ok {
		return fmt.Sprintf("%s(%v)", v.VT, f)
	}
	if len(v.Raw) > 0 {
		return fmt.Sprintf("%s(% X)", v.VT, v.Raw)
	}
	return fmt.Sprintf("%s(bits=0x%X)", v.VT, v.Bits)
}

// ReadVariant copies the VARIANT at addr into a Value, following VT_BYREF,
// BSTRs and SAFEARRAYs. It never frees or modifies anything.
func ReadVariant(m Memory, addr uint32) (Value, error) {
	return readVariant(m, addr, 0)
}

func readVariant(m Memory, addr uint32, depth int) (Value, error) {
	if addr == 0 {
		return Value{}, fmt.Errorf("%w: VARIANT", ErrNullPointer)
	}
	b, err := m.Read(addr, VariantSize)
	if err != nil {
		return Value{}, err
	}
	raw := VT(binary.LittleEndian.Uint16(b))
	if raw == VT_DECIMAL {
		// DECIMAL overlays the whole VARIANT; its wReserved is the vt.
		return Value{VT: VT_DECIMAL, RawVT: raw, Raw: b}, nil
	}
	data := b[8:16]
	if !raw.IsByRef() {
		v, err := decodeInline(m, raw, data)
		v.RawVT = raw
		return v, err
	}
	// VT_BYREF: the data is a pointer to the value.
	p := binary.LittleEndian.Uint32(data)
	if p == 0 {
		return Value{}, fmt.Errorf("%w: %s", ErrNullPointer, raw)
	}
	base := raw &^ VT_BYREF
	if base == VT_VARIANT {
		if depth > 0 {
			return Value{}, fmt.Errorf("%w: nested VT_BYREF|VT_VARIANT", ErrMalformed)
		}
		v, err := readVariant(m, p, depth+1)
		v.RawVT = raw
		return v, err
	}
	var v Value
	switch {
	case base.IsArray():
		// Pointer to an LPSAFEARRAY.
		sa, err := readU32(m, p)
		if err != nil {
			return Value{}, err
		}
		v, err = decodeArrayValue(m, base, sa)
		if err != nil {
			return Value{}, err
		}
	case base == VT_DECIMAL:
		d, err := m.Read(p, 16)
		if err != nil {
			return Value{}, err
		}
		v = Value{VT: VT_DECIMAL, Raw: d}
	default:
		size := elemSize(base)
		if size == 0 {
			return Value{}, fmt.Errorf("%w: unsupported %s", ErrMalformed, raw)
		}
		d, err := m.Read(p, int(size))
		if err != nil {
			return Value{}, err
		}
		if v, err = decodeElem(m, base, d); err != nil {
			return Value{}, err
		}
	}
	v.RawVT = raw
	return v, nil
}

// decodeInline decodes the 8 data bytes of a non-BYREF VARIANT.
func decodeInline(m Memory, vt VT, data []byte) (Value, error) {
	switch {
	case vt == VT_EMPTY || vt == VT_NULL:
		return Value{VT: vt}, nil
	case vt.IsArray():
		return decodeArrayValue(m, vt, binary.LittleEndian.Uint32(data))
	case vt == VT_RECORD:
		// pvRecord@8, pRecInfo@12. The size comes from IRecordInfo, which
		// this package cannot call; the COM layer decodes single records.
		return Value{VT: VT_RECORD, Ptr: binary.LittleEndian.Uint32(data)}, nil
	case vt == VT_VARIANT:
		return Value{}, fmt.Errorf("%w: VT_VARIANT without VT_BYREF", ErrMalformed)
	}
	size := elemSize(vt)
	if size == 0 || size > 8 {
		return Value{}, fmt.Errorf("%w: unsupported %s", ErrMalformed, vt)
	}
	return decodeElem(m, vt, data[:size])
}

// decodeElem decodes one scalar of type vt from its memory bytes.
func decodeElem(m Memory, vt VT, d []byte) (Value, error) {
	v := Value{VT: vt, RawVT: vt}
	switch len(d) {
	case 1:
		v.Bits = uint64(d[0])
	case 2:
		v.Bits = uint64(binary.LittleEndian.Uint16(d))
	case 4:
		v.Bits = uint64(binary.LittleEndian.Uint32(d))
	case 8:
		v.Bits = binary.LittleEndian.Uint64(d)
	case 16:
		if vt == VT_VARIANT {
			return Value{}, fmt.Errorf("%w: VARIANT element needs an address", ErrMalformed)
		}
		v.Raw = append([]byte(nil), d...)
		return v, nil
	}
	switch vt {
	case VT_BSTR, VT_LPWSTR:
		s, err := ReadBSTR(m, uint32(v.Bits))
		if err != nil {
			return Value{}, err
		}
		v.VT, v.RawVT, v.Str, v.Bits = VT_BSTR, VT_BSTR, s, 0
	case VT_DISPATCH, VT_UNKNOWN, VT_LPSTR:
		v.Ptr, v.Bits = uint32(v.Bits), 0
	}
	return v, nil
}

// decodeArrayValue reads the SAFEARRAY at sa as an array of vt's element type.
func decodeArrayValue(m Memory, vt VT, sa uint32) (Value, error) {
	v := Value{VT: vt &^ VT_BYREF, RawVT: vt}
	if sa == 0 {
		// A null SAFEARRAY pointer is an empty array.
		v.Array = &Array{ElemVT: vt.Base()}
		return v, nil
	}
	arr, err := ReadArray(m, sa, vt.Base())
	if err != nil {
		return Value{}, err
	}
	v.Array = arr
	return v, nil
}

// ReadArray copies the SAFEARRAY at addr. elemVT is the element type from
// the VARIANT; when the array itself records a type (FADF_HAVEVARTYPE) the
// two must agree. Record arrays are copied raw (see Array.Raw).
func ReadArray(m Memory, addr uint32, elemVT VT) (*Array, error) {
	h, err := ReadSafeArrayHeader(m, addr)
	if err != nil {
		return nil, err
	}
	if h.VT != 0 && h.VT != elemVT {
		return nil, fmt.Errorf("%w: SAFEARRAY holds %s, VARIANT says %s", ErrMalformed, h.VT, elemVT)
	}
	n, err := h.Count()
	if err != nil {
		return nil, err
	}
	a := &Array{ElemVT: elemVT, Header: h}
	total := n * uint64(h.ElemSize)
	if total > MaxArrayBytes {
		return nil, fmt.Errorf("%w: array of %d bytes", ErrTooLarge, total)
	}
	if n == 0 {
		return a, nil
	}
	if h.Data == 0 {
		return nil, fmt.Errorf("%w: SAFEARRAY data", ErrNullPointer)
	}
	if elemVT == VT_RECORD {
		if h.ElemSize == 0 {
			return nil, fmt.Errorf("%w: record array with element size 0", ErrMalformed)
		}
		if a.Raw, err = m.Read(h.Data, int(total)); err != nil {
			return nil, err
		}
		return a, nil
	}
	want := elemSize(elemVT)
	if want == 0 {
		return nil, fmt.Errorf("%w: unsupported array element %s", ErrMalformed, elemVT)
	}
	if h.ElemSize != want {
		return nil, fmt.Errorf("%w: %s array with element size %d, want %d", ErrMalformed, elemVT, h.ElemSize, want)
	}
	data, err := m.Read(h.Data, int(total))
	if err != nil {
		return nil, err
	}
	a.Elems = make([]Value, 0, n)
	for i := uint64(0); i < n; i++ {
		var e Value
		if elemVT == VT_VARIANT {
			e, err = readVariant(m, h.Data+uint32(i)*VariantSize, 1)
		} else {
			e, err = decodeElem(m, elemVT, data[i*uint64(want):(i+1)*uint64(want)])
		}
		if err != nil {
			return nil, fmt.Errorf("element %d: %w", i, err)
		}
		a.Elems = append(a.Elems, e)
	}
	return a, nil
}

// ReadArgs decodes the DISPPARAMS at addr into its arguments in declaration
// order. rgvarg holds positional arguments last-first; named arguments
// (rare for events) come first in rgvarg and are placed by their DISPID,
// which for dispinterface parameters is the zero-based position.
func ReadArgs(m Memory, addr uint32) ([]Value, error) {
	dp, err := ReadDispParamsHeader(m, addr)
	if err != nil {
		return nil, err
	}
	if dp.CArgs > MaxArgs || dp.CNamedArgs > dp.CArgs {
		return nil, fmt.Errorf("%w: DISPPARAMS with %d args, %d named", ErrMalformed, dp.CArgs, dp.CNamedArgs)
	}
	if dp.CArgs == 0 {
		return nil, nil
	}
	if dp.Args == 0 {
		return nil, fmt.Errorf("%w: rgvarg", ErrNullPointer)
	}
	out := make([]Value, dp.CArgs)
	set := make([]bool, dp.CArgs)
	positional := dp.CArgs - dp.CNamedArgs
	for i := uint32(0); i < positional; i++ {
		idx := dp.CArgs - 1 - i
		if out[i], err = ReadVariant(m, dp.Args+idx*VariantSize); err != nil {
			return nil, fmt.Errorf("argument %d: %w", i, err)
		}
		set[i] = true
	}
	for j := uint32(0); j < dp.CNamedArgs; j++ {
		id, err := readU32(m, dp.NamedArgs+4*j)
		if err != nil {
			return nil, err
		}
		pos := int32(id)
		if pos < 0 || uint32(pos) >= dp.CArgs || set[pos] {
			return nil, fmt.Errorf("%w: named argument DISPID %d", ErrMalformed, pos)
		}
		if out[pos], err = ReadVariant(m, dp.Args+j*VariantSize); err != nil {
			return nil, fmt.Errorf("argument %d: %w", pos, err)
		}
		set[pos] = true
	}
	return out, nil
}
