package repository

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"sync"
	"time"
)

// A fixture is a Galaxy Repository in row form: for each query file, the
// rows the query returns, with typed columns ("name:int", ":string",
// ":bool", ":bytes" (hex), ":time" (RFC 3339)). The fixture driver below
// serves them through database/sql, so the scan code reads real
// *sql.Rows with database/sql's own conversions, as from go-mssqldb.
type fixture map[string]*table

type table struct {
	Columns []string `json:"columns"`
	Rows    [][]any  `json:"rows"`
}

func loadFixture(path string) (fixture, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f fixture
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, err
	}
	return f, nil
}

// The driver: DSN names a fixture registered with serve. A query's text
// must be exactly one of the embedded queries; failing makes every query
// fail (an unreachable database).
var fixtures = struct {
	sync.Mutex
	byName map[string]*fixtureState
}{byName: map[string]*fixtureState{}}

type fixtureState struct {
	mu      sync.Mutex
	f       fixture
	failing bool
	queries []string // query files run, in order
}

func (s *fixtureState) set(f fixture, failing bool) {
	s.mu.Lock()
	s.f, s.failing = f, failing
	s.mu.Unlock()
}

func (s *fixtureState) ran() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.queries...)
}

var errUnreachable = errors.New("fixture: database unreachable")

func init() { sql.Register("mxgw-fixture", fixtureDriver{}) }

var fixtureSeq int

// serve registers f and returns a DB reading it through database/sql.
func serve(f fixture) (DB, *fixtureState) {
	fixtures.Lock()
	fixtureSeq++
	name := fmt.Sprintf("f%d", fixtureSeq)
	st := &fixtureState{f: f}
	fixtures.byName[name] = st
	fixtures.Unlock()
	db, err := sql.Open("mxgw-fixture", name)
	if err != nil {
		panic(err)
	}
	return SQLDB{DB: db}, st
}

type fixtureDriver struct{}

func (fixtureDriver) Open(name string) (driver.Conn, error) {
	fixtures.Lock()
	st := fixtures.byName[name]
	fixtures.Unlock()
	if st == nil {
		return nil, fmt.Errorf("fixture: no fixture %q", name)
	}
	return &fixtureConn{st: st}, nil
}

type fixtureConn struct{ st *fixtureState }

func (c *fixtureConn) Prepare(q string) (driver.Stmt, error) { return &fixtureStmt{c: c, q: q}, nil }
func (c *fixtureConn) Close() error                          { return nil }
func (c *fixtureConn) Begin() (driver.Tx, error)             { return nil, errors.New("fixture: no transactions") }

type fixtureStmt struct {
	c *fixtureConn
	q string
}

func (s *fixtureStmt) Close() error  { return nil }
func (s *fixtureStmt) NumInput() int { return -1 }
func (s *fixtureStmt) Exec([]driver.Value) (driver.Result, error) {
	return nil, errors.New("fixture: read only")
}

func (s *fixtureStmt) Query([]driver.Value) (driver.Rows, error) {
	st := s.c.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.failing {
		return nil, errUnreachable
	}
	for _, name := range Queries {
		if Query(name) == s.q {
			st.queries = append(st.queries, name)
			t := st.f[name]
			if t == nil {
				return nil, fmt.Errorf("fixture: no rows for %s", name)
			}
			return newFixtureRows(t)
		}
	}
	return nil, fmt.Errorf("fixture: not one of the embedded queries: %.60q", s.q)
}

type fixtureRows struct {
	cols []string
	rows [][]driver.Value
	i    int
}

func newFixtureRows(t *table) (*fixtureRows, error) {
	r := &fixtureRows{}
	types := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		name, typ, _ := strings.Cut(c, ":")
		r.cols, types[i] = append(r.cols, name), typ
	}
	for _, row := range t.Rows {
		if len(row) != len(types) {
			return nil, fmt.Errorf("fixture: row %v has %d columns, want %d", row, len(row), len(types))
		}
		vals := make([]driver.Value, len(row))
		for i, v := range row {
			if v == nil {
				continue
			}
			var err error
			if vals[i], err = fixtureValue(types[i], v); err != nil {
				return nil, fmt.Errorf("fixture: column %s: %w", t.Columns[i], err)
			}
		}
		r.rows = append(r.rows, vals)
	}
	return r, nil
}

// fixtureValue converts a JSON value to the driver value go-mssqldb gives
// for the column's SQL type.
func fixtureValue(typ string, v any) (driver.Value, error) {
	switch typ {
	case "int":
		f, ok := v.(float64)
		if !ok || f != math.Trunc(f) {
			return nil, fmt.Errorf("%v is not an integer", v)
		}
		return int64(f), nil
	case "string":
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("%v is not a string", v)
		}
		return s, nil
	case "bool":
		b, ok := v.(bool)
		if !ok {
			return nil, fmt.Errorf("%v is not a bool", v)
		}
		return b, nil
	case "bytes":
		s, _ := v.(string)
		return hex.DecodeString(s)
	case "time":
		s, _ := v.(string)
		return time.Parse(time.RFC3339Nano, s)
	}
	return nil, fmt.Errorf("unknown column type %q", typ)
}

func (r *fixtureRows) Columns() []string { return r.cols }
func (r *fixtureRows) Close() error      { return nil }
func (r *fixtureRows) Next(dest []driver.Value) error {
	if r.i == len(r.rows) {
		return io.EOF
	}
	copy(dest, r.rows[r.i])
	r.i++
	return nil
}

// queryRows runs one embedded query on db and returns its Rows.
func queryRows(db DB, name string) (Rows, error) { return db.Query(context.Background(), Query(name)) }
