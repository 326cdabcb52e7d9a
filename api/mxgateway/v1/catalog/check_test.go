package catalog

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
)

// TestCheckFindsMissingFacts builds a catalogue from a command oneof whose
// messages lack facts: Check must name every one.
func TestCheckFindsMissingFacts(t *testing.T) {
	msgOpts := func(spec *mxgatewayv1.CommandSpec) *descriptorpb.MessageOptions {
		o := &descriptorpb.MessageOptions{}
		if spec != nil {
			proto.SetExtension(o, mxgatewayv1.E_Command, spec)
		}
		return o
	}
	fieldOpts := func(role mxgatewayv1.FieldRole, acc mxgatewayv1.ItemAccess) *descriptorpb.FieldOptions {
		o := &descriptorpb.FieldOptions{}
		proto.SetExtension(o, mxgatewayv1.E_Field, &mxgatewayv1.FieldSpec{Role: role, Access: acc})
		return o
	}
	i32 := descriptorpb.FieldDescriptorProto_TYPE_INT32.Enum()
	str := descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum()
	msg := descriptorpb.FieldDescriptorProto_TYPE_MESSAGE.Enum()
	opt := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum()
	rep := descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum()
	fd := &descriptorpb.FileDescriptorProto{
		Name:    proto.String("broken.proto"),
		Package: proto.String("broken"),
		Syntax:  proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{
			{Name: proto.String("NoScope"), Options: msgOpts(&mxgatewayv1.CommandSpec{
				Shape: mxgatewayv1.CommandShape_COMMAND_SHAPE_SINGLE, Method: "NoScope",
				Effect: mxgatewayv1.ItemEffect_ITEM_EFFECT_NONE, Result: mxgatewayv1.CommandResult_COMMAND_RESULT_NONE, InterfaceLevel: 1}),
				Field: []*descriptorpb.FieldDescriptorProto{
					{Name: proto.String("server_handle"), Number: proto.Int32(1), Type: i32, Label: opt,
						Options: fieldOpts(mxgatewayv1.FieldRole_FIELD_ROLE_SERVER_HANDLE, 0)},
					{Name: proto.String("mystery"), Number: proto.Int32(2), Type: str, Label: opt},
					{Name: proto.String("item_definition"), Number: proto.Int32(3), Type: str, Label: opt,
						Options: fieldOpts(mxgatewayv1.FieldRole_FIELD_ROLE_REFERENCE, 0)},
				}},
			{Name: proto.String("NoFacts")},
			{Name: proto.String("BadBulk"), Options: msgOpts(&mxgatewayv1.CommandSpec{
				Shape: mxgatewayv1.CommandShape_COMMAND_SHAPE_BULK,
				Steps: []*mxgatewayv1.BulkStep{{Command: "nope"}}}),
				Field: []*descriptorpb.FieldDescriptorProto{
					{Name: proto.String("item_handles"), Number: proto.Int32(1), Type: i32, Label: rep,
						Options: fieldOpts(mxgatewayv1.FieldRole_FIELD_ROLE_ITEM_HANDLE, mxgatewayv1.ItemAccess_ITEM_ACCESS_READ)},
				}},
			{Name: proto.String("Cmd"), OneofDecl: []*descriptorpb.OneofDescriptorProto{{Name: proto.String("kind")}},
				Field: []*descriptorpb.FieldDescriptorProto{
					{Name: proto.String("no_scope"), Number: proto.Int32(1), Type: msg, TypeName: proto.String(".broken.NoScope"), Label: opt, OneofIndex: proto.Int32(0)},
					{Name: proto.String("no_facts"), Number: proto.Int32(2), Type: msg, TypeName: proto.String(".broken.NoFacts"), Label: opt, OneofIndex: proto.Int32(0)},
					{Name: proto.String("bad_bulk"), Number: proto.Int32(3), Type: msg, TypeName: proto.String(".broken.BadBulk"), Label: opt, OneofIndex: proto.Int32(0)},
				}},
		},
	}
	file, err := protodesc.NewFile(fd, protoregistry.GlobalFiles)
	if err != nil {
		t.Fatal(err)
	}
	type fact struct{ command, field string }
	found := map[fact]bool{}
	for _, p := range buildFrom(file.Messages().ByName("Cmd").Oneofs().ByName("kind")).problems {
		var fe *FactError
		if !errors.As(p, &fe) {
			t.Fatalf("problem %v is not a *FactError", p)
		}
		found[fact{fe.Command, fe.Field}] = true
	}
	for _, want := range []fact{
		{"no_scope", ""},                // no scope
		{"NoScope", "mystery"},          // no field role
		{"no_scope", "item_definition"}, // an item field without an access
		{"no_facts", ""},                // no (mxgateway.v1.command) option
		{"bad_bulk", ""},                // a step that is not a single command
	} {
		if !found[want] {
			t.Errorf("Check does not report %+v; it reports %v", want, found)
		}
	}
	if len(found) != 5 {
		t.Errorf("Check reports %d problems, want the 5 planted: %v", len(found), found)
	}
}
