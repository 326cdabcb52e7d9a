// Command grpcpkg moves the generated gRPC service stubs out of the message
// package. protoc-gen-go-grpc writes a service's stubs into the Go package of
// the .proto file that declares the service, so the stubs of Gateway, Admin
// and Galaxy would share package mxgatewayv1 with the messages, and every
// program that only needs the messages (the worker) would link
// google.golang.org/grpc and net/http.
//
// "make generate" has buf write the stubs into
// api/mxgateway/v1/mxgatewayv1grpc with the messages' package clause, then
// runs this command, which renames the package to mxgatewayv1grpc and
// qualifies every message type the stubs use with the mxgatewayv1 import.
// The .proto files stay as they are (the client kit's file layout, and the
// names other languages generate from it, do not change). The rewrite is
// idempotent; "make check-generated" fails when its output is stale.
package main
