package browse

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
)

// Model is a Galaxy model in the one form every source delivers (the
// simulated runtime through FromModel, the Galaxy Repository through
// internal/galaxy/repository, the snapshot file as it is stored): the
// objects with their browse parent decided, and their attributes. Build
// turns it into a Snapshot; Snapshot.Model gives it back.
type Model struct {
	Name     string    `json:"name"`
	Deployed time.Time `json:"deployed"`
	Objects  []Object  `json:"objects"`
}

// Object is one area or automation object.
type Object struct {
	ID        int32  `json:"id"`
	Tag       string `json:"tag"`
	Contained string `json:"contained,omitempty"`
	// Parent is the browse parent's id: the container if any, else the
	// area (for an area, its parent area); 0 for a root. A parent not in
	// the model makes the object a root.
	Parent     int32       `json:"parent,omitempty"`
	Area       int32       `json:"area,omitempty"`
	Host       int32       `json:"host,omitempty"`
	IsArea     bool        `json:"is_area,omitempty"`
	Category   int32       `json:"category,omitempty"`
	Templates  []string    `json:"templates,omitempty"` // nearest first
	Attributes []Attribute `json:"attributes,omitempty"`
}

// Attribute is one attribute of an object. Hidden attributes ("_" names)
// are never in a Model.
type Attribute struct {
	Name        string                 `json:"name"`
	Type        mxgatewayv1.MxDataType `json:"type"`
	IsArray     bool                   `json:"is_array,omitempty"`
	ArrayLength uint32                 `json:"array_length,omitempty"`
	Security    int32                  `json:"security,omitempty"`
	Historized  bool                   `json:"historized,omitempty"`
	Alarm       bool                   `json:"alarm,omitempty"`
	Builtin     bool                   `json:"builtin,omitempty"`
	Primitive   string                 `json:"primitive,omitempty"`
	Locked      bool                   `json:"locked,omitempty"`
}

// Hidden reports whether an attribute name is hidden at run time (and so
// from browse): it starts with "_".
func Hidden(name string) bool { return strings.HasPrefix(name, "_") }

// Reference is the reference AddItem takes for attribute name of tag:
// "Tag.Attr", with "[]" for an array.
func Reference(tag, name string, isArray bool) string {
	ref := tag + "." + name
	if isArray {
		ref += "[]"
	}
	return ref
}

