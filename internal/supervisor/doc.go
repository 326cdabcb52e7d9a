// Package supervisor launches worker processes and watches them: it creates
// each session's endpoint first, starts the worker with the one-time nonce on
// its stdin, accepts exactly one connection and checks that its peer is the
// process it started, then hands the connection and the process (as a
// workerclient.Process) to a workerclient.Client, which runs the handshake
// and from then on owns the worker's life, ending it at one terminal point.
// Before the hand-over, and after a failed launch, the supervisor kills the
// process (with its process group or Job Object) itself.
//
// Process hygiene: on Linux every worker leads its own process group and
// receives SIGKILL when the gateway's spawning thread dies (Pdeathsig); on
// Windows every worker runs in a Job Object with kill-on-close. One waiter
// goroutine per worker reaps it, cleans up its records, logs the exit and
// only then reports it to its client. CleanupLeftovers removes what a
// previous run of the gateway left behind.
package supervisor
