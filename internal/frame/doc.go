// Package frame reads and writes the gateway-worker wire format: a uint32
// little-endian payload length followed by one serialized WorkerEnvelope.
//
// Lengths of zero or above the limit are rejected before any allocation. The
// Reader validates the protocol version, the session id and that exactly one
// body is set, and reports each failure with a distinct Code. The Writer
// serialises into a reused buffer and issues one Write per frame.
package frame