// Build makes the snapshot of m as deploy sequence seq from source src.
// Siblings are ordered areas first, then by case-insensitive browse name
// (then id); an object's attributes by case-insensitive name (then
// name), so that every source lists them alike. An object whose parent
// is missing, or that sits on a containment cycle, becomes a root.
func Build(m *Model, seq uint64, src mxgatewayv1.ModelSource, fresh mxgatewayv1.Freshness) *Snapshot {
	s := &Snapshot{byID: make(map[int32]*node, len(m.Objects)), byTag: make(map[string]*node, len(m.Objects)),
		byPath: make(map[string]*node, len(m.Objects))}
	attrCount := 0
	order := make([]*node, 0, len(m.Objects))
	parents := make([]int32, 0, len(m.Objects))
	for i := range m.Objects {
		o := &m.Objects[i]
		if _, dup := s.byID[o.ID]; dup {
			continue
		}
		parents = append(parents, o.Parent)
		n := &node{obj: &mxgatewayv1.GalaxyObject{ObjectId: o.ID, TagName: o.Tag, ContainedName: o.Contained,
			AreaObjectId: o.Area, HostObjectId: o.Host, IsArea: o.IsArea, CategoryId: o.Category,
			TemplateChain: slices.Clone(o.Templates)}}
		for _, t := range o.Templates {
			n.chain = append(n.chain, normTemplate(t))
		}
		for _, a := range o.Attributes {
			if Hidden(a.Name) {
				continue
			}
			attrCount++
			n.attrs = append(n.attrs, &mxgatewayv1.GalaxyAttribute{Name: a.Name, Reference: Reference(o.Tag, a.Name, a.IsArray),
				DataType: a.Type, IsArray: a.IsArray, ArrayLength: a.ArrayLength,
				Security: mxgatewayv1.SecurityClassification(a.Security), Historized: a.Historized, Alarm: a.Alarm,
				Builtin: a.Builtin, PrimitiveName: a.Primitive, Locked: a.Locked})
			if !a.Builtin {
				n.alarm = n.alarm || a.Alarm
				n.historized = n.historized || a.Historized
			}
		}
		slices.SortStableFunc(n.attrs, func(a, b *mxgatewayv1.GalaxyAttribute) int {
			return cmp.Or(cmp.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)), cmp.Compare(a.Name, b.Name))
		})
		s.byID[o.ID] = n
		s.byTag[strings.ToLower(o.Tag)] = n
		order = append(order, n)
	}
	for i, n := range order {
		if p := s.byID[parents[i]]; parents[i] != 0 && p != nil && p != n {
			n.parent = p
		}
	}
	// A cycle of parents reaches no root: cut it where it is met first.
	const onPath, done = 1, 2
	state := make(map[*node]int8, len(order))
	var path []*node
	for _, n := range order {
		path = path[:0]
		p := n
		for ; p != nil && state[p] == 0; p = p.parent {
			state[p] = onPath
			path = append(path, p)
		}
		if p != nil && state[p] == onPath {
			path[len(path)-1].parent = nil // the last before the loop closes
		}
		for _, q := range path {
			state[q] = done
		}
	}
	for _, n := range order {
		if n.parent == nil {
			s.roots = append(s.roots, n)
		} else {
			n.parent.children = append(n.parent.children, n)
			n.obj.ParentObjectId = n.parent.obj.ObjectId
		}
	}
	var walk func(list []*node, prefix string)
	walk = func(list []*node, prefix string) {
		sortNodes(list)
		for _, n := range list {
			n.obj.BrowseName = cmp.Or(n.obj.ContainedName, n.obj.TagName)
			n.obj.ContainedPath = prefix + n.obj.BrowseName
			if _, dup := s.byPath[strings.ToLower(n.obj.ContainedPath)]; !dup {
				s.byPath[strings.ToLower(n.obj.ContainedPath)] = n
			}
			walk(n.children, n.obj.ContainedPath+".")
		}
	}
	walk(s.roots, "")
	for _, n := range order {
		n.bare = proto.CloneOf(n.obj)
		n.bare.HasChildren = len(n.children) > 0
	}
	s.info = &mxgatewayv1.GalaxyInfo{Name: m.Name, LastDeployTime: timestamppb.New(m.Deployed), DeploySequence: seq,
		ObjectCount: uint32(len(s.byID)), AttributeCount: uint32(attrCount), Source: src, Freshness: fresh}
	return s
}

// Model returns the model s was built from (objects by id), as Build
// takes it and the snapshot file stores it.
func (s *Snapshot) Model() *Model {
	m := &Model{Name: s.info.GetName(), Deployed: s.info.GetLastDeployTime().AsTime(), Objects: make([]Object, 0, len(s.byID))}
	for _, n := range s.byID {
		o := Object{ID: n.obj.ObjectId, Tag: n.obj.TagName, Contained: n.obj.ContainedName, Area: n.obj.AreaObjectId,
			Host: n.obj.HostObjectId, IsArea: n.obj.IsArea, Category: n.obj.CategoryId, Templates: slices.Clone(n.obj.TemplateChain)}
		if n.parent != nil {
			o.Parent = n.parent.obj.ObjectId
		}
		for _, a := range n.attrs {
			o.Attributes = append(o.Attributes, Attribute{Name: a.Name, Type: a.DataType, IsArray: a.IsArray,
				ArrayLength: a.ArrayLength, Security: int32(a.Security), Historized: a.Historized, Alarm: a.Alarm,
				Builtin: a.Builtin, Primitive: a.PrimitiveName, Locked: a.Locked})
		}
		m.Objects = append(m.Objects, o)
	}
	slices.SortFunc(m.Objects, func(a, b Object) int { return cmp.Compare(a.ID, b.ID) })
	return m
}
