package main

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	// The public API, and the google.rpc files its error details use.
	_ "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	_ "google.golang.org/genproto/googleapis/rpc/errdetails"
	_ "google.golang.org/genproto/googleapis/rpc/status"
)

// apiPrefix selects the public API's files.
const apiPrefix = "mxgateway/v1/"

// extraRoots are the files outside the API that a client needs to decode the
// gateway's error details (grpc-status-details-bin is a google.rpc.Status
// whose details hold ErrorInfo, BadRequest and QuotaFailure).
var extraRoots = []string{"google/rpc/status.proto", "google/rpc/error_details.proto"}

func main() {
	out := flag.String("o", "api/mxgateway.v1.binpb", "output file")
	flag.Parse()
	b, err := build(protoregistry.GlobalFiles)
	if err != nil {
		fmt.Fprintln(os.Stderr, "descset:", err)
		os.Exit(1)
	}
	if err := os.WriteFile(*out, b, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "descset:", err)
		os.Exit(1)
	}
}

// roots returns the kit's root files: every file of the public API, sorted,
// then the google.rpc ones.
func roots(files *protoregistry.Files) ([]protoreflect.FileDescriptor, error) {
	var api []protoreflect.FileDescriptor
	files.RangeFiles(func(f protoreflect.FileDescriptor) bool {
		if strings.HasPrefix(f.Path(), apiPrefix) {
			api = append(api, f)
		}
		return true
	})
	if len(api) == 0 {
		return nil, fmt.Errorf("no file under %s is registered", apiPrefix)
	}
	slices.SortFunc(api, func(a, b protoreflect.FileDescriptor) int { return strings.Compare(a.Path(), b.Path()) })
	for _, p := range extraRoots {
		f, err := files.FindFileByPath(p)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		api = append(api, f)
	}
	return api, nil
}

// set returns the FileDescriptorSet of the roots and their imports, each
// file after everything it imports (the order protoc --include_imports
// uses), so a descriptor pool can load it front to back.
func set(files *protoregistry.Files) (*descriptorpb.FileDescriptorSet, error) {
	rs, err := roots(files)
	if err != nil {
		return nil, err
	}
	out := &descriptorpb.FileDescriptorSet{}
	seen := map[string]bool{}
	var visit func(f protoreflect.FileDescriptor)
	visit = func(f protoreflect.FileDescriptor) {
		if seen[f.Path()] {
			return
		}
		seen[f.Path()] = true
		imps := f.Imports()
		for i := 0; i < imps.Len(); i++ {
			visit(imps.Get(i).FileDescriptor)
		}
		out.File = append(out.File, protodesc.ToFileDescriptorProto(f))
	}
	for _, f := range rs {
		visit(f)
	}
	return out, nil
}

// build returns the serialized set, byte for byte the same for the same
// inputs.
func build(files *protoregistry.Files) ([]byte, error) {
	s, err := set(files)
	if err != nil {
		return nil, err
	}
	return proto.MarshalOptions{Deterministic: true}.Marshal(s)
}
