// Package itemtable is a session's item table — its registrations and, per
// item handle, the reference and advise state — with one Apply(command,
// reply) driven by the command catalogue, and the MXAccess teardown
// (MXACCESS.md §2.3) written once over the Backend primitives.
//
// The worker holds the authoritative table and applies every MXAccess call
// it makes. The gateway holds a mirror and applies every reply the worker
// sends, in worker order, including replies to commands whose caller had
// stopped waiting (a timeout, a cancelled RPC): the worker still ran them.
// Reference constraints on writes are decided against the mirror and
// re-checked by the worker against its own table (the item guard), so a
// handle that changed meaning behind the gateway's back is refused.
package itemtable
