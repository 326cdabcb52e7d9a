package com

import (
	"reflect"
	"testing"

	"github.com/mxgateway/mxgateway/internal/testutil"
)

func TestMain(m *testing.M) { testutil.VerifyNoLeaks(m) }

// TestSinkCallbackArity runs on every OS: each callback must take exactly
// one uintptr per stdcall parameter of its IDispatch slot (this included)
// and return one uintptr, or the 386 stdcall stack is corrupted.
func TestSinkCallbackArity(t *testing.T) {
	if len(SinkVtable) != len(IDispatchDefinition) {
		t.Fatalf("vtable has %d slots, IDispatch has %d", len(SinkVtable), len(IDispatchDefinition))
	}
	uintptrType := reflect.TypeOf(uintptr(0))
	for i, def := range IDispatchDefinition {
		slot := SinkVtable[i]
		if slot.Name != def.Name {
			t.Errorf("slot %d is %s, want %s", i, slot.Name, def.Name)
		}
		if slot.Arity != len(def.Params) {
			t.Errorf("%s: table arity %d, definition has %d parameters", def.Name, slot.Arity, len(def.Params))
		}
		ft := reflect.TypeOf(slot.Fn)
		if ft.Kind() != reflect.Func {
			t.Fatalf("%s: not a function", def.Name)
		}
		if ft.NumIn() != len(def.Params) || ft.IsVariadic() {
			t.Errorf("%s: Go callback takes %d parameters, stdcall arity is %d", def.Name, ft.NumIn(), len(def.Params))
		}
		for j := 0; j < ft.NumIn(); j++ {
			if ft.In(j) != uintptrType {
				t.Errorf("%s: parameter %d is %s, want uintptr", def.Name, j, ft.In(j))
			}
		}
		if ft.NumOut() != 1 || ft.Out(0) != uintptrType {
			t.Errorf("%s: must return exactly one uintptr", def.Name)
		}
	}
}

func TestGUID(t *testing.T) {
	g, err := ParseGUID("{C30B52F5-2CB5-4760-AF0A-3A344A7EB5DC}")
	if err != nil {
		t.Fatal(err)
	}
	if g.String() != "{C30B52F5-2CB5-4760-AF0A-3A344A7EB5DC}" {
		t.Errorf("round trip %s", g)
	}
	b := g.Bytes()
	if b[0] != 0xF5 || b[3] != 0xC3 || b[4] != 0xB5 || b[8] != 0xAF || GUIDFromBytes(b[:]) != g {
		t.Errorf("memory order % X", b)
	}
	for _, bad := range []string{"", "{C30B52F5-2CB5-4760-AF0A-3A344A7EB5D}", "{C30B52F5x2CB5-4760-AF0A-3A344A7EB5DC}", "{G30B52F5-2CB5-4760-AF0A-3A344A7EB5DC}"} {
		if _, err := ParseGUID(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}
