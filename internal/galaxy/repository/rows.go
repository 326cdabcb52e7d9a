package repository

import (
	"database/sql"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/internal/galaxy/browse"
)

// Rows is what the scan code reads of a query's result: *sql.Rows is
// one; tests feed canned rows.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close() error
}

// MaxRows bounds every query's rows: a Galaxy larger than this is
// refused rather than read into memory without end.
const MaxRows = 5_000_000

// GalaxyRow is the deploy probe's row (galaxy.sql).
type GalaxyRow struct {
	Name     string
	Deployed time.Time
}

// HierarchyRow is one row of hierarchy.sql.
type HierarchyRow struct {
	ID        int32
	Tag       string
	Contained string // NULL reads as ""
	Parent    int32
	IsArea    bool
	Category  int32
	Area      int32
	Host      int32
	Templates []string // template_chain split at "|"; NULL: none
}

// AttributeRow is one row of attributes.sql.
type AttributeRow struct {
	Object      int32
	Name        string
	Type        int32
	IsArray     bool
	ArrayLength uint32 // decoded from mx_value
	Security    int32
	Historized  bool
	Alarm       bool
}

// BuiltinRow is one row of builtins.sql.
type BuiltinRow struct {
	Object     int32
	Instance   string // the primitive instance's name ("" for the object's own primitive)
	Definition string // the primitive definition's name ("AlarmExtension")
	Name       string
	Type       int32
	IsArray    bool
	Security   int32
}

// AttributeName is the browse name of a built-in: "Instance.Name", or
// Name when the instance has no name.
func (b BuiltinRow) AttributeName() string {
	if b.Instance == "" {
		return b.Name
	}
	return b.Instance + "." + b.Name
}

// scanAll reads every row of r with scan, at most MaxRows, and closes r.
func scanAll[T any](r Rows, query string, scan func(Rows) (T, error)) ([]T, error) {
	defer r.Close()
	var out []T
	for r.Next() {
		if len(out) == MaxRows {
			return nil, fmt.Errorf("repository: %s: more than %d rows", query, MaxRows)
		}
		v, err := scan(r)
		if err != nil {
			return nil, fmt.Errorf("repository: %s: row %d: %w", query, len(out)+1, err)
		}
		out = append(out, v)
	}
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("repository: %s: %w", query, err)
	}
	return out, nil
}

// ScanGalaxy reads the deploy probe's one row.
func ScanGalaxy(r Rows) (GalaxyRow, error) {
	rows, err := scanAll(r, QueryGalaxy, func(r Rows) (GalaxyRow, error) {
		var g GalaxyRow
		var name sql.NullString
		var at sql.NullTime
		if err := r.Scan(&name, &at); err != nil {
			return g, err
		}
		g.Name, g.Deployed = name.String, at.Time.UTC()
		return g, nil
	})
	if err != nil {
		return GalaxyRow{}, err
	}
	if len(rows) != 1 {
		return GalaxyRow{}, fmt.Errorf("repository: %s: %d rows, want 1 (is this a Galaxy Repository database?)", QueryGalaxy, len(rows))
	}
	return rows[0], nil
}

// ScanHierarchy reads hierarchy.sql's rows.
func ScanHierarchy(r Rows) ([]HierarchyRow, error) {
	return scanAll(r, QueryHierarchy, func(r Rows) (HierarchyRow, error) {
		var h HierarchyRow
		var contained, chain sql.NullString
		var area, host sql.NullInt32
		if err := r.Scan(&h.ID, &h.Tag, &contained, &h.Parent, &h.IsArea, &h.Category, &area, &host, &chain); err != nil {
			return h, err
		}
		h.Contained, h.Area, h.Host = contained.String, area.Int32, host.Int32
		if chain.String != "" {
			h.Templates = strings.Split(chain.String, "|")
		}
		return h, nil
	})
}

