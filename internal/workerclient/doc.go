// Package workerclient owns the gateway's end of one worker connection: the
// handshake, one read loop and one write loop, the pending commands keyed by
// correlation id, the bounded inbound event channel, the heartbeat monitor
// and the single terminal fault that ends all of them.
//
// A Client moves Created → Handshaking → Ready → Closing → Closed, or to
// Faulted from anywhere. Closed and Faulted are terminal: Done is closed, Err
// tells why (nil after a clean close), every pending command has failed with
// that reason and the Events channel is closed once drained.
//
// Lock order: Client.mu is a leaf; it is never held across I/O, a channel
// send that may block, or a call into another package.
package workerclient
