// Package repo holds repository-wide checks: every package has a doc
// comment, and imports follow the data flow (the SDK never imports internal
// packages; workers never link the key store, SQLite or the gateway).
package repo
