package auth

import (
	"errors"
	"slices"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/catalog"
)

var restricted = NewPrincipal("k", "n", []Scope{ScopeInvokeRead, ScopeInvokeWrite, ScopeInvokeSecure},
	Constraints{AllowRead: []string{"Allowed.*"}, AllowWrite: []string{"Allowed.SP*"}})

// handles of registration 0: 1 → allowed for write, 2 → readable but not
// writable, 3 unknown.
func itemRef(sh, h int32) (string, bool) {
	if sh != 0 {
		return "", false
	}
	switch h {
	case 1:
		return "Allowed.SP1", true
	case 2:
		return "Allowed.PV", true
	}
	return "", false
}

func cmdOf(k any) *mxgatewayv1.Command {
	c := &mxgatewayv1.Command{}
	switch v := k.(type) {
	case *mxgatewayv1.AddItemCommand:
		c.Kind = &mxgatewayv1.Command_AddItem{AddItem: v}
	case *mxgatewayv1.AddItem2Command:
		c.Kind = &mxgatewayv1.Command_AddItem2{AddItem2: v}
	case *mxgatewayv1.AddBufferedItemCommand:
		c.Kind = &mxgatewayv1.Command_AddBufferedItem{AddBufferedItem: v}
	case *mxgatewayv1.SubscribeBulkCommand:
		c.Kind = &mxgatewayv1.Command_SubscribeBulk{SubscribeBulk: v}
	case *mxgatewayv1.AddItemBulkCommand:
		c.Kind = &mxgatewayv1.Command_AddItemBulk{AddItemBulk: v}
	case *mxgatewayv1.ReadBulkCommand:
		c.Kind = &mxgatewayv1.Command_ReadBulk{ReadBulk: v}
	case *mxgatewayv1.WriteCommand:
		c.Kind = &mxgatewayv1.Command_Write{Write: v}
	case *mxgatewayv1.WriteBulkCommand:
		c.Kind = &mxgatewayv1.Command_WriteBulk{WriteBulk: v}
	case *mxgatewayv1.WriteSecured2Command:
		c.Kind = &mxgatewayv1.Command_WriteSecured2{WriteSecured2: v}
	case *mxgatewayv1.AdviseCommand:
		c.Kind = &mxgatewayv1.Command_Advise{Advise: v}
	default:
		panic("unhandled")
	}
	return c
}

func TestCheckCommandSingle(t *testing.T) {
	cases := []struct {
		name   string
		cmd    any
		denied bool
	}{
		{"add allowed", &mxgatewayv1.AddItemCommand{ItemDefinition: "Allowed.PV"}, false},
		{"add allowed other case", &mxgatewayv1.AddItemCommand{ItemDefinition: "ALLOWED.pv"}, false},
		{"add denied", &mxgatewayv1.AddItemCommand{ItemDefinition: "Secret.PV"}, true},
		{"add2 denied", &mxgatewayv1.AddItem2Command{ItemDefinition: "Secret.PV"}, true},
		{"buffered denied", &mxgatewayv1.AddBufferedItemCommand{ItemDefinition: "Secret.PV"}, true},
		{"write allowed", &mxgatewayv1.WriteCommand{ItemHandle: 1}, false},
		{"write readable only", &mxgatewayv1.WriteCommand{ItemHandle: 2}, true},
		{"write unknown handle", &mxgatewayv1.WriteCommand{ItemHandle: 3}, true},
		{"secured write denied", &mxgatewayv1.WriteSecured2Command{ItemHandle: 2, Timestamp: timestamppb.Now()}, true},
		{"advise is by handle", &mxgatewayv1.AdviseCommand{ItemHandle: 99}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dec, err := CheckCommand(restricted, cmdOf(tc.cmd), itemRef)
			if len(dec.Denials) != 0 {
				t.Fatalf("single command got per-entry denials %v", dec.Denials)
			}
			if !tc.denied {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var de *DeniedError
			if !errors.As(err, &de) || de.Reason != mxgatewayv1.ReasonReferenceForbidden || !errors.Is(err, ErrReferenceNotAllowed) {
				t.Fatalf("err = %v, want a REFERENCE_NOT_ALLOWED denial", err)
			}
			if st := de.GRPCStatus(); st.Code().String() != "PermissionDenied" || len(st.Details()) != 1 {
				t.Fatalf("status = %v", st)
			}
		})
	}
}

func TestCheckCommandBulkDeniesPerEntry(t *testing.T) {
	refs := []string{"Allowed.A", "Secret.B", "allowed.c", "Other"}
	for _, c := range []any{
		&mxgatewayv1.SubscribeBulkCommand{ItemDefinitions: refs},
		&mxgatewayv1.AddItemBulkCommand{ItemDefinitions: refs},
		&mxgatewayv1.ReadBulkCommand{ItemDefinitions: refs},
	} {
		dec, err := CheckCommand(restricted, cmdOf(c), nil)
		if err != nil {
			t.Fatalf("bulk failed as a whole: %v", err)
		}
		d := dec.Denials
		if len(d) != 2 || d[1] == nil || d[3] == nil || d[1].Reason != mxgatewayv1.ReasonReferenceForbidden {
			t.Fatalf("%T denials = %v, want entries 1 and 3", c, d)
		}
	}
	wb := &mxgatewayv1.WriteBulkCommand{Entries: []*mxgatewayv1.WriteCommand{{ItemHandle: 1}, {ItemHandle: 2}, {ItemHandle: 3}, {ItemHandle: 1}, {ItemHandle: 0}}}
	dec, err := CheckCommand(restricted, cmdOf(wb), itemRef)
	if d := dec.Denials; err != nil || len(d) != 2 || d[1] == nil || d[2] == nil {
		t.Fatalf("write bulk denials = %v, %v; want entries 1 and 2", d, err)
	}
	// The allowed handles are approved once each for the worker's item
	// guard; handle 0 names no item and is approved as "" (MXAccess answers
	// it with its HRESULT).
	want := []Approval{{Item: 1, Ref: "Allowed.SP1"}, {Item: 0, Ref: ""}}
	if !dec.Guarded || !slices.Equal(dec.Approved, want) {
		t.Fatalf("approvals %+v (guarded %v), want %+v", dec.Approved, dec.Guarded, want)
	}
}

