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
// A Client moves Created → Handshaking → Ready → Closing → Closed, or to
// Faulted from anywhere. Closed and Faulted are terminal: Done is closed, Err
// tells why (nil after a clean close), every pending command has failed with
// that reason and the Events channel is closed once drained.
//
// Lock order: the write lock (held across one frame write) before Client.mu
// and the Cancel queue's mutex; Client.mu is a leaf, never held across I/O, a
// channel send that may block, or a call into another package.
package workerclient
