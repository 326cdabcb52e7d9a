package variant

import (
	"encoding/binary"
	"fmt"
	"sort"
)

// Arena is a fake 32-bit address space for byte-level fixtures: tests lay
// out VARIANTs, DISPPARAMS, SAFEARRAYs and BSTRs in it exactly as windows/386
// would, and decode them through the Memory interface. Address 0 is never
// handed out. It is not safe for concurrent use.
type Arena struct {
	next    uint32
	regions []region
}

type region struct {
	addr uint32
	data []byte
}

// NewArena returns an empty arena whose first allocation is at 0x10000.
func NewArena() *Arena { return &Arena{next: 0x10000} }

// Alloc places a copy of b (at least one byte) 8-byte aligned and returns
// its address. A gap follows each allocation so overruns fail to read.
func (a *Arena) Alloc(b []byte) uint32 {
	if len(b) == 0 {
		b = []byte{0}
	}
	addr := a.next
	a.regions = append(a.regions, region{addr: addr, data: append([]byte(nil), b...)})
	a.next += (uint32(len(b)) + 7 + 64) &^ 7
	return addr
}

// Read implements Memory. Reads must lie inside one allocation.
func (a *Arena) Read(addr uint32, n int) ([]byte, error) {
	if addr == 0 {
		return nil, fmt.Errorf("%w: read at 0", ErrNullPointer)
	}
	i := sort.Search(len(a.regions), func(i int) bool { return a.regions[i].addr > addr }) - 1
	if i < 0 {
		return nil, fmt.Errorf("%w: read of %d bytes at 0x%X outside the arena", ErrMalformed, n, addr)
	}
	r := a.regions[i]
	off := addr - r.addr
	if n < 0 || uint64(off)+uint64(n) > uint64(len(r.data)) {
		return nil, fmt.Errorf("%w: read of %d bytes at 0x%X outside the arena", ErrMalformed, n, addr)
	}
	return append([]byte(nil), r.data[off:off+uint32(n)]...), nil
}

// Write overwrites bytes inside an existing allocation.
func (a *Arena) Write(addr uint32, b []byte) {
	for _, r := range a.regions {
		if addr >= r.addr && uint64(addr-r.addr)+uint64(len(b)) <= uint64(len(r.data)) {
			copy(r.data[addr-r.addr:], b)
			return
		}
	}
	panic(fmt.Sprintf("variant: arena write of %d bytes at 0x%X outside any allocation", len(b), addr))
}

// BSTR allocates s as a BSTR (length prefix, UTF-16, terminator) and returns
// the address of its first character, as SysAllocStringLen does.
func (a *Arena) BSTR(s string) uint32 {
	u := EncodeUTF16(s)
	b := make([]byte, 4+len(u)+2)
	binary.LittleEndian.PutUint32(b, uint32(len(u)))
	copy(b[4:], u)
	return a.Alloc(b) + 4
}

// Variant allocates a VARIANT of type vt whose 8 data bytes are data.
func (a *Arena) Variant(vt VT, data uint64) uint32 {
	return a.Alloc(VariantRaw(vt, data))
}

// VariantRaw returns the 16 bytes of a VARIANT of type vt with data bytes.
func VariantRaw(vt VT, data uint64) []byte {
	b := make([]byte, VariantSize)
	binary.LittleEndian.PutUint16(b, uint16(vt))
	binary.LittleEndian.PutUint64(b[8:], data)
	return b
}

// SafeArray allocates a one-dimensional SAFEARRAY of count elements of
// elemSize bytes with the given features and lower bound, whose data is
// data. When features has FADF_HAVEVARTYPE, vt is stored before the
// descriptor. It returns the descriptor's address.
func (a *Arena) SafeArray(features uint16, vt VT, elemSize uint32, lower int32, count uint32, data []byte) uint32 {
	var dataAddr uint32
	if len(data) > 0 {
		dataAddr = a.Alloc(data)
	}
	b := make([]byte, 4+SafeArrayHeaderSize+SafeArrayBoundSize)
	binary.LittleEndian.PutUint32(b[0:], uint32(vt))
	h := b[4:]
	binary.LittleEndian.PutUint16(h[0:], 1)
	binary.LittleEndian.PutUint16(h[2:], features)
	binary.LittleEndian.PutUint32(h[4:], elemSize)
	binary.LittleEndian.PutUint32(h[12:], dataAddr)
	binary.LittleEndian.PutUint32(h[16:], count)
	binary.LittleEndian.PutUint32(h[20:], uint32(lower))
	return a.Alloc(b) + 4
}

// DispParams lays out the arguments (declaration order) as DISPPARAMS:
// rgvarg holds copies of the given VARIANT bytes in reverse order. It
// returns the DISPPARAMS address.
func (a *Arena) DispParams(args ...[]byte) uint32 {
	var rg uint32
	if len(args) > 0 {
		buf := make([]byte, 0, len(args)*VariantSize)
		for i := len(args) - 1; i >= 0; i-- {
			buf = append(buf, args[i]...)
		}
		rg = a.Alloc(buf)
	}
	b := make([]byte, DispParamsSize)
	binary.LittleEndian.PutUint32(b[0:], rg)
	binary.LittleEndian.PutUint32(b[8:], uint32(len(args)))
	return a.Alloc(b)
}
