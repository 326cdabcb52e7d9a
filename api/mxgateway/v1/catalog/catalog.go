package catalog

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
)

// Kind is one command kind: one field of the Command "kind" oneof and the
// facts of its message. Kinds are immutable and shared; compare them by
// pointer. A nil *Kind stands for "no command kind" (unset, or unknown to
// this build) and answers every method with its zero value.
type Kind struct {
	name  string
	index int
	oneof protoreflect.FieldDescriptor // the field of Command's oneof
	msg   protoreflect.MessageDescriptor
	spec  *mxgatewayv1.CommandSpec

	fields []Field
	server protoreflect.FieldDescriptor // SERVER_HANDLE
	item   protoreflect.FieldDescriptor // single: ITEM_HANDLE
	ref    protoreflect.FieldDescriptor // single: REFERENCE
	inputs protoreflect.FieldDescriptor // bulk and read bulk: the input list
	inRole mxgatewayv1.FieldRole        // the input list's role
	inAcc  mxgatewayv1.ItemAccess       // the input list's access
	super  protoreflect.FieldDescriptor // bulk: SUPERVISORY
	steps  []Step
}

// Field is one field of a command message and its role.
type Field struct {
	// Desc is the field.
	Desc protoreflect.FieldDescriptor
	// Role is what it means to the gateway.
	Role mxgatewayv1.FieldRole
	// Access says whether an item field is read or written.
	Access mxgatewayv1.ItemAccess
}

// Step is one single command a bulk form runs for each entry.
type Step struct {
	// Kind is the single command.
	Kind *Kind
	// Supervisory replaces Kind when the bulk's supervisory field is set;
	// nil when the step has no supervisory variant.
	Supervisory *Kind
}

// NoneName is what Name returns for the nil Kind: a command with no kind
// set, or one this build does not know. It is also its metric label.
const NoneName = "none"

// Name is the Command oneof field name ("add_item", "write_bulk"), which is
// also the command's metric label and its name in logs; NoneName for nil.
func (k *Kind) Name() string {
	if k == nil {
		return NoneName
	}
	return k.name
}

// String implements fmt.Stringer (the Name).
func (k *Kind) String() string { return k.Name() }

// Title is the command's name in MXAccess spelling: its message name
// without "Command" ("AddItem", "SubscribeBulk", "ArchestrAUserToId"). For
// a single command it is its MXAccess method; the SDK names failures by
// it. "" for nil.
func (k *Kind) Title() string {
	if k == nil {
		return ""
	}
	return strings.TrimSuffix(string(k.msg.Name()), "Command")
}

// Index is the kind's position in the oneof declaration order, from 0 to
// Len()-1; -1 for nil. Tables indexed by kind (metric children) use it.
func (k *Kind) Index() int {
	if k == nil {
		return -1
	}
	return k.index
}

// Shape says how the command runs.
func (k *Kind) Shape() mxgatewayv1.CommandShape {
	if k == nil {
		return mxgatewayv1.CommandShape_COMMAND_SHAPE_UNSPECIFIED
	}
	return k.spec.GetShape()
}

// IsSingle reports whether the command is one MXAccess call.
func (k *Kind) IsSingle() bool { return k.Shape() == mxgatewayv1.CommandShape_COMMAND_SHAPE_SINGLE }

// IsBulk reports whether the command runs single commands per entry.
func (k *Kind) IsBulk() bool { return k.Shape() == mxgatewayv1.CommandShape_COMMAND_SHAPE_BULK }

// IsReadBulk reports whether the command is ReadBulk.
func (k *Kind) IsReadBulk() bool {
	return k.Shape() == mxgatewayv1.CommandShape_COMMAND_SHAPE_READ_BULK
}

// HasInputs reports whether the command has an input list (a bulk form or
// ReadBulk): its entries fail one by one, never the whole call.
func (k *Kind) HasInputs() bool { return k != nil && k.inputs != nil }

// Method is the MXAccess method a single command calls ("AddItem"); "" for
// the others.
func (k *Kind) Method() string {
	if !k.IsSingle() {
		return ""
	}
	return k.spec.GetMethod()
}

