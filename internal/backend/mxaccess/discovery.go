package mxaccess

import (
	"fmt"
	"io"
	"sort"

	"github.com/mxgateway/mxgateway/internal/variant"
)

// Discovery is what the COM layer learned about the object at start-up:
// interface levels, DISPIDs, type-library shapes, event interfaces and the
// MXSTATUS_PROXY record. `mxworker selftest` prints it; the worker logs it.
type Discovery struct {
	Levels      []LevelInfo
	Methods     []MethodDiscovery
	Events      []EventInterface
	StatusSize  uint32
	StatusField []variant.RecordField
	StatusNote  string
	Notes       []string
}

// LevelInfo is one ILMXProxyServerN interface.
type LevelInfo struct {
	Level    int
	IID      string
	Obtained bool
	Dual     bool
}

// MethodDiscovery is one method as the host exposes it.
type MethodDiscovery struct {
	Name     string
	Found    bool
	DispID   int32
	Via      string // the interface pointer the DISPID was resolved on
	Shape    string // from the type library, "" if not described
	Expected string
	Params   []string
}

// EventInterface is one connection point and its members.
type EventInterface struct {
	IID     string
	Name    string
	Advised bool
	Cookie  uint32
	Members []EventMember
	Ignored string
}

// EventMember is one event of a source interface.
type EventMember struct {
	Name   string
	DispID int32
	Params []string
	Types  []string
}

// Format writes d in the self-test's text form.
func (d Discovery) Format(w io.Writer) {
	fmt.Fprintln(w, "interfaces:")
	for _, l := range d.Levels {
		fmt.Fprintf(w, "  ILMXProxyServer%d %s obtained=%v dual=%v\n", l.Level, l.IID, l.Obtained, l.Dual)
	}
	fmt.Fprintln(w, "methods:")
	ms := append([]MethodDiscovery(nil), d.Methods...)
	sort.Slice(ms, func(i, j int) bool { return ms[i].Name < ms[j].Name })
	for _, m := range ms {
		if !m.Found {
			fmt.Fprintf(w, "  %-26s NOT FOUND (expected %s)\n", m.Name, m.Expected)
			continue
		}
		shape := m.Shape
		if shape == "" {
			shape = "(not in type library)"
		}
		match := ""
		if m.Shape != "" && m.Shape != m.Expected {
			match = "  <-- DIFFERS"
		}
		fmt.Fprintf(w, "  %-26s dispid=%-4d via=%s\n      typelib:  %s%s\n      expected: %s\n", m.Name, m.DispID, m.Via, shape, match, m.Expected)
		if len(m.Params) > 0 {
			fmt.Fprintf(w, "      params:   %v\n", m.Params)
		}
	}
	fmt.Fprintln(w, "event interfaces:")
	for _, e := range d.Events {
		fmt.Fprintf(w, "  %s %s advised=%v", e.Name, e.IID, e.Advised)
		if e.Ignored != "" {
			fmt.Fprintf(w, " (ignored: %s)", e.Ignored)
		}
		fmt.Fprintln(w)
		for _, m := range e.Members {
			fmt.Fprintf(w, "    %-22s dispid=%-4d params=%v types=%v\n", m.Name, m.DispID, m.Params, m.Types)
		}
	}
	fmt.Fprintf(w, "MXSTATUS_PROXY: size=%d fields=%v %s\n", d.StatusSize, d.StatusField, d.StatusNote)
	for _, n := range d.Notes {
		fmt.Fprintln(w, "note:", n)
	}
}

// Discovery returns what the object's COM layer discovered, when it
// records that (the windows/386 object does; fakes need not).
func (b *Backend) Discovery() (Discovery, bool) {
	if d, ok := b.obj.(interface{ Discovery() Discovery }); ok {
		return d.Discovery(), true
	}
	return Discovery{}, false
}
