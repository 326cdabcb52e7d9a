package variant

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// 32-bit layouts of the ITypeInfo descriptors (oaidl.h), read by the COM
// layer to check method shapes, event DISPIDs and the MXSTATUS_PROXY record.
const (
	// TypeAttrSize is sizeof(TYPEATTR): guid@0, lcid@16, memidConstructor@24,
	// cbSizeInstance@36, typekind@40, cFuncs@44, cVars@46, cImplTypes@48,
	// cbSizeVft@50, cbAlignment@52, wTypeFlags@54, wMajorVerNum@56,
	// wMinorVerNum@58, tdescAlias@60, idldescType@68.
	TypeAttrSize = 76
	// FuncDescSize is sizeof(FUNCDESC): memid@0, lprgscode@4,
	// lprgelemdescParam@8, funckind@12, invkind@16, callconv@20, cParams@24,
	// cParamsOpt@26, oVft@28, cScodes@30, elemdescFunc@32, wFuncFlags@48.
	FuncDescSize = 52
	// VarDescSize is sizeof(VARDESC): memid@0, lpstrSchema@4, oInst@8,
	// elemdescVar@12, wVarFlags@28, varkind@32.
	VarDescSize = 36
	// ElemDescSize is sizeof(ELEMDESC): tdesc (union@0, vt@4), paramdesc
	// (pparamdescex@8, wParamFlags@12).
	ElemDescSize = 16
)

// TYPEKIND values.
const (
	TKIND_ENUM      = 0
	TKIND_RECORD    = 1
	TKIND_MODULE    = 2
	TKIND_INTERFACE = 3
	TKIND_DISPATCH  = 4
	TKIND_COCLASS   = 5
	TKIND_ALIAS     = 6
	TKIND_UNION     = 7
)

// TYPEFLAG and PARAMFLAG bits used here.
const (
	TYPEFLAG_FDUAL         = 0x40
	TYPEFLAG_FDISPATCHABLE = 0x1000
	PARAMFLAG_FIN          = 0x1
	PARAMFLAG_FOUT         = 0x2
	PARAMFLAG_FLCID        = 0x4
	PARAMFLAG_FRETVAL      = 0x8
	PARAMFLAG_FOPT         = 0x10
	IMPLTYPEFLAG_FDEFAULT  = 0x1
	IMPLTYPEFLAG_FSOURCE   = 0x2
)

// TypeDesc is a decoded TYPEDESC.
type TypeDesc struct {
	VT VT
	// Elem is the pointed-to type of VT_PTR and the element type of
	// VT_SAFEARRAY.
	Elem *TypeDesc
	// HRef is the HREFTYPE of VT_USERDEFINED.
	HRef uint32
}

// String spells the type, e.g. "VT_PTR(VT_SAFEARRAY(VT_USERDEFINED#2))".
func (t TypeDesc) String() string {
	switch {
	case t.Elem != nil:
		return fmt.Sprintf("%s(%s)", t.VT, t.Elem)
	case t.VT == VT_USERDEFINED:
		return fmt.Sprintf("%s#%d", t.VT, t.HRef)
	}
	return t.VT.String()
}

func readTypeDesc(m Memory, b []byte, depth int) (TypeDesc, error) {
	t := TypeDesc{VT: VT(binary.LittleEndian.Uint16(b[4:]))}
	u := binary.LittleEndian.Uint32(b[0:])
	switch t.VT {
	case VT_PTR, VT_SAFEARRAY:
		if depth > 4 {
			return t, fmt.Errorf("%w: TYPEDESC nested too deep", ErrMalformed)
		}
		if u == 0 {
			return t, fmt.Errorf("%w: TYPEDESC %s", ErrNullPointer, t.VT)
		}
		nb, err := m.Read(u, 8)
		if err != nil {
			return t, err
		}
		e, err := readTypeDesc(m, nb, depth+1)
		if err != nil {
			return t, err
		}
		t.Elem = &e
	case VT_USERDEFINED:
		t.HRef = u
	}
	return t, nil
}

// TypeAttr is the part of a TYPEATTR this package uses.
type TypeAttr struct {
	GUID         [16]byte
	SizeInstance uint32
	TypeKind     uint32
	Funcs        uint16
	Vars         uint16
	ImplTypes    uint16
	TypeFlags    uint16
	Major, Minor uint16
}

// ReadTypeAttr reads the TYPEATTR at addr.
func ReadTypeAttr(m Memory, addr uint32) (TypeAttr, error) {
	b, err := m.Read(addr, TypeAttrSize)
	if err != nil {
		return TypeAttr{}, err
	}
	var a TypeAttr
	copy(a.GUID[:], b[0:16])
	a.SizeInstance = binary.LittleEndian.Uint32(b[36:])
	a.TypeKind = binary.LittleEndian.Uint32(b[40:])
	a.Funcs = binary.LittleEndian.Uint16(b[44:])
	a.Vars = binary.LittleEndian.Uint16(b[46:])
	a.ImplTypes = binary.LittleEndian.Uint16(b[48:])
	a.TypeFlags = binary.LittleEndian.Uint16(b[54:])
	a.Major = binary.LittleEndian.Uint16(b[56:])
	a.Minor = binary.LittleEndian.Uint16(b[58:])
	return a, nil
}

// Param is one parameter of a FUNCDESC.
type Param struct {
	Type  TypeDesc
	Flags uint16
}

// FuncDesc is the part of a FUNCDESC this package uses.
type FuncDesc struct {
	MemID    int32
	FuncKind uint32
	InvKind  uint32
	Params   []Param
	OptCount int16
	Ret      TypeDesc
}