// Scope is the API-key scope the command needs: its own, or for a bulk
// form the scope of its steps.
func (k *Kind) Scope() mxgatewayv1.CommandScope {
	if k == nil {
		return mxgatewayv1.CommandScope_COMMAND_SCOPE_UNSPECIFIED
	}
	if k.IsBulk() {
		s := mxgatewayv1.CommandScope_COMMAND_SCOPE_UNSPECIFIED
		for _, st := range k.steps {
			s = max(s, st.Kind.Scope(), st.Supervisory.Scope())
		}
		return s
	}
	return k.spec.GetScope()
}

// Effect is what a successful single command does to the item table
// (ITEM_EFFECT_NONE for the others: a bulk form's effects are its steps').
func (k *Kind) Effect() mxgatewayv1.ItemEffect {
	if !k.IsSingle() {
		return mxgatewayv1.ItemEffect_ITEM_EFFECT_NONE
	}
	return k.spec.GetEffect()
}

// Changes reports whether the command can change the item table: a single
// command with an effect, or a bulk form with such a step.
func (k *Kind) Changes() bool {
	if k.IsBulk() {
		for _, st := range k.steps {
			if st.Kind.Changes() || st.Supervisory.Changes() {
				return true
			}
		}
		return false
	}
	e := k.Effect()
	return e != mxgatewayv1.ItemEffect_ITEM_EFFECT_NONE && e != mxgatewayv1.ItemEffect_ITEM_EFFECT_UNSPECIFIED
}

// Result is the typed result a single command's reply carries.
func (k *Kind) Result() mxgatewayv1.CommandResult {
	if !k.IsSingle() {
		return mxgatewayv1.CommandResult_COMMAND_RESULT_NONE
	}
	return k.spec.GetResult()
}

// InterfaceLevel is the lowest ILMXProxyServer level (1-5) with the
// command's method; for a bulk form the highest of its (non-supervisory)
// steps'. 0 for nil.
func (k *Kind) InterfaceLevel() int {
	if k == nil {
		return 0
	}
	if k.IsBulk() {
		lvl := 0
		for _, st := range k.steps {
			lvl = max(lvl, st.Kind.InterfaceLevel())
		}
		return lvl
	}
	return int(k.spec.GetInterfaceLevel())
}

// Steps are the single commands a bulk form runs per entry, in order.
func (k *Kind) Steps() []Step {
	if k == nil {
		return nil
	}
	return k.steps
}

// BestEffort reports whether every step of a bulk entry runs even after an
// earlier one failed.
func (k *Kind) BestEffort() bool { return k.IsBulk() && k.spec.GetBestEffort() }

// Fields are the fields of the command message with their roles, in
// declaration order.
func (k *Kind) Fields() []Field {
	if k == nil {
		return nil
	}
	return k.fields
}

// Message is the descriptor of the command message.
func (k *Kind) Message() protoreflect.MessageDescriptor {
	if k == nil {
		return nil
	}
	return k.msg
}

// Inner returns the command message of cmd (which must be of kind k).
func (k *Kind) Inner(cmd *mxgatewayv1.Command) protoreflect.Message {
	return cmd.ProtoReflect().Get(k.oneof).Message()
}

// New returns a Command of kind k holding m (whose type must be k's
// message).
func (k *Kind) New(m proto.Message) *mxgatewayv1.Command {
	cmd := &mxgatewayv1.Command{}
	cmd.ProtoReflect().Set(k.oneof, protoreflect.ValueOfMessage(m.ProtoReflect()))
	return cmd
}

// NewMessage returns an empty command message of kind k.
func (k *Kind) NewMessage() protoreflect.Message {
	return (&mxgatewayv1.Command{}).ProtoReflect().NewField(k.oneof).Message()
}

// ServerHandle returns the registration handle cmd names; 0 when its kind
// has none (Register).
func (k *Kind) ServerHandle(cmd *mxgatewayv1.Command) int32 {
	if k == nil || k.server == nil {
		return 0
	}
	return int32(k.Inner(cmd).Get(k.server).Int())
}

// Inputs returns the number of entries in cmd's input list (0 for a single
// command).
func (k *Kind) Inputs(cmd *mxgatewayv1.Command) int {
	if !k.HasInputs() {
		return 0
	}
	return k.Inner(cmd).Get(k.inputs).List().Len()
}

