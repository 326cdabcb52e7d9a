package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/client"
)

// objectRow is the JSON form of one object (browse and tree).
type objectRow struct {
	Path        string         `json:"path"`
	Name        string         `json:"name"`
	Tag         string         `json:"tag"`
	ID          int32          `json:"id"`
	Area        bool           `json:"area,omitempty"`
	Template    string         `json:"template,omitempty"`
	Category    int32          `json:"category"`
	HasChildren bool           `json:"has_children,omitempty"`
	Depth       int            `json:"depth,omitempty"`
	Attributes  []attributeRow `json:"attributes,omitempty"`
}

// attributeRow is the JSON form of one attribute.
type attributeRow struct {
	Reference  string `json:"reference"`
	Type       string `json:"type"`
	Length     uint32 `json:"array_length,omitempty"`
	Security   string `json:"security"`
	Historized bool   `json:"historized,omitempty"`
	Alarm      bool   `json:"alarm,omitempty"`
	Builtin    bool   `json:"builtin,omitempty"`
	Locked     bool   `json:"locked,omitempty"`
}

func toObjectRow(o *mxgatewayv1.GalaxyObject) objectRow {
	r := objectRow{Path: o.GetContainedPath(), Name: o.GetBrowseName(), Tag: o.GetTagName(), ID: o.GetObjectId(),
		Area: o.GetIsArea(), Category: o.GetCategoryId(), HasChildren: o.GetHasChildren()}
	if t := o.GetTemplateChain(); len(t) > 0 {
		r.Template = t[0]
	}
	for _, a := range o.GetAttributes() {
		r.Attributes = append(r.Attributes, toAttributeRow(a))
	}
	return r
}

func toAttributeRow(a *mxgatewayv1.GalaxyAttribute) attributeRow {
	t := client.DataTypeName(a.GetDataType())
	if a.GetIsArray() {
		t += "[]"
	}
	return attributeRow{Reference: a.GetReference(), Type: t, Length: a.GetArrayLength(), Security: securityName(a.GetSecurity()),
		Historized: a.GetHistorized(), Alarm: a.GetAlarm(), Builtin: a.GetBuiltin(), Locked: a.GetLocked()}
}

// securityName is AVEVA's name of a classification ("SecuredWrite").
func securityName(s mxgatewayv1.SecurityClassification) string {
	var b strings.Builder
	for _, w := range strings.Split(strings.TrimPrefix(s.String(), "SECURITY_CLASSIFICATION_"), "_") {
		if w != "" {
			b.WriteString(w[:1] + strings.ToLower(w[1:]))
		}
	}
	return b.String()
}

func flags(a attributeRow) string {
	var f []string
	for _, x := range []struct {
		on   bool
		name string
	}{{a.Historized, "historized"}, {a.Alarm, "alarm"}, {a.Builtin, "builtin"}, {a.Locked, "locked"}} {
		if x.on {
			f = append(f, x.name)
		}
	}
	return dash(strings.Join(f, ","))
}

func kind(o objectRow) string {
	if o.Area {
		return "area"
	}
	return "object"
}

// selectPath selects PATH as a browse path, else as a tag name.
func selectPath(ctx context.Context, g *client.Galaxy, path string) (*mxgatewayv1.GalaxyObject, error) {
	o, err := g.Object(ctx, client.ByPath(path), false)
	if errors.Is(err, client.ErrObjectNotFound) {
		if byTag, terr := g.Object(ctx, client.ByTag(path), false); !errors.Is(terr, client.ErrObjectNotFound) {
			return byTag, terr
		}
	}
	return o, err
}

