package variant

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf16"
)

// The 32-bit (windows/386) sizes and offsets of the structures this package
// reads. They are fixed by the Windows SDK headers for the x86 ABI; the
// worker is only ever built for windows/386, so they are constants rather
// than unsafe.Sizeof of Go mirrors.
const (
	// PtrSize is the size of a pointer on windows/386.
	PtrSize = 4
	// VariantSize is sizeof(VARIANT): vt@0, wReserved1..3@2..6, data@8.
	VariantSize = 16
	// DispParamsSize is sizeof(DISPPARAMS): rgvarg@0, rgdispidNamedArgs@4,
	// cArgs@8, cNamedArgs@12.
	DispParamsSize = 16
	// SafeArrayHeaderSize is sizeof(SAFEARRAY) without the bounds: cDims@0,
	// fFeatures@2, cbElements@4, cLocks@8, pvData@12; rgsabound starts at 16.
	SafeArrayHeaderSize = 16
	// SafeArrayBoundSize is sizeof(SAFEARRAYBOUND): cElements@0, lLbound@4.
	SafeArrayBoundSize = 8
	// ExcepInfoSize is sizeof(EXCEPINFO): wCode@0, wReserved@2,
	// bstrSource@4, bstrDescription@8, bstrHelpFile@12, dwHelpContext@16,
	// pvReserved@20, pfnDeferredFillIn@24, scode@28.
	ExcepInfoSize = 32
)

// SAFEARRAY fFeatures flags.
const (
	FADF_AUTO        = 0x0001
	FADF_STATIC      = 0x0002
	FADF_EMBEDDED    = 0x0004
	FADF_FIXEDSIZE   = 0x0010
	FADF_RECORD      = 0x0020
	FADF_HAVEIID     = 0x0040
	FADF_HAVEVARTYPE = 0x0080
	FADF_BSTR        = 0x0100
	FADF_UNKNOWN     = 0x0200
	FADF_DISPATCH    = 0x0400
	FADF_VARIANT     = 0x0800
)

// Limits that keep a corrupt or hostile structure from making the worker
// allocate without bound. A frame is at most 16 MiB, so nothing larger can be
// forwarded anyway.
const (
	MaxArrayElements = 1 << 20
	MaxArrayBytes    = 16 << 20
	MaxBSTRBytes     = 16 << 20
	MaxArgs          = 64
)

// Errors returned by the decoders.
var (
	ErrNullPointer = errors.New("variant: null pointer")
	ErrTooLarge    = errors.New("variant: structure exceeds size limit")
	ErrMalformed   = errors.New("variant: malformed structure")
)

// Memory gives read access to the address space the structures live in.
// Read returns a copy of n bytes at addr; it must fail for address 0.
type Memory interface {
	Read(addr uint32, n int) ([]byte, error)
}

func readU16(m Memory, addr uint32) (uint16, error) {
	b, err := m.Read(addr, 2)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint16(b), nil
}

func readU32(m Memory, addr uint32) (uint32, error) {
	b, err := m.Read(addr, 4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

// ReadBSTR reads the BSTR at addr. A null BSTR is the empty string (that is
// how OLE Automation defines it). The length prefix at addr-4 counts bytes.
func ReadBSTR(m Memory, addr uint32) (string, error) {
	if addr == 0 {
		return "", nil
	}
	if addr < 4 {
		return "", fmt.Errorf("%w: BSTR at 0x%X", ErrMalformed, addr)
	}
	n, err := readU32(m, addr-4)
	if err != nil {
		return "", err
	}
	if n > MaxBSTRBytes {
		return "", fmt.Errorf("%w: BSTR of %d bytes", ErrTooLarge, n)
	}
	if n == 0 {
		return "", nil
	}
	b, err := m.Read(addr, int(n&^1))
	if err != nil {
		return "", err
	}
	return decodeUTF16(b), nil
}

func decodeUTF16(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u))
}

// EncodeUTF16 returns s as UTF-16LE bytes without a terminator, the payload
// of a BSTR.
func EncodeUTF16(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return b
}

// DispParams is the decoded header of a DISPPARAMS.
type DispParams struct {
	Args       uint32 // rgvarg
	NamedArgs  uint32 // rgdispidNamedArgs
	CArgs      uint32
	CNamedArgs uint32
}

// ReadDispParamsHeader reads the DISPPARAMS at addr.
func ReadDispParamsHeader(m Memory, addr uint32) (DispParams, error) {
	if addr == 0 {
		return DispParams{}, fmt.Errorf("%w: DISPPARAMS", ErrNullPointer)
	}
	b, err := m.Read(addr, DispParamsSize)
	if err != nil {
		return DispParams{}, err
	}
	return DispParams{
		Args:       binary.LittleEndian.Uint32(b[0:]),
		NamedArgs:  binary.LittleEndian.Uint32(b[4:]),
		CArgs:      binary.LittleEndian.Uint32(b[8:]),
		CNamedArgs: binary.LittleEndian.Uint32(b[12:]),
	}, nil
}