// InputField is the input list field of a bulk form or ReadBulk (nil for a
// single command).
func (k *Kind) InputField() protoreflect.FieldDescriptor {
	if k == nil {
		return nil
	}
	return k.inputs
}

// Supervisory reports whether a bulk form's supervisory field is set.
func (k *Kind) Supervisory(cmd *mxgatewayv1.Command) bool {
	if k == nil || k.super == nil {
		return false
	}
	return k.Inner(cmd).Get(k.super).Bool()
}

// StepKind is the single command that step runs for cmd: its supervisory
// variant when cmd asks for it.
func (k *Kind) StepKind(cmd *mxgatewayv1.Command, step int) *Kind {
	st := k.steps[step]
	if st.Supervisory != nil && k.Supervisory(cmd) {
		return st.Supervisory
	}
	return st.Kind
}

// Input is one entry of an input list.
type Input struct {
	// Server is the registration handle the entry runs in: the entry's own
	// when it has a non-zero one, else the command's.
	Server int32
	// OwnServer is the entry's own server handle (a single command entry of
	// a Write*Bulk form), 0 when it has none.
	OwnServer int32
	// Item is the entry's item handle (an item handle input, or the handle
	// of a single command entry); 0 for a reference input.
	Item int32
	// Ref is the entry's reference (a reference input); "" otherwise.
	Ref string
	// ByRef is true for a reference input.
	ByRef bool
	// Entry is the entry's single command message (FIELD_ROLE_ENTRIES),
	// nil otherwise.
	Entry protoreflect.Message
	// EntryKind is Entry's kind.
	EntryKind *Kind
}

// Input returns entry i of cmd's input list.
func (k *Kind) Input(cmd *mxgatewayv1.Command, i int) Input {
	inner := k.Inner(cmd)
	in := Input{Server: k.ServerHandle(cmd)}
	v := inner.Get(k.inputs).List().Get(i)
	switch k.inputRole() {
	case mxgatewayv1.FieldRole_FIELD_ROLE_REFERENCE:
		in.Ref, in.ByRef = v.String(), true
	case mxgatewayv1.FieldRole_FIELD_ROLE_ITEM_HANDLE:
		in.Item = int32(v.Int())
	case mxgatewayv1.FieldRole_FIELD_ROLE_ENTRIES:
		in.Entry = v.Message()
		in.EntryKind = k.steps[0].Kind
		if ek := in.EntryKind; ek != nil {
			if ek.server != nil {
				in.OwnServer = int32(in.Entry.Get(ek.server).Int())
				if in.OwnServer != 0 {
					in.Server = in.OwnServer
				}
			}
			if ek.item != nil {
				in.Item = int32(in.Entry.Get(ek.item).Int())
			}
		}
	}
	return in
}

func (k *Kind) inputRole() mxgatewayv1.FieldRole { return k.inRole }

// StepCommand builds the single command that step runs for entry i of cmd.
// item, when not 0, is the item handle an earlier step of the entry added
// (SubscribeBulk's Advise runs on AddItem's new handle). A single command
// entry (Write*Bulk) is used as it is, with its server handle set to the
// one it runs in: StepCommand may change cmd in place.
func (k *Kind) StepCommand(cmd *mxgatewayv1.Command, i, step int, item int32) *mxgatewayv1.Command {
	sk := k.StepKind(cmd, step)
	in := k.Input(cmd, i)
	if in.Entry != nil {
		if sk.server != nil && in.Server != in.OwnServer {
			in.Entry.Set(sk.server, protoreflect.ValueOfInt32(in.Server))
		}
		out := &mxgatewayv1.Command{}
		out.ProtoReflect().Set(sk.oneof, protoreflect.ValueOfMessage(in.Entry))
		return out
	}
	m := sk.NewMessage()
	if sk.server != nil {
		m.Set(sk.server, protoreflect.ValueOfInt32(in.Server))
	}
	if item == 0 {
		item = in.Item
	}
	if sk.item != nil && item != 0 {
		m.Set(sk.item, protoreflect.ValueOfInt32(item))
	}
	if sk.ref != nil && in.ByRef {
		m.Set(sk.ref, protoreflect.ValueOfString(in.Ref))
	}
	out := &mxgatewayv1.Command{}
	out.ProtoReflect().Set(sk.oneof, protoreflect.ValueOfMessage(m))
	return out
}

