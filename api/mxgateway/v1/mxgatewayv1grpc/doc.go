// Package mxgatewayv1grpc holds the gRPC service stubs of the public API
// (protobuf package mxgateway.v1): the clients, server interfaces and
// service descriptors of Gateway, Admin and Galaxy. The messages they carry
// are in package mxgatewayv1; the stubs live apart so that a program using
// only the messages, such as the worker, links no gRPC (api/internal/grpcpkg
// explains how "make generate" puts them here). Everything but this file is
// generated.
package mxgatewayv1grpc
