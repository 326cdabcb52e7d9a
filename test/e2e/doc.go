// Package e2e holds the end-to-end tests of mxgateway: the real binary,
// real worker processes and real sockets, driven over gRPC with the
// generated client. The reusable process harness is in package harness.
package e2e