// Keep returns a copy of cmd whose input list holds only the entries at the
// given indexes, in that order (the gateway leaves denied entries out of
// what the worker sees).
func (k *Kind) Keep(cmd *mxgatewayv1.Command, keep []int) *mxgatewayv1.Command {
	out := proto.Clone(cmd).(*mxgatewayv1.Command)
	inner := k.Inner(out)
	src := k.Inner(cmd).Get(k.inputs).List()
	dst := inner.NewField(k.inputs).List()
	for _, i := range keep {
		dst.Append(src.Get(i))
	}
	inner.Set(k.inputs, protoreflect.ValueOfList(dst))
	return out
}

// Use is one item a command names, with how it uses it: an item handle or
// a reference, read or written.
type Use struct {
	// Entry is the input index for a bulk form or ReadBulk, -1 for a single
	// command.
	Entry int
	// Server is the registration handle the item belongs to.
	Server int32
	// Item is the item handle (0 when the command names a reference).
	Item int32
	// Ref is the reference (when ByRef).
	Ref string
	// ByRef is true when the command names the item by reference.
	ByRef bool
	// Access is whether the command reads or writes it.
	Access mxgatewayv1.ItemAccess
}

// Uses lists the items cmd names: a single command's reference or item
// handle, or one use per entry of an input list, in input order. Commands
// that name no item (Register, Unregister, AuthenticateUser, ...) have none.
func Uses(cmd *mxgatewayv1.Command) []Use {
	k := Of(cmd)
	switch {
	case k == nil:
		return nil
	case k.HasInputs():
		n := k.Inputs(cmd)
		out := make([]Use, 0, n)
		for i := 0; i < n; i++ {
			if u, ok := k.InputUse(cmd, i); ok {
				out = append(out, u)
			}
		}
		return out
	}
	u, ok := k.singleUse(k.Inner(cmd), k.ServerHandle(cmd))
	if !ok {
		return nil
	}
	u.Entry = -1
	return []Use{u}
}

// InputUse is the use of entry i of cmd's input list; false for an entry
// that names no item.
func (k *Kind) InputUse(cmd *mxgatewayv1.Command, i int) (Use, bool) {
	in := k.Input(cmd, i)
	if in.Entry != nil {
		u, ok := in.EntryKind.singleUse(in.Entry, in.Server)
		u.Entry = i
		return u, ok
	}
	return Use{Entry: i, Server: in.Server, Item: in.Item, Ref: in.Ref, ByRef: in.ByRef, Access: k.inAcc}, true
}

func (k *Kind) singleUse(m protoreflect.Message, server int32) (Use, bool) {
	for _, f := range k.fields {
		switch {
		case f.Desc == k.ref:
			return Use{Server: server, Ref: m.Get(f.Desc).String(), ByRef: true, Access: f.Access}, true
		case f.Desc == k.item:
			return Use{Server: server, Item: int32(m.Get(f.Desc).Int()), Access: f.Access}, true
		}
	}
	return Use{}, false
}

// ---- the catalogue ----

type table struct {
	kinds    []*Kind
	byName   map[string]*Kind
	byField  map[protoreflect.FieldNumber]*Kind
	byMethod map[string]*Kind
	methods  []string
	oneof    protoreflect.OneofDescriptor
	problems []error
}

// cat is the table, built from the descriptors of commands.proto on first
// use rather than at package initialisation: building it unpacks the full
// descriptors of the public API's files, about 0.5 MiB that a worker
// which never runs a command (a spare, an idle session) does without
// (docs/performance.md, "Lean workers").
var cat = sync.OnceValue(build)

// Kinds returns every command kind in oneof declaration order. The slice is
// shared: do not modify it.
func Kinds() []*Kind { return cat().kinds }

// Len is the number of command kinds.
func Len() int { return len(cat().kinds) }

// Of returns the kind of cmd; nil when none is set or the kind is unknown
// to this build.
func Of(cmd *mxgatewayv1.Command) *Kind {
	if cmd == nil {
		return nil
	}
	fd := cmd.ProtoReflect().WhichOneof(cat().oneof)
	if fd == nil {
		return nil
	}
	return cat().byField[fd.Number()]
}

// ByName returns the kind whose oneof field is name ("add_item"), or nil.
func ByName(name string) *Kind { return cat().byName[name] }

