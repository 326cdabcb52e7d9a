package repository

import (
	"embed"
	"fmt"
)

//go:embed sql/*.sql
var sqlFiles embed.FS

// The queries, by file name under sql/.
const (
	QueryGalaxy     = "galaxy.sql"     // name and time_of_last_deploy: the deploy probe
	QueryHierarchy  = "hierarchy.sql"  // objects and their browse parents
	QueryAttributes = "attributes.sql" // configured (dynamic) attributes
	QueryBuiltins   = "builtins.sql"   // built-in (primitive) attributes
)

// Queries lists every query, in the order a model read runs them.
var Queries = []string{QueryGalaxy, QueryHierarchy, QueryAttributes, QueryBuiltins}

// Query returns the text of the named query. It panics for a name not in
// Queries (a programming error).
func Query(name string) string {
	b, err := sqlFiles.ReadFile("sql/" + name)
	if err != nil {
		panic(fmt.Sprintf("repository: no query %q", name))
	}
	return string(b)
}
