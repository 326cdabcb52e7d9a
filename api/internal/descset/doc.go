// Command descset writes the client kit's descriptor set,
// api/mxgateway.v1.binpb: a FileDescriptorSet holding every file of the
// public API (mxgateway/v1), the google.rpc files its errors use
// (google/rpc/status.proto, google/rpc/error_details.proto) and everything
// they import, dependencies first, so that tools which load descriptors
// (grpcurl -protoset, @grpc/proto-loader, protoc --descriptor_set_in, any
// descriptor pool) need nothing else.
//
// It is derived from the generated Go code, which is derived from the
// .proto files: "make generate" runs buf generate and then this command,
// and "make check-generated" fails when the checked-in set is stale. The
// worker protocol (mxgateway/worker/v1) is internal and not in the set.
package main