// ByMethod returns the single command that calls the MXAccess method
// (exact spelling, "AddItem"), or nil.
func ByMethod(method string) *Kind { return cat().byMethod[method] }

// CanonicalMethod returns the MXAccess spelling of a method name given in
// any case ("additem" → "AddItem").
func CanonicalMethod(s string) (string, bool) {
	for _, m := range cat().methods {
		if strings.EqualFold(m, s) {
			return m, true
		}
	}
	return "", false
}

// Methods lists the MXAccess methods of the single commands, in oneof
// declaration order.
func Methods() []string { return cat().methods }

// MethodLevel returns the lowest interface level with the MXAccess method,
// or 0 when it is not in the catalogue.
func MethodLevel(method string) int { return ByMethod(method).InterfaceLevel() }

// FactError is a catalogue problem: a command (its oneof field name, or
// its message name for a field problem) or one of its fields lacks a fact,
// or a bulk step does not fit.
type FactError struct {
	// Command names the command.
	Command string
	// Field names the field, or "".
	Field string
	// Problem says what is missing or wrong.
	Problem string
}

// Error implements error.
func (e *FactError) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("catalog: %s.%s: %s", e.Command, e.Field, e.Problem)
	}
	return fmt.Sprintf("catalog: %s: %s", e.Command, e.Problem)
}

type failFunc func(cmd, field, format string, args ...any)

// Check returns every problem found while building the catalogue, each a
// *FactError: a command or field without its facts, a bulk step that does
// not fit. The catalogue test fails on any.
func Check() error { return errors.Join(cat().problems...) }

// SpecOf returns the CommandSpec option of a message descriptor.
func SpecOf(md protoreflect.MessageDescriptor) *mxgatewayv1.CommandSpec {
	spec, _ := proto.GetExtension(md.Options(), mxgatewayv1.E_Command).(*mxgatewayv1.CommandSpec)
	return spec
}

// FieldSpecOf returns the FieldSpec option of a field descriptor.
func FieldSpecOf(fd protoreflect.FieldDescriptor) *mxgatewayv1.FieldSpec {
	spec, _ := proto.GetExtension(fd.Options(), mxgatewayv1.E_Field).(*mxgatewayv1.FieldSpec)
	return spec
}

func build() *table {
	return buildFrom((&mxgatewayv1.Command{}).ProtoReflect().Descriptor().Oneofs().ByName("kind"))
}

// buildFrom builds the catalogue of a command oneof (the tests build broken
// ones).
func buildFrom(oneof protoreflect.OneofDescriptor) *table {
	t := &table{
		byName:   map[string]*Kind{},
		byField:  map[protoreflect.FieldNumber]*Kind{},
		byMethod: map[string]*Kind{},
		oneof:    oneof,
	}
	fail := func(cmd, field, format string, args ...any) {
		t.problems = append(t.problems, &FactError{Command: cmd, Field: field, Problem: fmt.Sprintf(format, args...)})
	}
	fields := t.oneof.Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		k := &Kind{name: string(fd.Name()), index: i, oneof: fd, msg: fd.Message()}
		if k.msg == nil {
			fail(k.name, "", "not a message field")
			continue
		}
		k.spec = SpecOf(k.msg)
		if k.spec == nil {
			fail(k.name, "", "%s has no (mxgateway.v1.command) option", k.msg.Name())
			k.spec = &mxgatewayv1.CommandSpec{}
		}
		k.fields = buildFields(k.msg, fail)
		t.kinds = append(t.kinds, k)
		t.byName[k.name] = k
		t.byField[fd.Number()] = k
	}
	for _, k := range t.kinds {
		k.bind(t, fail)
	}
	return t
}

func buildFields(md protoreflect.MessageDescriptor, fail failFunc) []Field {
	out := make([]Field, 0, md.Fields().Len())
	for i := 0; i < md.Fields().Len(); i++ {
		fd := md.Fields().Get(i)
		spec := FieldSpecOf(fd)
		if spec == nil || spec.GetRole() == mxgatewayv1.FieldRole_FIELD_ROLE_UNSPECIFIED {
			fail(string(md.Name()), string(fd.Name()), "has no field role")
		}
		out = append(out, Field{Desc: fd, Role: spec.GetRole(), Access: spec.GetAccess()})
	}
	return out
}

