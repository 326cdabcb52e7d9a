package browse

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/internal/auth"
)

// Page sizes.
const (
	DefaultPageSize = 500
	MaxPageSize     = 5000
)

// Filter limits.
const (
	maxFilterValues = 64 // category ids, template names
	maxTemplateLen  = 329
)

// Errors. Each is wrapped with the details.
var (
	// ErrNotFound: a selector names no object the caller may see.
	ErrNotFound = errors.New("browse: no such object")
	// ErrInvalid: a malformed request (selector, filter).
	ErrInvalid = errors.New("browse: invalid request")
	// ErrPageToken: a token that is malformed or was made for another
	// request.
	ErrPageToken = errors.New("browse: page token invalid")
	// ErrStaleToken: a token made before the last deploy.
	ErrStaleToken = errors.New("browse: page token stale")
)

// Viewer is who browses: Allow reports whether they may read a reference
// (nil allows everything); ID names them in page tokens, so that a token
// made for one key is refused for another.
type Viewer struct {
	ID    string
	Allow func(ref string) bool
}

// Query is what BrowseChildren and DiscoverHierarchy share.
type Query struct {
	Filter            *mxgatewayv1.BrowseFilter
	PageSize          uint32
	PageToken         string
	IncludeAttributes bool
	IncludeBuiltin    bool
}

// query is a request being answered: the snapshot, the viewer and the
// filter compiled, with the per-node decisions memoised.
type query struct {
	s        *Snapshot
	v        Viewer
	f        *mxgatewayv1.BrowseFilter
	cats     []int32
	chain    []string
	glob     string
	open     bool // neither filter nor constraints: every node shown
	filtered bool // a filter condition is set
	shown    map[*node]bool
	permit   map[*node]bool
}

func (s *Snapshot) newQuery(v Viewer, f *mxgatewayv1.BrowseFilter) (*query, error) {
	q := &query{s: s, v: v, f: f, shown: map[*node]bool{}, permit: map[*node]bool{}}
	if f != nil {
		if len(f.GetCategoryIds()) > maxFilterValues || len(f.GetTemplateChainContains()) > maxFilterValues {
			return nil, fmt.Errorf("%w: more than %d category ids or templates in the filter", ErrInvalid, maxFilterValues)
		}
		q.cats = f.GetCategoryIds()
		for _, t := range f.GetTemplateChainContains() {
			if t == "" || len(t) > maxTemplateLen {
				return nil, fmt.Errorf("%w: template name empty or longer than %d bytes", ErrInvalid, maxTemplateLen)
			}
			q.chain = append(q.chain, normTemplate(t))
		}
		if g := f.GetTagNameGlob(); g != "" {
			if err := auth.ValidatePattern(g); err != nil {
				return nil, fmt.Errorf("%w: tag_name_glob: %v", ErrInvalid, err)
			}
			q.glob = g
		}
	}
	q.filtered = len(q.cats) > 0 || len(q.chain) > 0 || q.glob != "" || f.GetAlarmBearingOnly() || f.GetHistorizedOnly()
	q.open = v.Allow == nil && !q.filtered
	return q, nil
}

// permitted reports whether the viewer may see n itself: it may read one
// of its attributes, or its tag.
func (q *query) permitted(n *node) bool {
	if q.v.Allow == nil {
		return true
	}
	if p, ok := q.permit[n]; ok {
		return p
	}
	p := q.v.Allow(n.obj.TagName)
	for _, a := range n.attrs {
		if p {
			break
		}
		p = q.v.Allow(a.Reference)
	}
	q.permit[n] = p
	return p
}

// matches reports whether n passes the filter (not the constraints).
func (q *query) matches(n *node) bool {
	f := q.f
	switch {
	case len(q.cats) > 0 && !slices.Contains(q.cats, n.obj.CategoryId),
		f.GetAlarmBearingOnly() && !n.alarm,
		f.GetHistorizedOnly() && !n.historized,
		q.glob != "" && !auth.MatchPattern(q.glob, n.obj.TagName):
		return false
	}
	if len(q.chain) > 0 && !slices.ContainsFunc(q.chain, func(t string) bool { return slices.Contains(n.chain, t) }) {
		return false
	}
	return true
}

// selected reports whether n itself is listed by a walk: it passes the
// filter and the viewer may see it.
func (q *query) selected(n *node) bool { return q.open || (q.matches(n) && q.permitted(n)) }

