// Package metrics defines the gateway's Prometheus metrics (all named
// mxgateway_*, units in the name) and typed methods to update them. The
// collectors register on a registry the caller passes in, so each test can
// use a fresh one; opshttp serves it at /metrics.
//
// subscriber_queue_depth is the sum of the events waiting in every
// subscriber queue, sampled at scrape time through SetQueueDepthFunc: a
// growing sum means some subscriber is falling behind, and the overflow
// counter says when a policy had to act.
package metrics