// ReadFuncDesc reads the FUNCDESC at addr.
func ReadFuncDesc(m Memory, addr uint32) (FuncDesc, error) {
	b, err := m.Read(addr, FuncDescSize)
	if err != nil {
		return FuncDesc{}, err
	}
	f := FuncDesc{
		MemID:    int32(binary.LittleEndian.Uint32(b[0:])),
		FuncKind: binary.LittleEndian.Uint32(b[12:]),
		InvKind:  binary.LittleEndian.Uint32(b[16:]),
		OptCount: int16(binary.LittleEndian.Uint16(b[26:])),
	}
	n := int16(binary.LittleEndian.Uint16(b[24:]))
	if n < 0 || n > MaxArgs {
		return FuncDesc{}, fmt.Errorf("%w: FUNCDESC with %d params", ErrMalformed, n)
	}
	if f.Ret, err = readTypeDesc(m, b[32:40], 0); err != nil {
		return FuncDesc{}, err
	}
	if n == 0 {
		return f, nil
	}
	pa := binary.LittleEndian.Uint32(b[8:])
	pb, err := m.Read(pa, int(n)*ElemDescSize)
	if err != nil {
		return FuncDesc{}, err
	}
	for i := 0; i < int(n); i++ {
		e := pb[i*ElemDescSize : (i+1)*ElemDescSize]
		t, err := readTypeDesc(m, e[0:8], 0)
		if err != nil {
			return FuncDesc{}, fmt.Errorf("param %d: %w", i, err)
		}
		f.Params = append(f.Params, Param{Type: t, Flags: binary.LittleEndian.Uint16(e[12:])})
	}
	return f, nil
}

// VarDesc is the part of a VARDESC this package uses.
type VarDesc struct {
	MemID  int32
	Offset uint32
	Type   TypeDesc
	Kind   uint32
}

// ReadVarDesc reads the VARDESC at addr.
func ReadVarDesc(m Memory, addr uint32) (VarDesc, error) {
	b, err := m.Read(addr, VarDescSize)
	if err != nil {
		return VarDesc{}, err
	}
	t, err := readTypeDesc(m, b[12:20], 0)
	if err != nil {
		return VarDesc{}, err
	}
	return VarDesc{
		MemID:  int32(binary.LittleEndian.Uint32(b[0:])),
		Offset: binary.LittleEndian.Uint32(b[8:]),
		Type:   t,
		Kind:   binary.LittleEndian.Uint32(b[32:]),
	}, nil
}

// Shape is a method's parameter list reduced to what a caller must match:
// the [in] parameter types in order and how a result comes back.
type Shape struct {
	In []VT
	// Result is how the method returns its value: ResultNone,
	// ResultRetval (the dispatch return value / [out,retval]) or
	// ResultOutParam (a trailing plain [out] parameter).
	Result ResultKind
	// ResultVT is the type of the result (VT_I4 for handles and ids).
	ResultVT VT
}

// ResultKind says how a method hands back its result.
type ResultKind int

// Result kinds of a Shape.
const (
	ResultNone ResultKind = iota
	ResultRetval
	ResultOutParam
)

// String spells the shape like "(VT_I4, VT_BSTR) -> retval VT_I4".
func (s Shape) String() string {
	parts := make([]string, len(s.In))
	for i, vt := range s.In {
		parts[i] = vt.String()
	}
	r := "(" + strings.Join(parts, ", ") + ")"
	switch s.Result {
	case ResultRetval:
		r += " -> retval " + s.ResultVT.String()
	case ResultOutParam:
		r += " -> [out] " + s.ResultVT.String()
	}
	return r
}

// ShapeOf reduces a FUNCDESC to a Shape. A dual interface's dispatch view
// hides the [out,retval] parameter and shows its type as the return type;
// the vtable view keeps it as a parameter and returns HRESULT. Both reduce
// to the same Shape. An enum parameter (VT_USERDEFINED) is reported as
// VT_I4, which is how it travels in a VARIANT.
func ShapeOf(f FuncDesc) Shape {
	var s Shape
	for i, p := range f.Params {
		isOut := p.Flags&PARAMFLAG_FOUT != 0 && p.Flags&PARAMFLAG_FIN == 0
		if p.Flags&PARAMFLAG_FRETVAL != 0 || (isOut && i == len(f.Params)-1 && s.Result == ResultNone) {
			kind := ResultOutParam
			if p.Flags&PARAMFLAG_FRETVAL != 0 {
				kind = ResultRetval
			}
			s.Result = kind
			s.ResultVT = VT_EMPTY
			if p.Type.VT == VT_PTR && p.Type.Elem != nil {
				s.ResultVT = flatVT(*p.Type.Elem)
			}
			continue
		}
		if p.Flags&PARAMFLAG_FLCID != 0 {
			continue
		}
		s.In = append(s.In, flatVT(p.Type))
	}
	if s.Result == ResultNone && f.Ret.VT != VT_VOID && f.Ret.VT != VT_HRESULT && f.Ret.VT != VT_EMPTY {
		s.Result = ResultRetval
		s.ResultVT = flatVT(f.Ret)
	}
	return s
}

// flatVT turns a TYPEDESC into the VARTYPE a VARIANT argument carries:
// VT_PTR(x) is VT_BYREF|x, VT_SAFEARRAY(x) is VT_ARRAY|x, enums are VT_I4.
func flatVT(t TypeDesc) VT {
	switch t.VT {
	case VT_PTR:
		if t.Elem != nil {
			return VT_BYREF | flatVT(*t.Elem)
		}
	case VT_SAFEARRAY:
		if t.Elem != nil {
			return VT_ARRAY | flatVT(*t.Elem)
		}
	case VT_USERDEFINED:
		return VT_I4
	case VT_INT:
		return VT_I4
	}
	return t.VT
}