// show reports whether n is listed in the tree: it is selected, or leads
// to a node that is.
func (q *query) show(n *node) bool {
	if q.open {
		return true
	}
	if v, ok := q.shown[n]; ok {
		return v
	}
	v := q.selected(n)
	for _, c := range n.children {
		if v {
			break
		}
		v = q.show(c)
	}
	q.shown[n] = v
	return v
}

func (q *query) visibleChildren(list []*node) []*node {
	if q.open {
		return list
	}
	var out []*node
	for _, n := range list {
		if q.show(n) {
			out = append(out, n)
		}
	}
	return out
}

// object renders n for the viewer.
func (q *query) object(n *node, attrs, builtin bool) *mxgatewayv1.GalaxyObject {
	if q.open && !attrs {
		return n.bare // the caller must not change it
	}
	o := proto.CloneOf(n.obj)
	o.HasChildren = slices.ContainsFunc(n.children, q.show)
	if attrs {
		for _, a := range n.attrs {
			if (builtin || !a.Builtin) && (q.v.Allow == nil || q.v.Allow(a.Reference)) {
				o.Attributes = append(o.Attributes, a)
			}
		}
	}
	return o
}

// find resolves a selector to a node the viewer may see.
func (q *query) find(sel *mxgatewayv1.ObjectSelector) (*node, error) {
	var n *node
	switch by := sel.GetBy().(type) {
	case *mxgatewayv1.ObjectSelector_ObjectId:
		n = q.s.byID[by.ObjectId]
	case *mxgatewayv1.ObjectSelector_TagName:
		n = q.s.byTag[strings.ToLower(by.TagName)]
	case *mxgatewayv1.ObjectSelector_ContainedPath:
		n = q.s.byPath[strings.ToLower(by.ContainedPath)]
	default:
		return nil, fmt.Errorf("%w: empty object selector", ErrInvalid)
	}
	// A node the viewer may not see is as unknown as a missing one.
	if n == nil || (q.v.Allow != nil && !q.showIgnoringFilter(n)) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, selectorString(sel))
	}
	return n, nil
}

// showIgnoringFilter reports whether the viewer may see n or a node below.
func (q *query) showIgnoringFilter(n *node) bool {
	if q.permitted(n) {
		return true
	}
	return slices.ContainsFunc(n.children, q.showIgnoringFilter)
}

func selectorString(sel *mxgatewayv1.ObjectSelector) string {
	switch by := sel.GetBy().(type) {
	case *mxgatewayv1.ObjectSelector_ObjectId:
		return fmt.Sprintf("object id %d", by.ObjectId)
	case *mxgatewayv1.ObjectSelector_TagName:
		return fmt.Sprintf("tag name %q", by.TagName)
	case *mxgatewayv1.ObjectSelector_ContainedPath:
		return fmt.Sprintf("contained path %q", by.ContainedPath)
	}
	return "no selector"
}

// Children answers BrowseChildren: one page of parent's children (the
// roots for nil) and the token of the next page.
func (s *Snapshot) Children(v Viewer, parent *mxgatewayv1.ObjectSelector, qr Query) (*mxgatewayv1.BrowseChildrenResponse, error) {
	q, err := s.newQuery(v, qr.Filter)
	if err != nil {
		return nil, err
	}
	list, pid := s.roots, int32(0)
	if parent != nil {
		n, err := q.find(parent)
		if err != nil {
			return nil, err
		}
		list, pid = n.children, n.obj.ObjectId
	}
	list = q.visibleChildren(list)
	bind := binding(v, "children", qr, pid, 0)
	from, size, err := s.page(qr, bind, len(list))
	if err != nil {
		return nil, err
	}
	out := &mxgatewayv1.BrowseChildrenResponse{DeploySequence: s.Sequence(), TotalCount: uint32(len(list))}
	end := min(from+size, len(list))
	for _, n := range list[from:end] {
		out.Children = append(out.Children, q.object(n, qr.IncludeAttributes, qr.IncludeBuiltin))
	}
	if end < len(list) {
		out.NextPageToken = s.token(bind, end)
	}
	return out, nil
}

