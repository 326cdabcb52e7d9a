// Package ipc provides the per-session local endpoint between the gateway and
// one worker: a Unix socket in a fresh 0700 directory on Unix, or a named pipe
// whose security descriptor admits only the current user on Windows. It also
// reads the connecting peer's process id so that the supervisor can check that
// the peer is the process it started.
//
// Both platforms export the same names: Listen, Dial, PeerPID and the Listener
// interface.
package ipc
