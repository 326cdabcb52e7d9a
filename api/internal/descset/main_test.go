package main

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
)

const checkedIn = "../../mxgateway.v1.binpb"

// TestCheckedInSetIsCurrent: the kit's descriptor set is what the
// generated code says (make generate refreshes it).
func TestCheckedInSetIsCurrent(t *testing.T) {
	want, err := build(protoregistry.GlobalFiles)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(checkedIn)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is stale: run make generate and commit", checkedIn)
	}
}

func loadSet(t *testing.T) *descriptorpb.FileDescriptorSet {
	t.Helper()
	b, err := os.ReadFile(checkedIn)
	if err != nil {
		t.Fatal(err)
	}
	s := &descriptorpb.FileDescriptorSet{}
	if err := proto.Unmarshal(b, s); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSetIsSelfContained: every import is in the set, before its importer,
// and the set holds the API, the google.rpc error files and nothing private.
func TestSetIsSelfContained(t *testing.T) {
	s := loadSet(t)
	seen := map[string]bool{}
	api := 0
	for _, f := range s.GetFile() {
		for _, dep := range f.GetDependency() {
			if !seen[dep] {
				t.Errorf("%s imports %s, which is not in the set before it", f.GetName(), dep)
			}
		}
		seen[f.GetName()] = true
		if strings.HasPrefix(f.GetName(), "mxgateway/worker/") {
			t.Errorf("the private worker protocol %s is in the kit", f.GetName())
		}
		if strings.HasPrefix(f.GetName(), apiPrefix) {
			api++
		}
	}
	for _, p := range append([]string{"mxgateway/v1/gateway.proto", "mxgateway/v1/admin.proto"}, extraRoots...) {
		if !seen[p] {
			t.Errorf("%s is not in the kit", p)
		}
	}
	if api < 5 {
		t.Errorf("only %d API files in the kit", api)
	}
}

// reserved holds the reserved words of the languages whose generated code
// uses proto field, oneof and message names as written: Python (attributes),
// JavaScript (plain objects of protobufjs and proto-loader), Java (the
// generators of Kotlin and Dart keep the names too), Go, Ruby (accessor
// methods) and Rust (prost fields). C# re-cases every name, and C++ appends
// "_" to its keywords.
var reserved = map[string][]string{
	"python": strings.Fields(`False None True and as assert async await break class continue def del elif else except
		finally for from global if import in is lambda nonlocal not or pass raise return try while with yield`),
	"javascript": strings.Fields(`await break case catch class const continue debugger default delete do else enum export
		extends false finally for function if implements import in instanceof interface let new null package private
		protected public return static super switch this throw true try typeof var void while with yield arguments eval`),
	"java": strings.Fields(`abstract assert boolean break byte case catch char class const continue default do double else
		enum extends final finally float for goto if implements import instanceof int interface long native new package
		private protected public return short static strictfp super switch synchronized this throw throws transient try
		void volatile while true false null var record yield sealed permits`),
	"go": strings.Fields(`break case chan const continue default defer else fallthrough for func go goto if import interface
		map package range return select struct switch type var`),
	"ruby": strings.Fields(`BEGIN END alias and begin break case class def defined? do else elsif end ensure false for if in
		module next nil not or redo rescue retry return self super then true undef unless until when while yield`),
	"rust": strings.Fields(`as async await break const continue crate dyn else enum extern false fn for if impl in let loop
		match mod move mut pub ref return self Self static struct super trait true type unsafe use where while abstract
		become box do final macro override priv try typeof unsized virtual yield`),
}

// TestNoReservedNames: every name in the kit's own files works as written in
// every language above.
func TestNoReservedNames(t *testing.T) {
	words := map[string][]string{}
	for lang, ws := range reserved {
		for _, w := range ws {
			words[w] = append(words[w], lang)
		}
	}
	check := func(kind string, d protoreflect.Descriptor) {
		if langs := words[string(d.Name())]; len(langs) > 0 {
			t.Errorf("%s %s: %q is reserved in %v (rename it; reserve the old number and name)", kind, d.FullName(), d.Name(), langs)
		}
	}
	n := 0
	var msgs func(ms protoreflect.MessageDescriptors)
	msgs = func(ms protoreflect.MessageDescriptors) {
		for i := 0; i < ms.Len(); i++ {
			m := ms.Get(i)
			check("message", m)
			for j := 0; j < m.Fields().Len(); j++ {
				check("field", m.Fields().Get(j))
				n++
			}
			for j := 0; j < m.Oneofs().Len(); j++ {
				check("oneof", m.Oneofs().Get(j))
			}
			msgs(m.Messages())
			enums(t, m.Enums(), check)
		}
	}
	rs, err := roots(protoregistry.GlobalFiles)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range rs {
		if !strings.HasPrefix(f.Path(), apiPrefix) {
			continue
		}
		msgs(f.Messages())
		enums(t, f.Enums(), check)
		for i := 0; i < f.Services().Len(); i++ {
			sv := f.Services().Get(i)
			check("service", sv)
			for j := 0; j < sv.Methods().Len(); j++ {
				check("method", sv.Methods().Get(j))
			}
		}
	}
	if n < 100 {
		t.Fatalf("walked only %d fields", n)
	}
}

func enums(t *testing.T, es protoreflect.EnumDescriptors, check func(string, protoreflect.Descriptor)) {
	for i := 0; i < es.Len(); i++ {
		e := es.Get(i)
		check("enum", e)
		prefix := screaming(string(e.Name())) + "_"
		for j := 0; j < e.Values().Len(); j++ {
			v := e.Values().Get(j)
			if !strings.HasPrefix(string(v.Name()), prefix) {
				t.Errorf("enum value %s lacks the prefix %s (values share one namespace per file in C++ and Python)", v.FullName(), prefix)
			}
		}
	}
}

// screaming turns QualityClass into QUALITY_CLASS (and MxDataType into
// MX_DATA_TYPE).
func screaming(s string) string {
	var b strings.Builder
	for i, r := range s {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte('_')
		}
		b.WriteRune(r)
	}
	return strings.ToUpper(b.String())
}

var enumRow = regexp.MustCompile("(?m)^\\| `(\\w+)` \\| `([\\w/.]+)` \\|$")

// TestEnumTableInDocs: docs/clients/README.md says where each top-level
// enum of the API lives, and nothing else.
func TestEnumTableInDocs(t *testing.T) {
	doc, err := os.ReadFile("../../../docs/clients/README.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]string{}
	for _, m := range enumRow.FindAllStringSubmatch(string(doc), -1) {
		documented[m[1]] = m[2]
	}
	rs, err := roots(protoregistry.GlobalFiles)
	if err != nil {
		t.Fatal(err)
	}
	real := map[string]string{}
	for _, f := range rs {
		if !strings.HasPrefix(f.Path(), apiPrefix) {
			continue
		}
		for i := 0; i < f.Enums().Len(); i++ {
			real[string(f.Enums().Get(i).Name())] = f.Path()
		}
	}
	for name, file := range real {
		if documented[name] != file {
			t.Errorf("docs/clients/README.md: enum %s is in %s, the table says %q", name, file, documented[name])
		}
	}
	for name := range documented {
		if _, ok := real[name]; !ok {
			t.Errorf("docs/clients/README.md lists enum %s, which the API does not have", name)
		}
	}
}
