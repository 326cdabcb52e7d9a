package variant

import (
	"encoding/binary"
	"testing"
)

// typeDesc returns the 8 bytes of a TYPEDESC.
func typeDesc(vt VT, u uint32) []byte {
	b := make([]byte, 8)
	binary.LittleEndian.PutUint32(b, u)
	binary.LittleEndian.PutUint16(b[4:], uint16(vt))
	return b
}

func elemDesc(td []byte, flags uint16) []byte {
	b := make([]byte, ElemDescSize)
	copy(b, td)
	binary.LittleEndian.PutUint16(b[12:], flags)
	return b
}

func funcDesc(a *Arena, memid int32, ret []byte, params ...[]byte) uint32 {
	var pa uint32
	if len(params) > 0 {
		var all []byte
		for _, p := range params {
			all = append(all, p...)
		}
		pa = a.Alloc(all)
	}
	b := make([]byte, FuncDescSize)
	binary.LittleEndian.PutUint32(b[0:], uint32(memid))
	binary.LittleEndian.PutUint32(b[8:], pa)
	binary.LittleEndian.PutUint32(b[12:], 4) // FUNC_DISPATCH
	binary.LittleEndian.PutUint32(b[16:], 1) // INVOKE_FUNC
	binary.LittleEndian.PutUint16(b[24:], uint16(len(params)))
	copy(b[32:], ret)
	return a.Alloc(b)
}

func TestShapeOfFuncDesc(t *testing.T) {
	a := NewArena()
	ptrI4 := a.Alloc(typeDesc(VT_I4, 0))
	cases := []struct {
		name string
		addr uint32
		want string
	}{
		{"vtable view of Register", funcDesc(a, 1, typeDesc(VT_HRESULT, 0),
			elemDesc(typeDesc(VT_BSTR, 0), PARAMFLAG_FIN),
			elemDesc(typeDesc(VT_PTR, ptrI4), PARAMFLAG_FOUT|PARAMFLAG_FRETVAL)), "(VT_BSTR) -> retval VT_I4"},
		{"dispatch view of Register", funcDesc(a, 1, typeDesc(VT_I4, 0),
			elemDesc(typeDesc(VT_BSTR, 0), PARAMFLAG_FIN)), "(VT_BSTR) -> retval VT_I4"},
		{"plain out param", funcDesc(a, 2, typeDesc(VT_HRESULT, 0),
			elemDesc(typeDesc(VT_I4, 0), PARAMFLAG_FIN),
			elemDesc(typeDesc(VT_PTR, ptrI4), PARAMFLAG_FOUT)), "(VT_I4) -> [out] VT_I4"},
		{"Write", funcDesc(a, 3, typeDesc(VT_VOID, 0),
			elemDesc(typeDesc(VT_I4, 0), PARAMFLAG_FIN), elemDesc(typeDesc(VT_I4, 0), PARAMFLAG_FIN),
			elemDesc(typeDesc(VT_VARIANT, 0), PARAMFLAG_FIN), elemDesc(typeDesc(VT_INT, 0), PARAMFLAG_FIN)),
			"(VT_I4, VT_I4, VT_VARIANT, VT_I4)"},
		{"event with status array", funcDesc(a, 4, typeDesc(VT_VOID, 0),
			elemDesc(typeDesc(VT_I4, 0), PARAMFLAG_FIN),
			elemDesc(typeDesc(VT_PTR, a.Alloc(typeDesc(VT_SAFEARRAY, a.Alloc(typeDesc(VT_USERDEFINED, 7))))), PARAMFLAG_FIN|PARAMFLAG_FOUT)),
			"(VT_I4, VT_BYREF|VT_ARRAY|VT_I4)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := ReadFuncDesc(a, tc.addr)
			if err != nil {
				t.Fatal(err)
			}
			if got := ShapeOf(f).String(); got != tc.want {
				t.Fatalf("got %s want %s", got, tc.want)
			}
		})
	}
	f, _ := ReadFuncDesc(a, cases[4].addr)
	if got := f.Params[1].Type.String(); got != "VT_PTR(VT_SAFEARRAY(VT_USERDEFINED#7))" {
		t.Errorf("TypeDesc %s", got)
	}
}

func TestReadTypeAttrAndVarDesc(t *testing.T) {
	a := NewArena()
	b := make([]byte, TypeAttrSize)
	b[0] = 0xAB
	binary.LittleEndian.PutUint32(b[36:], 16)
	binary.LittleEndian.PutUint32(b[40:], TKIND_RECORD)
	binary.LittleEndian.PutUint16(b[46:], 4)
	binary.LittleEndian.PutUint16(b[54:], TYPEFLAG_FDUAL)
	binary.LittleEndian.PutUint16(b[56:], 3)
	binary.LittleEndian.PutUint16(b[58:], 2)
	ta, err := ReadTypeAttr(a, a.Alloc(b))
	if err != nil {
		t.Fatal(err)
	}
	if ta.GUID[0] != 0xAB || ta.SizeInstance != 16 || ta.TypeKind != TKIND_RECORD || ta.Vars != 4 || ta.TypeFlags != TYPEFLAG_FDUAL || ta.Major != 3 || ta.Minor != 2 {
		t.Fatalf("%+v", ta)
	}
	vd := make([]byte, VarDescSize)
	binary.LittleEndian.PutUint32(vd[0:], 2)
	binary.LittleEndian.PutUint32(vd[8:], 12)
	copy(vd[12:], typeDesc(VT_I2, 0))
	binary.LittleEndian.PutUint32(vd[32:], 0) // VAR_PERINSTANCE
	v, err := ReadVarDesc(a, a.Alloc(vd))
	if err != nil || v.Offset != 12 || v.Type.VT != VT_I2 || v.MemID != 2 {
		t.Fatalf("%+v %v", v, err)
	}
}