func TestCheckCommandUnconstrained(t *testing.T) {
	free := NewPrincipal("k", "n", []Scope{ScopeInvokeWrite}, Constraints{})
	// With no write patterns, handles need not be resolvable.
	// ...and nothing is guarded.
	if d, err := CheckCommand(free, cmdOf(&mxgatewayv1.WriteCommand{ItemHandle: 3}), nil); err != nil || d.Denials != nil || d.Guarded {
		t.Fatalf("unconstrained write denied or guarded: %+v %v", d, err)
	}
	if d, err := CheckCommand(free, cmdOf(&mxgatewayv1.SubscribeBulkCommand{ItemDefinitions: []string{"Any"}}), nil); err != nil || d.Denials != nil {
		t.Fatalf("unconstrained read denied: %v %v", d, err)
	}
	if _, err := CheckCommand(nil, cmdOf(&mxgatewayv1.AdviseCommand{}), nil); err == nil {
		t.Fatal("nil principal allowed")
	}
}

// Every command kind that names a reference, or writes by handle, must be
// checked: build each kind with a forbidden reference / handle in every
// such field and expect a denial. A new command kind that carries a
// reference fails here until CheckCommand handles it.
func TestCheckCommandCoversEveryReferenceKind(t *testing.T) {
	od := (&mxgatewayv1.Command{}).ProtoReflect().Descriptor().Oneofs().ByName("kind")
	for i := range od.Fields().Len() {
		f := od.Fields().Get(i)
		cmd := &mxgatewayv1.Command{}
		m := cmd.ProtoReflect()
		body := m.NewField(f).Message()
		refs, handles := fill(body)
		m.Set(f, protoreflect.ValueOfMessage(body))
		scope, _ := CommandScope(catalog.Of(cmd))
		mustCheck := refs > 0 || (handles > 0 && (scope == ScopeInvokeWrite || scope == ScopeInvokeSecure) && f.Name() != "authenticate_user")
		dec, err := CheckCommand(restricted, cmd, itemRef)
		d := dec.Denials
		denied := err != nil || len(d) > 0
		if mustCheck && !denied {
			t.Errorf("%s carries a forbidden reference/handle but was not denied", f.Name())
		}
		if !mustCheck && denied {
			t.Errorf("%s was denied but carries no reference: %v %v", f.Name(), d, err)
		}
	}
}

// fill sets every reference field of m (and of its repeated message
// entries) to a forbidden reference and every item_handle to 2 (readable,
// not writable). It returns how many of each it set.
func fill(m protoreflect.Message) (refs, handles int) {
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		f := fields.Get(i)
		switch {
		case f.Name() == "item_definition":
			m.Set(f, protoreflect.ValueOfString("Secret.X"))
			refs++
		case f.Name() == "item_definitions":
			l := m.Mutable(f).List()
			l.Append(protoreflect.ValueOfString("Secret.X"))
			refs++
		case f.Name() == "item_handle":
			m.Set(f, protoreflect.ValueOfInt32(2))
			handles++
		case f.Name() == "item_handles":
			m.Mutable(f).List().Append(protoreflect.ValueOfInt32(2))
			handles++
		case f.IsList() && f.Kind() == protoreflect.MessageKind && f.Name() == "entries":
			l := m.Mutable(f).List()
			e := l.NewElement().Message()
			r, h := fill(e)
			refs, handles = refs+r, handles+h
			l.Append(protoreflect.ValueOfMessage(e))
		}
	}
	return refs, handles
}

func TestCanAccessSession(t *testing.T) {
	owner := NewPrincipal("owner", "o", []Scope{ScopeSessionOpen}, Constraints{})
	other := NewPrincipal("other", "x", []Scope{ScopeSessionOpen}, Constraints{})
	admin := NewPrincipal("adm", "a", []Scope{ScopeAdmin}, Constraints{})
	switch {
	case !CanAccessSession(owner, "owner"):
		t.Error("owner denied")
	case CanAccessSession(other, "owner"):
		t.Error("other key allowed")
	case !CanAccessSession(admin, "owner"):
		t.Error("admin denied")
	case CanAccessSession(nil, "owner"):
		t.Error("nil principal allowed")
	case CanAccessSession(NewPrincipal("", "", nil, Constraints{}), ""):
		t.Error("empty ids matched")
	}
	if err := CheckSessionAccess(other, "owner"); !errors.Is(err, ErrNotSessionOwner) {
		t.Errorf("CheckSessionAccess = %v", err)
	}
}
