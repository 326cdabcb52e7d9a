package browse

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/internal/backend/sim"
)

// node is one object of the tree. Its fields are never changed once the
// snapshot is built.
type node struct {
	obj        *mxgatewayv1.GalaxyObject // without attributes and has_children
	attrs      []*mxgatewayv1.GalaxyAttribute
	parent     *node
	children   []*node  // areas first, then case-insensitive browse name
	chain      []string // lower-cased template chain, without "$"
	alarm      bool
	historized bool
}

// Snapshot is one immutable Galaxy model as browse serves it.
type Snapshot struct {
	info   *mxgatewayv1.GalaxyInfo
	roots  []*node
	byID   map[int32]*node
	byTag  map[string]*node // lower-cased tag name
	byPath map[string]*node // lower-cased contained path
}

// Info returns the Galaxy description. The caller must not change it.
func (s *Snapshot) Info() *mxgatewayv1.GalaxyInfo { return s.info }

// Sequence returns the deploy sequence.
func (s *Snapshot) Sequence() uint64 { return s.info.GetDeploySequence() }

// FromModel builds the snapshot of a simulated Galaxy model deployed as
// sequence seq at deployed. Objects keep their model ids; areas, which the
// model names only, get the ids after the last object's, in model order.
// The built-in Sim object is a root like any object without an area.
func FromModel(m *sim.Model, seq uint64, deployed time.Time, fresh mxgatewayv1.Freshness) *Snapshot {
	s := &Snapshot{byID: map[int32]*node{}, byTag: map[string]*node{}, byPath: map[string]*node{}}
	areas := map[string]*node{}
	next := int32(len(m.Objects))
	for _, o := range m.Objects {
		next = max(next, o.ID)
	}
	for _, a := range m.Areas {
		next++
		n := &node{obj: &mxgatewayv1.GalaxyObject{ObjectId: next, TagName: a.Name, ContainedName: a.Name,
			IsArea: true, CategoryId: sim.CategoryArea}}
		areas[strings.ToLower(a.Name)] = n
		s.add(n)
	}
	for _, a := range m.Areas {
		n := areas[strings.ToLower(a.Name)]
		if p := areas[strings.ToLower(a.Parent)]; a.Parent != "" && p != nil {
			n.parent = p
			n.obj.AreaObjectId = p.obj.ObjectId
		}
	}
	objs := map[string]*node{}
	attrCount := 0
	for _, o := range m.Objects {
		n := &node{obj: &mxgatewayv1.GalaxyObject{ObjectId: o.ID, TagName: o.Tag, ContainedName: o.Contained,
			CategoryId: o.Category, TemplateChain: slices.Clone(o.Templates)}}
		if len(n.obj.TemplateChain) == 0 && o.Template != "" {
			n.obj.TemplateChain = []string{o.Template}
		}
		for _, t := range n.obj.TemplateChain {
			n.chain = append(n.chain, normTemplate(t))
		}
		for _, a := range o.Attributes {
			if a.Hidden() {
				continue
			}
			attrCount++
			n.attrs = append(n.attrs, attribute(o.Tag, a))
			if a.Primitive == "" {
				n.alarm = n.alarm || a.Alarm
				n.historized = n.historized || a.Historized
			}
		}
		objs[strings.ToLower(o.Tag)] = n
		s.add(n)
	}
	for _, o := range m.Objects {
		n := objs[strings.ToLower(o.Tag)]
		if a := areas[strings.ToLower(o.Area)]; a != nil {
			n.obj.AreaObjectId = a.obj.ObjectId
			n.parent = a
		}
		if c := objs[strings.ToLower(o.ContainedBy)]; o.ContainedBy != "" && c != nil && c != n {
			n.parent = c
		}
		if h := objs[strings.ToLower(o.HostedBy)]; o.HostedBy != "" && h != nil {
			n.obj.HostObjectId = h.obj.ObjectId
		}
	}
	// Children lists, then paths from the roots down.
	for _, n := range s.byID {
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
	s.info = &mxgatewayv1.GalaxyInfo{Name: m.Galaxy, LastDeployTime: timestamppb.New(deployed), DeploySequence: seq,
		ObjectCount: uint32(len(s.byID)), AttributeCount: uint32(attrCount),
		Source: mxgatewayv1.ModelSource_MODEL_SOURCE_SIMULATOR, Freshness: fresh}
	return s
}

func (s *Snapshot) add(n *node) {
	s.byID[n.obj.ObjectId] = n
	s.byTag[strings.ToLower(n.obj.TagName)] = n
}

// sortNodes orders siblings: areas first, then by case-insensitive browse
// name, then by id so that the order is total.
func sortNodes(list []*node) {
	name := func(n *node) string { return strings.ToLower(cmp.Or(n.obj.ContainedName, n.obj.TagName)) }
	slices.SortFunc(list, func(a, b *node) int {
		if a.obj.IsArea != b.obj.IsArea {
			if a.obj.IsArea {
				return -1
			}
			return 1
		}
		return cmp.Or(strings.Compare(name(a), name(b)), cmp.Compare(a.obj.ObjectId, b.obj.ObjectId))
	})
}

func normTemplate(t string) string { return strings.ToLower(strings.TrimPrefix(t, "$")) }

// attribute describes a of the object tag.
func attribute(tag string, a *sim.Attribute) *mxgatewayv1.GalaxyAttribute {
	ref := tag + "." + a.Name
	if a.Dimension > 0 {
		ref += "[]"
	}
	return &mxgatewayv1.GalaxyAttribute{Name: a.Name, Reference: ref, DataType: a.Type, IsArray: a.Dimension > 0,
		ArrayLength: uint32(max(a.Dimension, 0)), Security: mxgatewayv1.SecurityClassification(a.Security),
		Historized: a.Historized, Alarm: a.Alarm, Builtin: a.Primitive != "", PrimitiveName: a.Primitive,
		Locked: a.Locked}
}

// withFreshness returns a copy of s (sharing its tree) marked f.
func (s *Snapshot) withFreshness(f mxgatewayv1.Freshness) *Snapshot {
	c := *s
	c.info = proto.CloneOf(s.info)
	c.info.Freshness = f
	return &c
}
