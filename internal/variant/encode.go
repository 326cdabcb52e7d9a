package variant

import (
	"encoding/binary"
	"fmt"
)

// VariantBytes returns the 16 bytes of a VARIANT holding v. Scalars are
// stored inline. For VT_BSTR, VT_ARRAY and VT_BYREF types the caller
// allocates the referenced memory (SysAllocStringLen, SafeArrayCreate, an
// out slot) and passes its address as ptr; it is stored in the data field.
func VariantBytes(v Value, ptr uint32) ([VariantSize]byte, error) {
	var b [VariantSize]byte
	binary.LittleEndian.PutUint16(b[0:], uint16(v.VT))
	switch {
	case v.VT.IsByRef(), v.VT.IsArray(), v.VT == VT_BSTR:
		binary.LittleEndian.PutUint32(b[8:], ptr)
	case v.VT == VT_EMPTY || v.VT == VT_NULL:
	default:
		size := elemSize(v.VT)
		if size == 0 || size > 8 {
			return b, fmt.Errorf("%w: cannot encode %s inline", ErrMalformed, v.VT)
		}
		binary.LittleEndian.PutUint64(b[8:], v.Bits&maskOf(v.VT))
	}
	return b, nil
}

// ElementBytes returns the packed element data of a scalar array value in
// SAFEARRAY layout (for VT_BOOL two bytes of VARIANT_BOOL each, and so on).
// BSTR and VARIANT elements cannot be packed: they need allocations, so the
// caller stores them with SafeArrayPutElement instead.
func ElementBytes(a *Array) ([]byte, error) {
	size := elemSize(a.ElemVT)
	if size == 0 || a.ElemVT == VT_BSTR || a.ElemVT == VT_VARIANT || size > 8 {
		return nil, fmt.Errorf("%w: cannot pack %s elements", ErrMalformed, a.ElemVT)
	}
	out := make([]byte, int(size)*len(a.Elems))
	var tmp [8]byte
	for i, e := range a.Elems {
		if e.VT != a.ElemVT {
			return nil, fmt.Errorf("%w: element %d is %s in a %s array", ErrMalformed, i, e.VT, a.ElemVT)
		}
		binary.LittleEndian.PutUint64(tmp[:], e.Bits)
		copy(out[i*int(size):], tmp[:size])
	}
	return out, nil
}
