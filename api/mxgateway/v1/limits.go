package mxgatewayv1

import "time"

// Bounds of StreamEvents batching (StreamEventsRequest.max_batch and
// max_delay_ms): the gateway refuses a request beyond them with
// INVALID_REQUEST, and the Go SDK's Batch clamps to them.
const (
	MaxStreamBatch      = 8192
	MaxStreamBatchDelay = time.Second
)