// SafeArray is a decoded SAFEARRAY descriptor.
type SafeArray struct {
	Dims     uint16
	Features uint16
	ElemSize uint32
	Locks    uint32
	Data     uint32
	// Bounds in memory order: Bounds[0] is the rightmost dimension.
	Bounds []Bound
	// VT is the element type stored before the descriptor when
	// FADF_HAVEVARTYPE is set, otherwise 0.
	VT VT
}

// Bound is one SAFEARRAYBOUND.
type Bound struct {
	Elements uint32
	Lower    int32
}

// Count returns the total number of elements.
func (a SafeArray) Count() (uint64, error) {
	if len(a.Bounds) == 0 {
		return 0, nil
	}
	n := uint64(1)
	for _, b := range a.Bounds {
		n *= uint64(b.Elements)
		if n > MaxArrayElements {
			return 0, fmt.Errorf("%w: array of more than %d elements", ErrTooLarge, MaxArrayElements)
		}
	}
	return n, nil
}

// ReadSafeArrayHeader reads the SAFEARRAY descriptor at addr.
func ReadSafeArrayHeader(m Memory, addr uint32) (SafeArray, error) {
	if addr == 0 {
		return SafeArray{}, fmt.Errorf("%w: SAFEARRAY", ErrNullPointer)
	}
	b, err := m.Read(addr, SafeArrayHeaderSize)
	if err != nil {
		return SafeArray{}, err
	}
	a := SafeArray{
		Dims:     binary.LittleEndian.Uint16(b[0:]),
		Features: binary.LittleEndian.Uint16(b[2:]),
		ElemSize: binary.LittleEndian.Uint32(b[4:]),
		Locks:    binary.LittleEndian.Uint32(b[8:]),
		Data:     binary.LittleEndian.Uint32(b[12:]),
	}
	if a.Dims == 0 || a.Dims > 8 {
		return SafeArray{}, fmt.Errorf("%w: SAFEARRAY with %d dimensions", ErrMalformed, a.Dims)
	}
	bb, err := m.Read(addr+SafeArrayHeaderSize, int(a.Dims)*SafeArrayBoundSize)
	if err != nil {
		return SafeArray{}, err
	}
	for i := 0; i < int(a.Dims); i++ {
		a.Bounds = append(a.Bounds, Bound{
			Elements: binary.LittleEndian.Uint32(bb[8*i:]),
			Lower:    int32(binary.LittleEndian.Uint32(bb[8*i+4:])),
		})
	}
	if a.Features&FADF_HAVEVARTYPE != 0 && addr >= 4 {
		vt, err := readU32(m, addr-4)
		if err == nil {
			a.VT = VT(vt)
		}
	}
	return a, nil
}

// ExcepInfo is a decoded EXCEPINFO with its BSTRs read.
type ExcepInfo struct {
	Code         uint16
	Source       string
	Description  string
	HelpFile     string
	HelpContext  uint32
	DeferredFill uint32 // pfnDeferredFillIn
	SCode        int32
	// BSTR pointers, so the caller can free them.
	SourcePtr, DescriptionPtr, HelpFilePtr uint32
}

// ReadExcepInfo reads the EXCEPINFO at addr, including its strings.
func ReadExcepInfo(m Memory, addr uint32) (ExcepInfo, error) {
	b, err := m.Read(addr, ExcepInfoSize)
	if err != nil {
		return ExcepInfo{}, err
	}
	e := ExcepInfo{
		Code:           binary.LittleEndian.Uint16(b[0:]),
		SourcePtr:      binary.LittleEndian.Uint32(b[4:]),
		DescriptionPtr: binary.LittleEndian.Uint32(b[8:]),
		HelpFilePtr:    binary.LittleEndian.Uint32(b[12:]),
		HelpContext:    binary.LittleEndian.Uint32(b[16:]),
		DeferredFill:   binary.LittleEndian.Uint32(b[24:]),
		SCode:          int32(binary.LittleEndian.Uint32(b[28:])),
	}
	if e.Source, err = ReadBSTR(m, e.SourcePtr); err != nil {
		return e, err
	}
	if e.Description, err = ReadBSTR(m, e.DescriptionPtr); err != nil {
		return e, err
	}
	if e.HelpFile, err = ReadBSTR(m, e.HelpFilePtr); err != nil {
		return e, err
	}
	return e, nil
}

// HRESULT returns the error code the exception stands for: scode, or the
// wCode mapped into the FACILITY_DISPATCH range when only wCode is set.
func (e ExcepInfo) HRESULT() int32 {
	if e.SCode != 0 {
		return e.SCode
	}
	if e.Code != 0 {
		return int32(uint32(0x80040000) | uint32(e.Code)) // MAKE_HRESULT(1, FACILITY_ITF, wCode)
	}
	return 0
}

// Message is the human-readable text of the exception: the description,
// prefixed with the source when both are set.
func (e ExcepInfo) Message() string {
	switch {
	case e.Source != "" && e.Description != "":
		return e.Source + ": " + e.Description
	case e.Description != "":
		return e.Description
	default:
		return e.Source
	}
}
