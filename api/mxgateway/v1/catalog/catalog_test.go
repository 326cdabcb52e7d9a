package catalog_test

import (
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/catalog"
)

// TestCatalogueIsComplete fails when a command or one of its fields lacks a
// fact, or a bulk form's steps do not fit its inputs.
func TestCatalogueIsComplete(t *testing.T) {
	if err := catalog.Check(); err != nil {
		t.Fatal(err)
	}
	oneof := (&mxgatewayv1.Command{}).ProtoReflect().Descriptor().Oneofs().ByName("kind")
	if got, want := catalog.Len(), oneof.Fields().Len(); got != want {
		t.Fatalf("catalogue has %d kinds, the oneof %d", got, want)
	}
	for i, k := range catalog.Kinds() {
		if k.Index() != i || catalog.ByName(k.Name()) != k {
			t.Errorf("%s: index %d at position %d, or not found by name", k, k.Index(), i)
		}
		if k.Scope() == mxgatewayv1.CommandScope_COMMAND_SCOPE_UNSPECIFIED {
			t.Errorf("%s: no scope", k)
		}
		if l := k.InterfaceLevel(); l < 1 || l > 5 {
			t.Errorf("%s: interface level %d", k, l)
		}
		for _, f := range k.Fields() {
			if f.Role == mxgatewayv1.FieldRole_FIELD_ROLE_UNSPECIFIED {
				t.Errorf("%s.%s: no role", k, f.Desc.Name())
			}
		}
		switch {
		case k.IsSingle():
			if k.Method() == "" || catalog.ByMethod(k.Method()) != k || k.Title() != k.Method() {
				t.Errorf("%s: method %q not found back, or not its title %q", k, k.Method(), k.Title())
			}
			if k.Effect() == mxgatewayv1.ItemEffect_ITEM_EFFECT_UNSPECIFIED || k.Result() == mxgatewayv1.CommandResult_COMMAND_RESULT_UNSPECIFIED {
				t.Errorf("%s: effect %v, result %v", k, k.Effect(), k.Result())
			}
		case k.IsBulk():
			if len(k.Steps()) == 0 || !k.HasInputs() {
				t.Errorf("%s: bulk without steps or inputs", k)
			}
		case k.IsReadBulk():
			if !k.HasInputs() {
				t.Errorf("%s: ReadBulk without inputs", k)
			}
		default:
			t.Errorf("%s: no shape", k)
		}
	}
	var nilKind *catalog.Kind
	if nilKind.Name() != catalog.NoneName || nilKind.Index() != -1 || catalog.Of(&mxgatewayv1.Command{}) != nil || catalog.Of(nil) != nil {
		t.Fatal("the nil kind is not the answer for an unset command")
	}
}