// Discover answers DiscoverHierarchy: one page of the depth-first walk
// below root (the whole Galaxy for nil), maxDepth levels deep (0: all),
// listing the objects the filter selects (with no filter, every object
// the viewer may see or that leads to one).
func (s *Snapshot) Discover(v Viewer, root *mxgatewayv1.ObjectSelector, maxDepth uint32, qr Query) (*mxgatewayv1.DiscoverHierarchyResponse, error) {
	q, err := s.newQuery(v, qr.Filter)
	if err != nil {
		return nil, err
	}
	list, rid := s.roots, int32(0)
	if root != nil {
		n, err := q.find(root)
		if err != nil {
			return nil, err
		}
		list, rid = n.children, n.obj.ObjectId
	}
	var walk []*node
	var visit func(list []*node, depth uint32)
	visit = func(list []*node, depth uint32) {
		for _, n := range list {
			if !q.show(n) {
				continue
			}
			if !q.filtered || q.selected(n) {
				walk = append(walk, n)
			}
			if maxDepth == 0 || depth < maxDepth {
				visit(n.children, depth+1)
			}
		}
	}
	visit(list, 1)
	bind := binding(v, "discover", qr, rid, maxDepth)
	from, size, err := s.page(qr, bind, len(walk))
	if err != nil {
		return nil, err
	}
	out := &mxgatewayv1.DiscoverHierarchyResponse{DeploySequence: s.Sequence(), TotalCount: uint32(len(walk))}
	end := min(from+size, len(walk))
	for _, n := range walk[from:end] {
		out.Objects = append(out.Objects, q.object(n, qr.IncludeAttributes, qr.IncludeBuiltin))
	}
	if end < len(walk) {
		out.NextPageToken = s.token(bind, end)
	}
	return out, nil
}

// Object answers GetObject: the object with its attributes.
func (s *Snapshot) Object(v Viewer, sel *mxgatewayv1.ObjectSelector, builtin bool) (*mxgatewayv1.GetObjectResponse, error) {
	q, err := s.newQuery(v, nil)
	if err != nil {
		return nil, err
	}
	if sel == nil {
		return nil, fmt.Errorf("%w: object selector missing", ErrInvalid)
	}
	n, err := q.find(sel)
	if err != nil {
		return nil, err
	}
	return &mxgatewayv1.GetObjectResponse{Object: q.object(n, true, builtin), DeploySequence: s.Sequence()}, nil
}

// binding hashes what a page token is bound to besides the deploy
// sequence: the call, the viewer, the start node, the depth, the filter
// and the attribute options.
func binding(v Viewer, call string, qr Query, start int32, depth uint32) uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s\x00%s\x00%d\x00%d\x00%t\x00%t\x00", call, v.ID, start, depth, qr.IncludeAttributes, qr.IncludeBuiltin)
	if qr.Filter != nil {
		b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(qr.Filter)
		h.Write(b)
	}
	return h.Sum64()
}

// tokenLen is a token's size: version, deploy sequence, deploy time
// (a restarted source may reuse a sequence), binding, offset.
const (
	tokenVersion = 1
	tokenLen     = 1 + 8 + 8 + 8 + 4
)

func (s *Snapshot) token(bind uint64, offset int) string {
	b := make([]byte, 0, tokenLen)
	b = append(b, tokenVersion)
	b = binary.BigEndian.AppendUint64(b, s.Sequence())
	b = binary.BigEndian.AppendUint64(b, uint64(s.info.GetLastDeployTime().AsTime().UnixNano()))
	b = binary.BigEndian.AppendUint64(b, bind)
	b = binary.BigEndian.AppendUint32(b, uint32(offset))
	return base64.RawURLEncoding.EncodeToString(b)
}

// page decodes the request's token and size: the first index and the
// page size.
func (s *Snapshot) page(qr Query, bind uint64, total int) (from, size int, err error) {
	size = int(qr.PageSize)
	switch {
	case size == 0:
		size = DefaultPageSize
	case size > MaxPageSize:
		size = MaxPageSize
	}
	if qr.PageToken == "" {
		return 0, size, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(qr.PageToken)
	if err != nil || len(b) != tokenLen || b[0] != tokenVersion {
		return 0, 0, fmt.Errorf("%w: not a page token of this gateway", ErrPageToken)
	}
	seq, at := binary.BigEndian.Uint64(b[1:]), binary.BigEndian.Uint64(b[9:])
	if seq != s.Sequence() || at != uint64(s.info.GetLastDeployTime().AsTime().UnixNano()) {
		return 0, 0, fmt.Errorf("%w: made at deploy %d, the Galaxy is at deploy %d; start again", ErrStaleToken, seq, s.Sequence())
	}
	if binary.BigEndian.Uint64(b[17:]) != bind {
		return 0, 0, fmt.Errorf("%w: made for another request (parent, filter or options differ)", ErrPageToken)
	}
	from = int(binary.BigEndian.Uint32(b[25:]))
	if from <= 0 || from >= total {
		return 0, 0, fmt.Errorf("%w: offset out of range", ErrPageToken)
	}
	return from, size, nil
}
