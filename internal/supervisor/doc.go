// Package supervisor launches worker processes and watches them: it creates
// each session's endpoint first, starts the worker with the one-time nonce on
// its stdin, accepts exactly one connection and checks that its peer is the
// process it started, runs the handshake through a workerclient.Client, and
// kills the process (with its process group or Job Object) on any failure.
//
// Process hygiene: on Linux every worker leads its own process group and
// receives SIGKILL when the gateway's spawning thread dies (Pdeathsig); on
// Windows every worker runs in a Job Object with kill-on-close. One waiter
// goroutine per worker reaps it, reports the exit to its client, and cleans
// up its records. CleanupLeftovers removes what a previous run of the
// gateway left behind.
package supervisor
