// Package browse serves Galaxy browse (docs/browse.md) from an immutable
// Snapshot of a Galaxy model: the browse tree (areas, containers,
// objects), each object's attributes with the reference AddItem takes,
// filters, a caller's read constraints and opaque page tokens bound to the
// deploy sequence. A Store holds the snapshot in force and swaps it
// atomically on deploy, so a browse never waits for a source. It knows
// nothing of gRPC: errors are typed (ErrNotFound, ErrPageToken, ...) and
// internal/gateway maps them to codes and reasons.
//
// The one source built so far is the simulated Galaxy runtime
// (FromModel, WatchRuntime).
package browse