// bind resolves a kind's special fields and steps and checks its facts.
func (k *Kind) bind(t *table, fail failFunc) {
	sp := k.spec
	for _, f := range k.fields {
		switch f.Role {
		case mxgatewayv1.FieldRole_FIELD_ROLE_SERVER_HANDLE:
			k.server = f.Desc
		case mxgatewayv1.FieldRole_FIELD_ROLE_SUPERVISORY:
			k.super = f.Desc
		case mxgatewayv1.FieldRole_FIELD_ROLE_ITEM_HANDLE, mxgatewayv1.FieldRole_FIELD_ROLE_REFERENCE:
			if f.Access == mxgatewayv1.ItemAccess_ITEM_ACCESS_UNSPECIFIED {
				fail(k.name, string(f.Desc.Name()), "an item field needs an access (read or write)")
			}
			switch {
			case f.Desc.IsList():
				k.inputs, k.inRole, k.inAcc = f.Desc, f.Role, f.Access
			case f.Role == mxgatewayv1.FieldRole_FIELD_ROLE_ITEM_HANDLE:
				k.item = f.Desc
			default:
				k.ref = f.Desc
			}
		case mxgatewayv1.FieldRole_FIELD_ROLE_ENTRIES:
			k.inputs, k.inRole = f.Desc, f.Role
		}
	}
	switch sp.GetShape() {
	case mxgatewayv1.CommandShape_COMMAND_SHAPE_SINGLE:
		if sp.GetMethod() == "" {
			fail(k.name, "", "a single command needs its MXAccess method")
		} else if other := t.byMethod[sp.GetMethod()]; other != nil {
			fail(k.name, "", "method %s is already %s's", sp.GetMethod(), other.name)
		} else {
			t.byMethod[sp.GetMethod()] = k
			t.methods = append(t.methods, sp.GetMethod())
		}
		if sp.GetScope() == mxgatewayv1.CommandScope_COMMAND_SCOPE_UNSPECIFIED {
			fail(k.name, "", "no scope")
		}
		if sp.GetEffect() == mxgatewayv1.ItemEffect_ITEM_EFFECT_UNSPECIFIED {
			fail(k.name, "", "no item effect")
		}
		if sp.GetResult() == mxgatewayv1.CommandResult_COMMAND_RESULT_UNSPECIFIED {
			fail(k.name, "", "no result kind")
		}
		if l := sp.GetInterfaceLevel(); l < 1 || l > 5 {
			fail(k.name, "", "interface level %d, want 1-5", l)
		}
		if k.inputs != nil || len(sp.GetSteps()) > 0 {
			fail(k.name, "", "a single command has no input list or steps")
		}
		if k.server == nil && sp.GetEffect() != mxgatewayv1.ItemEffect_ITEM_EFFECT_REGISTER {
			fail(k.name, "", "no server_handle field")
		}
		switch sp.GetEffect() {
		case mxgatewayv1.ItemEffect_ITEM_EFFECT_ADD, mxgatewayv1.ItemEffect_ITEM_EFFECT_ADD_BUFFERED:
			if k.ref == nil || sp.GetResult() != mxgatewayv1.CommandResult_COMMAND_RESULT_ITEM_HANDLE {
				fail(k.name, "", "an add needs a reference field and an item handle result")
			}
		case mxgatewayv1.ItemEffect_ITEM_EFFECT_REMOVE, mxgatewayv1.ItemEffect_ITEM_EFFECT_ADVISE,
			mxgatewayv1.ItemEffect_ITEM_EFFECT_ADVISE_SUPERVISORY, mxgatewayv1.ItemEffect_ITEM_EFFECT_UNADVISE,
			mxgatewayv1.ItemEffect_ITEM_EFFECT_SUSPEND, mxgatewayv1.ItemEffect_ITEM_EFFECT_ACTIVATE:
			if k.item == nil {
				fail(k.name, "", "effect %v needs an item handle field", sp.GetEffect())
			}
		case mxgatewayv1.ItemEffect_ITEM_EFFECT_REGISTER:
			if sp.GetResult() != mxgatewayv1.CommandResult_COMMAND_RESULT_SERVER_HANDLE {
				fail(k.name, "", "a registration needs a server handle result")
			}
		}
	case mxgatewayv1.CommandShape_COMMAND_SHAPE_BULK:
		if sp.GetMethod() != "" || sp.GetScope() != 0 || sp.GetEffect() != 0 || sp.GetResult() != 0 || sp.GetInterfaceLevel() != 0 {
			fail(k.name, "", "a bulk form takes its method, scope, effect, result and level from its steps")
		}
		if k.inputs == nil {
			fail(k.name, "", "a bulk form needs an input list")
		}
		if len(sp.GetSteps()) == 0 {
			fail(k.name, "", "a bulk form needs steps")
		}
		for _, s := range sp.GetSteps() {
			st := Step{Kind: t.byName[s.GetCommand()]}
			if st.Kind == nil || !st.Kind.isSingleSpec() {
				fail(k.name, "", "step %q is not a single command", s.GetCommand())
				continue
			}
			if s.GetSupervisoryCommand() != "" {
				st.Supervisory = t.byName[s.GetSupervisoryCommand()]
				if st.Supervisory == nil || !st.Supervisory.isSingleSpec() {
					fail(k.name, "", "supervisory step %q is not a single command", s.GetSupervisoryCommand())
					st.Supervisory = nil
				}
				if k.super == nil {
					fail(k.name, "", "a supervisory step needs a supervisory field")
				}
			}
			k.steps = append(k.steps, st)
		}
		k.checkSteps(fail)
	case mxgatewayv1.CommandShape_COMMAND_SHAPE_READ_BULK:
		if sp.GetScope() == mxgatewayv1.CommandScope_COMMAND_SCOPE_UNSPECIFIED || sp.GetInterfaceLevel() < 1 {
			fail(k.name, "", "ReadBulk needs a scope and an interface level")
		}
		if k.inputs == nil || k.inputRole() != mxgatewayv1.FieldRole_FIELD_ROLE_REFERENCE {
			fail(k.name, "", "ReadBulk needs a reference input list")
		}
	default:
		fail(k.name, "", "no shape")
	}
}

