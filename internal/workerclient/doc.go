// Package workerclient owns the gateway's end of one worker connection: the
// handshake, one read loop, the pending commands keyed by correlation id, the
// bounded inbound event channel, the heartbeat monitor and the single
// terminal fault that ends all of them. Outbound envelopes (commands, Cancel,
// Shutdown) are numbered and written by their senders under a write lock,
// one frame per Write, with no hand-off to another goroutine; a write blocked
// on a full pipe is bounded by its deadline and ended by the terminal fault,
// which closes the connection.
//
// Items is the gateway's mirror of the worker's item table: the read loop
// applies every reply, in the order the worker ran the commands, before its
// caller sees it — including replies to commands whose caller gave up (a
// timeout, a cancelled context), which stay pending until answered. A
// command may carry an item guard; the worker's refusal of it is a
// *GuardError.
//
// A Client owns its worker's life: the connection and, through Process, the
// worker process. It moves Created → Handshaking → Ready → Closing → Closed,
// or to Faulted from anywhere, and reaches Closed or Faulted once, at one
// terminal point (End) that records the first cause typed (Cause): a clean
// close, the process exit or the pipe's end (whichever came first), a
// failed handshake, heartbeat silence, a worker Fault, a protocol violation,
// a stalled reader, a failed write, the Shutdown deadline, or Kill. After a
// fault the client kills the process; either way Done is closed only once
// the read loop ended and the process was reaped, so End.Exit says how it
// exited, every pending command has failed with Err, and NextEvents reports
// the end once drained. One goroutine, run, watches the pipe's end, the
// process exit and the heartbeats; a worker is gone when both its pipe ended
// and its process exited (after the exit the pipe is read out, and its
// events handed to the queue, for at most drainWait: a reader that does not
// take them does not hold the end back; a pipe that ended without an exit
// is bounded by the heartbeat grace).
//
// Lock order: the write lock (held across one frame write) before Client.mu
// and the Cancel queue's mutex; Client.mu is a leaf, never held across I/O, a
// channel send that may block, or a call into another package.
package workerclient
