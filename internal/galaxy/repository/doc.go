// Package repository is the Galaxy Repository source of Galaxy browse
// (docs/browse.md): it reads a real Galaxy's model from its SQL Server
// database (database/sql with github.com/microsoft/go-mssqldb, Windows
// integrated login or SQL login as the connection string says), with the
// hierarchy and attribute queries kept in the embedded sql/*.sql files
// (GALAXY.md §1.4–1.6). A Source polls the deploy time and, on a deploy,
// reads the model into an immutable browse.Snapshot swapped into the
// browse.Store atomically, so a browse never waits for SQL. Each model
// read is written to the snapshot file; a gateway that starts while the
// database is unreachable serves that file's model, marked stale.
//
// The scan code reads Rows (what *sql.Rows does), so it is tested on
// canned rows without a server.
package repository
