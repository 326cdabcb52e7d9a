// Package gateway is the gRPC edge of mxgateway: the mxgateway.v1.Gateway
// service handlers, request validation, the one table that maps errors to
// gRPC statuses, and the Server that assembles grpc-go with health,
// reflection, keepalive, size limits and interceptor hooks.
package gateway
