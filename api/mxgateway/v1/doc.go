// Package mxgatewayv1 is the public gRPC API of mxgateway (protobuf package
// mxgateway.v1): the Gateway service, MXAccess commands and replies, values,
// statuses and events. The .proto files beside this file are the reference
// documentation; the Go code is generated from them by `make generate`,
// except reasons.go, limits.go and this file. The service stubs (clients,
// server interfaces) are in package mxgatewayv1grpc beside it, so that this
// package links no gRPC.
package mxgatewayv1
