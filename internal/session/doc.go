// Package session manages gateway sessions: one worker per session, its
// lease, its pending-command budget, and the per-session event distributor
// (sequence check, replay ring, bounded subscriber queues, slow-consumer
// policy).
//
// The package knows nothing of gRPC. It consumes workers through the Worker
// interface, so it is unit-tested with in-memory workers and wired to the
// real worker client in cmd/mxgateway. Lock order: docs/locking.md.
package session