// ScanAttributes reads attributes.sql's rows.
func ScanAttributes(r Rows) ([]AttributeRow, error) {
	return scanAll(r, QueryAttributes, func(r Rows) (AttributeRow, error) {
		var a AttributeRow
		var value []byte
		if err := r.Scan(&a.Object, &a.Name, &a.Type, &a.IsArray, &value, &a.Security, &a.Historized, &a.Alarm); err != nil {
			return a, err
		}
		if a.IsArray {
			a.ArrayLength = ArrayLength(value)
		}
		return a, nil
	})
}

// ScanBuiltins reads builtins.sql's rows.
func ScanBuiltins(r Rows) ([]BuiltinRow, error) {
	return scanAll(r, QueryBuiltins, func(r Rows) (BuiltinRow, error) {
		var b BuiltinRow
		var inst sql.NullString
		if err := r.Scan(&b.Object, &inst, &b.Definition, &b.Name, &b.Type, &b.IsArray, &b.Security); err != nil {
			return b, err
		}
		b.Instance = inst.String
		return b, nil
	})
}

// mxValueArrayOffset is where an array's length sits in a
// dynamic_attribute's mx_value: bytes 13–16 (1-based), little-endian
// (GALAXY.md §1.2, from OtOpcUa's reading of the format; to be checked on
// a real Galaxy, docs/windows.md).
const mxValueArrayOffset = 12

// ArrayLength decodes an array attribute's length from its mx_value; 0
// when the value is too short to hold one.
func ArrayLength(mxValue []byte) uint32 {
	if len(mxValue) < mxValueArrayOffset+4 {
		return 0
	}
	return binary.LittleEndian.Uint32(mxValue[mxValueArrayOffset:])
}

// Assemble builds the browse model from the rows of one model read: the
// hierarchy's objects, each with its dynamic attributes and then its
// built-ins (a built-in whose name a dynamic attribute already has is
// dropped, as upstream does). Attributes of objects not in the
// hierarchy are ignored.
func Assemble(g GalaxyRow, hier []HierarchyRow, attrs []AttributeRow, builtins []BuiltinRow) *browse.Model {
	m := &browse.Model{Name: g.Name, Deployed: g.Deployed, Objects: make([]browse.Object, 0, len(hier))}
	index := make(map[int32]int, len(hier))
	for _, h := range hier {
		if _, dup := index[h.ID]; dup {
			continue
		}
		index[h.ID] = len(m.Objects)
		m.Objects = append(m.Objects, browse.Object{ID: h.ID, Tag: h.Tag, Contained: h.Contained, Parent: h.Parent,
			Area: h.Area, Host: h.Host, IsArea: h.IsArea, Category: h.Category, Templates: h.Templates})
	}
	names := make(map[int32]map[string]bool)
	for _, a := range attrs {
		i, ok := index[a.Object]
		if !ok || browse.Hidden(a.Name) {
			continue
		}
		if names[a.Object] == nil {
			names[a.Object] = map[string]bool{}
		}
		names[a.Object][strings.ToLower(a.Name)] = true
		o := &m.Objects[i]
		o.Attributes = append(o.Attributes, browse.Attribute{Name: a.Name, Type: mxgatewayv1.MxDataType(a.Type),
			IsArray: a.IsArray, ArrayLength: a.ArrayLength, Security: a.Security, Historized: a.Historized, Alarm: a.Alarm})
	}
	for _, b := range builtins {
		i, ok := index[b.Object]
		name := b.AttributeName()
		if !ok || browse.Hidden(name) || names[b.Object][strings.ToLower(name)] {
			continue
		}
		if names[b.Object] == nil {
			names[b.Object] = map[string]bool{}
		}
		names[b.Object][strings.ToLower(name)] = true
		o := &m.Objects[i]
		o.Attributes = append(o.Attributes, browse.Attribute{Name: name, Type: mxgatewayv1.MxDataType(b.Type),
			IsArray: b.IsArray, Security: b.Security, Builtin: true, Primitive: b.Definition})
	}
	return m
}