func browseCmd() *command {
	cmd := &command{name: "browse", summary: "list the Galaxy's tree one level at a time", usage: "[PATH] [--builtin] [--json]",
		help: `Lists the children of PATH (a browse path such as Plant.TankFarm, or a tag
name), or the roots of the Galaxy without PATH: areas first, then objects.
For an object it also lists its attributes with the reference to pass to
read, subscribe or AddItem, the data type, security classification and
flags. --builtin adds the attributes primitives contribute (alarm
extensions). Needs an API key with scope browse:read; a key with read
constraints sees only what it may read.

Examples:
  mxctl browse
  mxctl browse Plant.TankFarm
  mxctl browse Tank1 --json`}
	cmd.run = func(ctx context.Context, c *cli, args []string) int {
		var conn connFlags
		fs := c.flagSet(cmd, &conn)
		asJSON := fs.Bool("json", false, "print JSON")
		builtin := fs.Bool("builtin", false, "include built-in attributes")
		pos, code, ok := c.parse(cmd, fs, args)
		if !ok {
			return code
		}
		if len(pos) > 1 {
			return c.fail(cmd.name, "", usageError("browse takes at most one PATH"))
		}
		cl, addr, err := c.dial(ctx, &conn)
		if err != nil {
			return c.fail(cmd.name, addr, err)
		}
		defer cl.Close()
		g := cl.Galaxy()
		var parent *mxgatewayv1.ObjectSelector
		var self *mxgatewayv1.GalaxyObject
		if len(pos) == 1 {
			if self, err = selectPath(ctx, g, pos[0]); err != nil {
				return c.fail(cmd.name, addr, err)
			}
			if *builtin {
				if self, err = g.Object(ctx, client.ByID(self.GetObjectId()), true); err != nil {
					return c.fail(cmd.name, addr, err)
				}
			}
			parent = client.ByID(self.GetObjectId())
		}
		var children []objectRow
		for o, err := range g.Children(ctx, &mxgatewayv1.BrowseChildrenRequest{Parent: parent}) {
			if err != nil {
				return c.fail(cmd.name, addr, err)
			}
			children = append(children, toObjectRow(o))
		}
		var attrs []attributeRow
		for _, a := range self.GetAttributes() {
			attrs = append(attrs, toAttributeRow(a))
		}
		if *asJSON {
			out := map[string]any{"children": nonNil(children), "attributes": nonNil(attrs)}
			if self != nil {
				out["path"], out["tag"] = self.GetContainedPath(), self.GetTagName()
			}
			writeJSON(c.stdout, out)
			return exitOK
		}
		tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
		if len(children) > 0 {
			fmt.Fprintln(tw, "NAME\tKIND\tTAG\tTEMPLATE\tCHILDREN")
			for _, o := range children {
				more := "-"
				if o.HasChildren {
					more = "yes"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", o.Name, kind(o), o.Tag, dash(o.Template), more)
			}
		}
		if len(attrs) > 0 {
			if len(children) > 0 {
				fmt.Fprintln(tw)
			}
			fmt.Fprintln(tw, "REFERENCE\tTYPE\tSECURITY\tFLAGS")
			for _, a := range attrs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", a.Reference, a.Type, a.Security, flags(a))
			}
		}
		tw.Flush()
		return exitOK
	}
	return cmd
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func treeCmd() *command {
	cmd := &command{name: "tree", summary: "print the Galaxy's tree", usage: "[PATH] [--depth N] [--json]",
		help: `Prints the tree below PATH (a browse path or a tag name), or the whole
Galaxy without PATH, depth first: one line per object, indented by level,
with its tag name when it differs from the browse name. --depth N stops N
levels down (0, the default, prints every level). Needs scope browse:read.

Examples:
  mxctl tree
  mxctl tree Plant --depth 1
  mxctl tree --json`}
	cmd.run = func(ctx context.Context, c *cli, args []string) int {
		var conn connFlags
		fs := c.flagSet(cmd, &conn)
		asJSON := fs.Bool("json", false, "print JSON")
		depth := fs.Uint("depth", 0, "levels to print (0: all)")
		pos, code, ok := c.parse(cmd, fs, args)
		if !ok {
			return code
		}
		if len(pos) > 1 {
			return c.fail(cmd.name, "", usageError("tree takes at most one PATH"))
		}
		cl, addr, err := c.dial(ctx, &conn)
		if err != nil {
			return c.fail(cmd.name, addr, err)
		}
		defer cl.Close()
		g := cl.Galaxy()
		var root *mxgatewayv1.ObjectSelector
		var rootID int32
		if len(pos) == 1 {
			self, err := selectPath(ctx, g, pos[0])
			if err != nil {
				return c.fail(cmd.name, addr, err)
			}
			rootID = self.GetObjectId()
			root = client.ByID(rootID)
		}
		level := map[int32]int{rootID: -1}
		var rows []objectRow
		for o, err := range g.Walk(ctx, &mxgatewayv1.DiscoverHierarchyRequest{Root: root, MaxDepth: uint32(*depth)}) {
			if err != nil {
				return c.fail(cmd.name, addr, err)
			}
			r := toObjectRow(o)
			r.Depth = level[o.GetParentObjectId()] + 1
			level[o.GetObjectId()] = r.Depth
			rows = append(rows, r)
		}
		if *asJSON {
			writeJSON(c.stdout, nonNil(rows))
			return exitOK
		}
		for _, r := range rows {
			line := strings.Repeat("  ", r.Depth) + r.Name
			if r.Tag != r.Name {
				line += " (" + r.Tag + ")"
			}
			if r.Area {
				line += " [area]"
			}
			fmt.Fprintln(c.stdout, line)
		}
		return exitOK
	}
	return cmd
}