// TestFactsMatchMXAccess pins a few facts that MXACCESS.md §1-§2 states, so a
// typo in an option shows up.
func TestFactsMatchMXAccess(t *testing.T) {
	levels := map[string]int{
		"Register": 1, "Unregister": 1, "AddItem": 1, "RemoveItem": 1, "Advise": 1, "UnAdvise": 1,
		"Write": 1, "WriteSecured": 1, "AuthenticateUser": 1, "ArchestrAUserToId": 2, "AddItem2": 3,
		"Write2": 4, "WriteSecured2": 4, "Suspend": 4, "Activate": 4, "AdviseSupervisory": 4,
		"AddBufferedItem": 5, "SetBufferedUpdateInterval": 5,
	}
	if got := catalog.Methods(); len(got) != len(levels) {
		t.Fatalf("methods %v, want the %d of ILMXProxyServer..5", got, len(levels))
	}
	for m, want := range levels {
		if got := catalog.MethodLevel(m); got != want {
			t.Errorf("%s: level %d, want %d", m, got, want)
		}
	}
	scopes := map[string]mxgatewayv1.CommandScope{
		"write": mxgatewayv1.CommandScope_COMMAND_SCOPE_INVOKE_WRITE, "write2_bulk": mxgatewayv1.CommandScope_COMMAND_SCOPE_INVOKE_WRITE,
		"write_secured": mxgatewayv1.CommandScope_COMMAND_SCOPE_INVOKE_SECURE, "authenticate_user": mxgatewayv1.CommandScope_COMMAND_SCOPE_INVOKE_SECURE,
		"write_secured2_bulk": mxgatewayv1.CommandScope_COMMAND_SCOPE_INVOKE_SECURE, "subscribe_bulk": mxgatewayv1.CommandScope_COMMAND_SCOPE_INVOKE_READ,
		"read_bulk": mxgatewayv1.CommandScope_COMMAND_SCOPE_INVOKE_READ, "register": mxgatewayv1.CommandScope_COMMAND_SCOPE_INVOKE_READ,
	}
	for name, want := range scopes {
		if got := catalog.ByName(name).Scope(); got != want {
			t.Errorf("%s: scope %v, want %v", name, got, want)
		}
	}
	if got := catalog.ByName("advise_bulk").InterfaceLevel(); got != 1 {
		t.Errorf("advise_bulk level %d (its supervisory variant needs 4 only when asked for)", got)
	}
	if !catalog.ByName("unsubscribe_bulk").BestEffort() || catalog.ByName("subscribe_bulk").BestEffort() {
		t.Error("only UnsubscribeBulk is best effort")
	}
	if m, ok := catalog.CanonicalMethod("additem2"); !ok || m != "AddItem2" {
		t.Errorf("CanonicalMethod(additem2) = %q, %v", m, ok)
	}
}

func cmdOf(m proto.Message) *mxgatewayv1.Command {
	k := kindOfMessage(m.ProtoReflect().Descriptor())
	return k.New(m)
}

func kindOfMessage(md protoreflect.MessageDescriptor) *catalog.Kind {
	for _, k := range catalog.Kinds() {
		if k.Message().FullName() == md.FullName() {
			return k
		}
	}
	return nil
}

func TestUses(t *testing.T) {
	read, write := mxgatewayv1.ItemAccess_ITEM_ACCESS_READ, mxgatewayv1.ItemAccess_ITEM_ACCESS_WRITE
	cases := []struct {
		name string
		cmd  *mxgatewayv1.Command
		want []catalog.Use
	}{
		{"register names nothing", cmdOf(&mxgatewayv1.RegisterCommand{}), nil},
		{"add reads a reference", cmdOf(&mxgatewayv1.AddItemCommand{ServerHandle: 3, ItemDefinition: "A.B"}),
			[]catalog.Use{{Entry: -1, Server: 3, Ref: "A.B", ByRef: true, Access: read}}},
		{"write writes a handle", cmdOf(&mxgatewayv1.Write2Command{ServerHandle: 3, ItemHandle: 7}),
			[]catalog.Use{{Entry: -1, Server: 3, Item: 7, Access: write}}},
		{"advise reads a handle", cmdOf(&mxgatewayv1.AdviseSupervisoryCommand{ServerHandle: 1, ItemHandle: 2}),
			[]catalog.Use{{Entry: -1, Server: 1, Item: 2, Access: read}}},
		{"subscribe bulk reads each reference", cmdOf(&mxgatewayv1.SubscribeBulkCommand{ServerHandle: 2, ItemDefinitions: []string{"X", "Y"}}),
			[]catalog.Use{{Entry: 0, Server: 2, Ref: "X", ByRef: true, Access: read}, {Entry: 1, Server: 2, Ref: "Y", ByRef: true, Access: read}}},
		{"write bulk writes each entry's handle in its registration", cmdOf(&mxgatewayv1.WriteSecuredBulkCommand{ServerHandle: 2, Entries: []*mxgatewayv1.WriteSecuredCommand{
			{ItemHandle: 5}, {ServerHandle: 9, ItemHandle: 6}}}),
			[]catalog.Use{{Entry: 0, Server: 2, Item: 5, Access: write}, {Entry: 1, Server: 9, Item: 6, Access: write}}},
		{"unadvise bulk reads each handle", cmdOf(&mxgatewayv1.UnAdviseBulkCommand{ServerHandle: 1, ItemHandles: []int32{0, 4}}),
			[]catalog.Use{{Entry: 0, Server: 1, Item: 0, Access: read}, {Entry: 1, Server: 1, Item: 4, Access: read}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := catalog.Uses(tc.cmd); !slices.Equal(got, tc.want) {
				t.Fatalf("Uses = %+v\nwant   %+v", got, tc.want)
			}
		})
	}
}