// isSingleSpec reports whether the message is declared single (usable
// while the catalogue is being built).
func (k *Kind) isSingleSpec() bool {
	return k.spec.GetShape() == mxgatewayv1.CommandShape_COMMAND_SHAPE_SINGLE
}

// checkSteps checks that a bulk form's inputs fit its steps.
func (k *Kind) checkSteps(fail failFunc) {
	if k.inputs == nil || len(k.steps) == 0 {
		return
	}
	role, acc := k.inRole, k.inAcc
	for j, st := range k.steps {
		for _, sk := range []*Kind{st.Kind, st.Supervisory} {
			if sk == nil {
				continue
			}
			switch role {
			case mxgatewayv1.FieldRole_FIELD_ROLE_REFERENCE:
				// The first step takes the reference; later ones the handle
				// it added.
				if j == 0 && (sk.ref == nil || sk.fieldAccess(sk.ref) != acc) {
					fail(k.name, "", "step %s does not take a %v reference", sk.name, acc)
				}
				if j > 0 && sk.item == nil {
					fail(k.name, "", "step %s after an add needs an item handle field", sk.name)
				}
				if j > 0 && k.steps[0].Kind.Effect() != mxgatewayv1.ItemEffect_ITEM_EFFECT_ADD {
					fail(k.name, "", "only an add can feed a later step")
				}
			case mxgatewayv1.FieldRole_FIELD_ROLE_ITEM_HANDLE:
				if sk.item == nil || sk.fieldAccess(sk.item) != acc {
					fail(k.name, "", "step %s does not take a %v item handle", sk.name, acc)
				}
			case mxgatewayv1.FieldRole_FIELD_ROLE_ENTRIES:
				if len(k.steps) != 1 || k.inputs.Message() == nil || k.inputs.Message().FullName() != sk.msg.FullName() {
					fail(k.name, "", "entries must be the messages of its one step")
				}
			}
		}
	}
}

func (k *Kind) fieldAccess(fd protoreflect.FieldDescriptor) mxgatewayv1.ItemAccess {
	for _, f := range k.fields {
		if f.Desc == fd {
			return f.Access
		}
	}
	return mxgatewayv1.ItemAccess_ITEM_ACCESS_UNSPECIFIED
}
