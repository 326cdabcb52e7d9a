// Package store is the gateway's SQLite database (modernc.org/sqlite, no cgo):
// the API-key table and the append-only audit log.
//
// Every connection gets its pragmas from the DSN (busy timeout first, then
// WAL, synchronous NORMAL and foreign keys), writes go through a one-connection
// pool whose transactions begin IMMEDIATE, and reads use a separate read-only
// pool. Numbered migrations are embedded in the binary and applied inside
// transactions when the store opens; a database written by a newer binary is
// refused.
//
// The store keeps only HMACs of key secrets; it never sees a secret.
package store