// TestEveryItemFieldIsAUse walks every command: each reference or item
// handle field it has must come back from Uses, so a constraint can never
// miss one.
func TestEveryItemFieldIsAUse(t *testing.T) {
	for _, k := range catalog.Kinds() {
		items := 0
		for _, f := range k.Fields() {
			switch f.Role {
			case mxgatewayv1.FieldRole_FIELD_ROLE_ITEM_HANDLE, mxgatewayv1.FieldRole_FIELD_ROLE_REFERENCE, mxgatewayv1.FieldRole_FIELD_ROLE_ENTRIES:
				items++
			}
		}
		m := k.NewMessage()
		if in := k.InputField(); in != nil {
			l := m.Mutable(in).List()
			l.Append(l.NewElement())
		}
		uses := catalog.Uses(k.New(m.Interface()))
		if (items > 0) != (len(uses) > 0) {
			t.Errorf("%s: %d item fields, %d uses", k, items, len(uses))
		}
	}
}

func TestStepCommands(t *testing.T) {
	sub := cmdOf(&mxgatewayv1.SubscribeBulkCommand{ServerHandle: 2, ItemDefinitions: []string{"X"}, Supervisory: true})
	k := catalog.Of(sub)
	add := k.StepCommand(sub, 0, 0, 0)
	if !proto.Equal(add, cmdOf(&mxgatewayv1.AddItemCommand{ServerHandle: 2, ItemDefinition: "X"})) {
		t.Fatalf("step 0 = %v", add)
	}
	adv := k.StepCommand(sub, 0, 1, 7)
	if !proto.Equal(adv, cmdOf(&mxgatewayv1.AdviseSupervisoryCommand{ServerHandle: 2, ItemHandle: 7})) {
		t.Fatalf("step 1 = %v", adv)
	}
	wb := cmdOf(&mxgatewayv1.WriteBulkCommand{ServerHandle: 4, Entries: []*mxgatewayv1.WriteCommand{{ItemHandle: 1, UserId: 9}}})
	w := catalog.Of(wb).StepCommand(wb, 0, 0, 0)
	if got := w.GetWrite(); got.GetServerHandle() != 4 || got.GetItemHandle() != 1 || got.GetUserId() != 9 {
		t.Fatalf("write entry step = %v", w)
	}
	un := cmdOf(&mxgatewayv1.UnsubscribeBulkCommand{ServerHandle: 1, ItemHandles: []int32{5}})
	uk := catalog.Of(un)
	if got := uk.StepCommand(un, 0, 1, 0); got.GetRemoveItem().GetItemHandle() != 5 || got.GetRemoveItem().GetServerHandle() != 1 {
		t.Fatalf("unsubscribe step 1 = %v", got)
	}
}

func TestKeep(t *testing.T) {
	rb := cmdOf(&mxgatewayv1.ReadBulkCommand{ServerHandle: 1, ItemDefinitions: []string{"a", "b", "c"}, TimeoutMs: 5})
	kept := catalog.Of(rb).Keep(rb, []int{2, 0})
	if got := kept.GetReadBulk(); !slices.Equal(got.GetItemDefinitions(), []string{"c", "a"}) || got.GetTimeoutMs() != 5 {
		t.Fatalf("Keep = %v", kept)
	}
	if len(rb.GetReadBulk().GetItemDefinitions()) != 3 {
		t.Fatal("Keep changed its input")
	}
	wb := cmdOf(&mxgatewayv1.WriteBulkCommand{ServerHandle: 1, Entries: []*mxgatewayv1.WriteCommand{{ItemHandle: 1}, {ItemHandle: 2}}})
	if got := catalog.Of(wb).Keep(wb, []int{1}).GetWriteBulk().GetEntries(); len(got) != 1 || got[0].GetItemHandle() != 2 {
		t.Fatalf("Keep entries = %v", got)
	}
}
