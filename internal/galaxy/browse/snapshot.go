package browse

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/internal/backend/sim"
)

// node is one object of the tree. Its fields are never changed once the
// snapshot is built.
type node struct {
	obj        *mxgatewayv1.GalaxyObject // without attributes and has_children
	bare       *mxgatewayv1.GalaxyObject // obj with has_children for an open query: shared by every response, never changed
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
	return Build(SimModel(m, deployed), seq, mxgatewayv1.ModelSource_MODEL_SOURCE_SIMULATOR, fresh)
}

// SimModel is the Model of a simulated Galaxy model deployed at deployed
// (see FromModel).
func SimModel(m *sim.Model, deployed time.Time) *Model {
	out := &Model{Name: m.Galaxy, Deployed: deployed, Objects: make([]Object, 0, len(m.Areas)+len(m.Objects))}
	areaID := map[string]int32{}
	next := int32(len(m.Objects))
	for _, o := range m.Objects {
		next = max(next, o.ID)
	}
	for _, a := range m.Areas {
		next++
		areaID[strings.ToLower(a.Name)] = next
	}
	for _, a := range m.Areas {
		o := Object{ID: areaID[strings.ToLower(a.Name)], Tag: a.Name, Contained: a.Name, IsArea: true, Category: sim.CategoryArea}
		if a.Parent != "" {
			o.Area = areaID[strings.ToLower(a.Parent)]
			o.Parent = o.Area
		}
		out.Objects = append(out.Objects, o)
	}
	objID := map[string]int32{}
	for _, o := range m.Objects {
		objID[strings.ToLower(o.Tag)] = o.ID
	}
	for _, o := range m.Objects {
		x := Object{ID: o.ID, Tag: o.Tag, Contained: o.Contained, Category: o.Category, Templates: slices.Clone(o.Templates),
			Area: areaID[strings.ToLower(o.Area)]}
		if len(x.Templates) == 0 && o.Template != "" {
			x.Templates = []string{o.Template}
		}
		x.Parent = x.Area
		if c := objID[strings.ToLower(o.ContainedBy)]; o.ContainedBy != "" && c != 0 && c != o.ID {
			x.Parent = c
		}
		if o.HostedBy != "" {
			x.Host = objID[strings.ToLower(o.HostedBy)]
		}
		for _, a := range o.Attributes {
			if a.Hidden() {
				continue
			}
			x.Attributes = append(x.Attributes, Attribute{Name: a.Name, Type: a.Type, IsArray: a.Dimension > 0,
				ArrayLength: uint32(max(a.Dimension, 0)), Security: int32(a.Security), Historized: a.Historized,
				Alarm: a.Alarm, Builtin: a.Primitive != "", Primitive: a.Primitive, Locked: a.Locked})
		}
		out.Objects = append(out.Objects, x)
	}
	return out
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

// withFreshness returns a copy of s (sharing its tree) marked f.
func (s *Snapshot) withFreshness(f mxgatewayv1.Freshness) *Snapshot {
	c := *s
	c.info = proto.CloneOf(s.info)
	c.info.Freshness = f
	return &c
}
