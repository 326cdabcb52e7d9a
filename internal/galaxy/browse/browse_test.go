package browse

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/internal/auth"
	"github.com/mxgateway/mxgateway/internal/backend/sim"
)

var deployed = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func demo(t *testing.T, seq uint64) *Snapshot {
	t.Helper()
	return FromModel(sim.DemoModel(), seq, deployed, mxgatewayv1.Freshness_FRESHNESS_LIVE)
}

func names(objs []*mxgatewayv1.GalaxyObject) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.GetBrowseName())
	}
	return out
}

func children(t *testing.T, s *Snapshot, v Viewer, parent *mxgatewayv1.ObjectSelector, q Query) *mxgatewayv1.BrowseChildrenResponse {
	t.Helper()
	r, err := s.Children(v, parent, q)
	if err != nil {
		t.Fatalf("Children(%v): %v", parent, err)
	}
	return r
}

func byPath(p string) *mxgatewayv1.ObjectSelector {
	return &mxgatewayv1.ObjectSelector{By: &mxgatewayv1.ObjectSelector_ContainedPath{ContainedPath: p}}
}

func byTag(tag string) *mxgatewayv1.ObjectSelector {
	return &mxgatewayv1.ObjectSelector{By: &mxgatewayv1.ObjectSelector_TagName{TagName: tag}}
}

func TestInfo(t *testing.T) {
	m := sim.DemoModel()
	s := FromModel(m, 3, deployed, mxgatewayv1.Freshness_FRESHNESS_LIVE)
	in := s.Info()
	if in.GetName() != m.Galaxy || in.GetDeploySequence() != 3 || !in.GetLastDeployTime().AsTime().Equal(deployed) ||
		in.GetSource() != mxgatewayv1.ModelSource_MODEL_SOURCE_SIMULATOR || in.GetFreshness() != mxgatewayv1.Freshness_FRESHNESS_LIVE {
		t.Fatalf("info %v", in)
	}
	if want := uint32(len(m.Objects) + len(m.Areas)); in.GetObjectCount() != want {
		t.Errorf("object count %d, want %d", in.GetObjectCount(), want)
	}
	visible := 0
	for i := range m.AttributeCount() {
		if _, a := m.AttributeAt(i); !a.Hidden() {
			visible++
		}
	}
	if in.GetAttributeCount() != uint32(visible) {
		t.Errorf("attribute count %d, want %d", in.GetAttributeCount(), visible)
	}
	if st := s.withFreshness(mxgatewayv1.Freshness_FRESHNESS_STALE); st.Info().GetFreshness() != mxgatewayv1.Freshness_FRESHNESS_STALE ||
		s.Info().GetFreshness() != mxgatewayv1.Freshness_FRESHNESS_LIVE {
		t.Error("withFreshness changed the original or not the copy")
	}
}

func TestTreeOrder(t *testing.T) {
	s := demo(t, 1)
	roots := children(t, s, Viewer{}, nil, Query{})
	if got := names(roots.GetChildren()); len(got) == 0 || got[0] != "Plant" || !roots.GetChildren()[0].GetIsArea() {
		t.Fatalf("roots %v: want the area Plant first", got)
	}
	plant := children(t, s, Viewer{}, byPath("plant"), Query{})
	got := names(plant.GetChildren())
	// Areas first, then objects, each by case-insensitive name.
	var areas, objs []string
	for _, o := range plant.GetChildren() {
		if o.GetIsArea() {
			if len(objs) > 0 {
				t.Fatalf("area %s after an object: %v", o.GetBrowseName(), got)
			}
			areas = append(areas, o.GetBrowseName())
		} else {
			objs = append(objs, o.GetBrowseName())
		}
		if o.GetParentObjectId() != roots.GetChildren()[0].GetObjectId() || !strings.HasPrefix(o.GetContainedPath(), "Plant.") {
			t.Errorf("%s: parent %d path %q", o.GetBrowseName(), o.GetParentObjectId(), o.GetContainedPath())
		}
	}
	less := func(a, b string) int { return strings.Compare(strings.ToLower(a), strings.ToLower(b)) }
	if !slices.IsSortedFunc(areas, less) || !slices.IsSortedFunc(objs, less) || len(areas) != 3 {
		t.Fatalf("Plant's children %v", got)
	}
	if plant.GetTotalCount() != uint32(len(got)) || plant.GetNextPageToken() != "" {
		t.Errorf("total %d token %q", plant.GetTotalCount(), plant.GetNextPageToken())
	}
	// A contained object browses under its contained name and its container.
	pack := children(t, s, Viewer{}, byPath("Plant.Packaging"), Query{})
	if i := slices.Index(names(pack.GetChildren()), "PackagingLine1"); i < 0 || pack.GetChildren()[i].GetTagName() != "Line1" {
		t.Errorf("Packaging children %v", names(pack.GetChildren()))
	}
}

func TestSelectors(t *testing.T) {
	s := demo(t, 1)
	tank, err := s.Object(Viewer{}, byTag("tank1"), false)
	if err != nil {
		t.Fatal(err)
	}
	id := tank.GetObject().GetObjectId()
	for _, sel := range []*mxgatewayv1.ObjectSelector{
		{By: &mxgatewayv1.ObjectSelector_ObjectId{ObjectId: id}},
		byTag("TANK1"),
		byPath("plant.TANKFARM.tank1"),
	} {
		r, err := s.Object(Viewer{}, sel, false)
		if err != nil || r.GetObject().GetObjectId() != id {
			t.Errorf("%v: %v %v", sel, r, err)
		}
	}
	for _, sel := range []*mxgatewayv1.ObjectSelector{
		{By: &mxgatewayv1.ObjectSelector_ObjectId{ObjectId: 99999}}, byTag("NoSuch"), byPath("Plant.NoSuch"),
	} {
		if _, err := s.Object(Viewer{}, sel, false); !errors.Is(err, ErrNotFound) {
			t.Errorf("%v: %v, want ErrNotFound", sel, err)
		}
		if _, err := s.Children(Viewer{}, sel, Query{}); !errors.Is(err, ErrNotFound) {
			t.Errorf("children of %v: %v, want ErrNotFound", sel, err)
		}
	}
	if _, err := s.Object(Viewer{}, &mxgatewayv1.ObjectSelector{}, false); !errors.Is(err, ErrInvalid) {
		t.Errorf("empty selector: %v", err)
	}
}

func TestAttributes(t *testing.T) {
	s := demo(t, 1)
	r, err := s.Object(Viewer{}, byTag("Line1"), false)
	if err != nil {
		t.Fatal(err)
	}
	attrs := map[string]*mxgatewayv1.GalaxyAttribute{}
	for _, a := range r.GetObject().GetAttributes() {
		attrs[a.GetName()] = a
	}
	rec := attrs["Recipe"]
	if rec.GetReference() != "Line1.Recipe[]" || !rec.GetIsArray() || rec.GetArrayLength() != 5 ||
		rec.GetDataType() != mxgatewayv1.MxDataType_MX_DATA_TYPE_STRING ||
		rec.GetSecurity() != mxgatewayv1.SecurityClassification_SECURITY_CLASSIFICATION_CONFIGURE {
		t.Errorf("Recipe %v", rec)
	}
	if b := attrs["BatchId"]; b.GetReference() != "Line1.BatchId" || b.GetIsArray() || b.GetArrayLength() != 0 {
		t.Errorf("BatchId %v", b)
	}
	for name := range attrs {
		if strings.HasPrefix(name, "_") {
			t.Errorf("hidden attribute %s listed", name)
		}
	}
	// The alarm extension's attributes are built-in: listed only on request.
	without, _ := s.Object(Viewer{}, byTag("Tank1"), false)
	with, _ := s.Object(Viewer{}, byTag("Tank1"), true)
	var builtin []string
	for _, a := range with.GetObject().GetAttributes() {
		if a.GetBuiltin() {
			builtin = append(builtin, a.GetName())
			if a.GetPrimitiveName() != sim.PrimitiveAlarmExtension {
				t.Errorf("%s: primitive %q", a.GetName(), a.GetPrimitiveName())
			}
		}
	}
	if !slices.Contains(builtin, "HighLevel.InAlarm") ||
		len(with.GetObject().GetAttributes()) != len(without.GetObject().GetAttributes())+len(builtin) {
		t.Errorf("built-in %v; %d with, %d without", builtin, len(with.GetObject().GetAttributes()), len(without.GetObject().GetAttributes()))
	}
	for _, a := range without.GetObject().GetAttributes() {
		if a.GetBuiltin() {
			t.Errorf("built-in %s listed without include_builtin", a.GetName())
		}
	}
}

// walkChildren follows next_page_token to the end.
func walkChildren(t *testing.T, s *Snapshot, v Viewer, parent *mxgatewayv1.ObjectSelector, q Query) []*mxgatewayv1.GalaxyObject {
	t.Helper()
	var all []*mxgatewayv1.GalaxyObject
	for pages := 0; ; pages++ {
		r := children(t, s, v, parent, q)
		if q.PageSize > 0 && len(r.GetChildren()) > int(q.PageSize) {
			t.Fatalf("page of %d, size %d", len(r.GetChildren()), q.PageSize)
		}
		all = append(all, r.GetChildren()...)
		if r.GetNextPageToken() == "" {
			if int(r.GetTotalCount()) != len(all) {
				t.Fatalf("total %d, walked %d", r.GetTotalCount(), len(all))
			}
			return all
		}
		q.PageToken = r.GetNextPageToken()
	}
}

func plant(t *testing.T, n int, seq uint64) *Snapshot {
	t.Helper()
	m, err := sim.PlantModel(n)
	if err != nil {
		t.Fatal(err)
	}
	return FromModel(m, seq, deployed, mxgatewayv1.Freshness_FRESHNESS_LIVE)
}

func TestPaging(t *testing.T) {
	s := plant(t, 3, 1)
	area := children(t, s, Viewer{}, nil, Query{}).GetChildren()[0]
	if !area.GetIsArea() {
		t.Fatalf("first root %v is not an area", area)
	}
	sel := &mxgatewayv1.ObjectSelector{By: &mxgatewayv1.ObjectSelector_ObjectId{ObjectId: area.GetObjectId()}}
	whole := children(t, s, Viewer{}, sel, Query{PageSize: MaxPageSize + 1}).GetChildren()
	for _, size := range []uint32{1, 3, 7} {
		paged := walkChildren(t, s, Viewer{}, sel, Query{PageSize: size})
		if !slices.Equal(names(paged), names(whole)) {
			t.Errorf("size %d: %v, want %v", size, names(paged), names(whole))
		}
	}
	// DiscoverHierarchy: paged walk equals one page; depth bounds it.
	all, err := s.Discover(Viewer{}, nil, 0, Query{PageSize: MaxPageSize})
	if err != nil {
		t.Fatal(err)
	}
	if int(all.GetTotalCount()) != int(s.Info().GetObjectCount()) || len(all.GetObjects()) != int(all.GetTotalCount()) {
		t.Fatalf("discover: %d of %d, %d objects", len(all.GetObjects()), all.GetTotalCount(), s.Info().GetObjectCount())
	}
	var walked []*mxgatewayv1.GalaxyObject
	q := Query{PageSize: 50}
	for {
		r, err := s.Discover(Viewer{}, nil, 0, q)
		if err != nil {
			t.Fatal(err)
		}
		walked = append(walked, r.GetObjects()...)
		if q.PageToken = r.GetNextPageToken(); q.PageToken == "" {
			break
		}
	}
	if !slices.Equal(names(walked), names(all.GetObjects())) {
		t.Error("paged discover differs from one page")
	}
	one, _ := s.Discover(Viewer{}, nil, 1, Query{})
	roots := children(t, s, Viewer{}, nil, Query{})
	if !slices.Equal(names(one.GetObjects()), names(roots.GetChildren())) {
		t.Errorf("depth 1: %v, want the roots %v", names(one.GetObjects()), names(roots.GetChildren()))
	}
	// Depth first: each object right after its parent's subtree began.
	seen := map[int32]bool{}
	for _, o := range all.GetObjects() {
		if p := o.GetParentObjectId(); p != 0 && !seen[p] {
			t.Fatalf("%s listed before its parent", o.GetContainedPath())
		}
		seen[o.GetObjectId()] = true
	}
}

func TestPageTokens(t *testing.T) {
	s := demo(t, 1)
	q := Query{PageSize: 2}
	first := children(t, s, Viewer{ID: "k1"}, byPath("Plant"), q)
	tok := first.GetNextPageToken()
	if tok == "" {
		t.Fatal("no next page")
	}
	// After a deploy the token is stale.
	s2 := demo(t, 2)
	if _, err := s2.Children(Viewer{ID: "k1"}, byPath("Plant"), Query{PageSize: 2, PageToken: tok}); !errors.Is(err, ErrStaleToken) {
		t.Errorf("after a deploy: %v, want ErrStaleToken", err)
	}
	// A source that restarted and reached the same sequence with another
	// deploy: stale too.
	again := FromModel(sim.DemoModel(), 1, deployed.Add(time.Second), mxgatewayv1.Freshness_FRESHNESS_LIVE)
	if _, err := again.Children(Viewer{ID: "k1"}, byPath("Plant"), Query{PageSize: 2, PageToken: tok}); !errors.Is(err, ErrStaleToken) {
		t.Errorf("same sequence, other deploy: %v, want ErrStaleToken", err)
	}
	// Bound to parent, filter, options and viewer.
	for name, tc := range map[string]struct {
		v      Viewer
		parent *mxgatewayv1.ObjectSelector
		q      Query
	}{
		"other parent": {Viewer{ID: "k1"}, byPath("Plant.TankFarm"), Query{}},
		"filter":       {Viewer{ID: "k1"}, byPath("Plant"), Query{Filter: &mxgatewayv1.BrowseFilter{TagNameGlob: "*"}}},
		"attributes":   {Viewer{ID: "k1"}, byPath("Plant"), Query{IncludeAttributes: true}},
		"other key":    {Viewer{ID: "k2"}, byPath("Plant"), Query{}},
	} {
		tc.q.PageToken = tok
		if _, err := s.Children(tc.v, tc.parent, tc.q); !errors.Is(err, ErrPageToken) {
			t.Errorf("%s: %v, want ErrPageToken", name, err)
		}
	}
	if _, err := s.Discover(Viewer{ID: "k1"}, byPath("Plant"), 1, Query{PageToken: tok}); !errors.Is(err, ErrPageToken) {
		t.Errorf("children token for discover: %v", err)
	}
	for _, bad := range []string{"x", "!!!", tok[:len(tok)-2], strings.Repeat("A", len(tok))} {
		if _, err := s.Children(Viewer{ID: "k1"}, byPath("Plant"), Query{PageToken: bad}); !errors.Is(err, ErrPageToken) {
			t.Errorf("token %q: %v, want ErrPageToken", bad, err)
		}
	}
	// The same request with the token goes on where the page ended.
	second := children(t, s, Viewer{ID: "k1"}, byPath("Plant"), Query{PageSize: 2, PageToken: tok})
	if len(second.GetChildren()) == 0 || second.GetChildren()[0].GetObjectId() == first.GetChildren()[0].GetObjectId() {
		t.Errorf("second page %v", names(second.GetChildren()))
	}
}

func TestFilters(t *testing.T) {
	s := demo(t, 1)
	discover := func(f *mxgatewayv1.BrowseFilter) []string {
		t.Helper()
		r, err := s.Discover(Viewer{}, nil, 0, Query{Filter: f})
		if err != nil {
			t.Fatal(err)
		}
		var tags []string
		for _, o := range r.GetObjects() {
			tags = append(tags, o.GetTagName())
		}
		slices.Sort(tags)
		return tags
	}
	for name, tc := range map[string]struct {
		f    *mxgatewayv1.BrowseFilter
		want []string
	}{
		"glob":        {&mxgatewayv1.BrowseFilter{TagNameGlob: "tank?"}, []string{"Tank1", "Tank2"}},
		"glob anchor": {&mxgatewayv1.BrowseFilter{TagNameGlob: "ank*"}, nil},
		"template":    {&mxgatewayv1.BrowseFilter{TemplateChainContains: []string{"gEquipment"}}, nil},
		"category":    {&mxgatewayv1.BrowseFilter{CategoryIds: []int32{sim.CategoryEngine}}, []string{"DemoEngine"}},
		"alarm":       {&mxgatewayv1.BrowseFilter{AlarmBearingOnly: true, TagNameGlob: "T*"}, []string{"TIC101", "Tank1", "Tank2"}},
	} {
		got := discover(tc.f)
		if name == "template" {
			// Every object derived from $gEquipment, and only those.
			for _, tag := range got {
				o, _ := s.Object(Viewer{}, byTag(tag), false)
				if !slices.Contains(o.GetObject().GetTemplateChain(), "$gEquipment") {
					t.Errorf("template: %s has chain %v", tag, o.GetObject().GetTemplateChain())
				}
			}
			if !slices.Contains(got, "Tank1") || !slices.Contains(got, "Pump1") || slices.Contains(got, "TIC101") {
				t.Errorf("template: %v", got)
			}
			continue
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", name, got, tc.want)
		}
	}
	// Historized only: every object listed has a historized attribute.
	for _, tag := range discover(&mxgatewayv1.BrowseFilter{HistorizedOnly: true}) {
		o, _ := s.Object(Viewer{}, byTag(tag), false)
		if !slices.ContainsFunc(o.GetObject().GetAttributes(), (*mxgatewayv1.GalaxyAttribute).GetHistorized) {
			t.Errorf("historized: %s has none", tag)
		}
	}
	// BrowseChildren keeps the areas that lead to a match.
	f := &mxgatewayv1.BrowseFilter{TagNameGlob: "TIC*"}
	if got := names(children(t, s, Viewer{}, nil, Query{Filter: f}).GetChildren()); !slices.Equal(got, []string{"Plant"}) {
		t.Errorf("filtered roots %v", got)
	}
	if got := names(children(t, s, Viewer{}, byPath("Plant"), Query{Filter: f}).GetChildren()); !slices.Equal(got, []string{"TankFarm"}) {
		t.Errorf("filtered Plant %v", got)
	}
	if _, err := s.Children(Viewer{}, nil, Query{Filter: &mxgatewayv1.BrowseFilter{TagNameGlob: "bad\\"}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad glob: %v", err)
	}
	if _, err := s.Children(Viewer{}, nil, Query{Filter: &mxgatewayv1.BrowseFilter{CategoryIds: make([]int32, maxFilterValues+1)}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("too many categories: %v", err)
	}
}

func TestReadConstraints(t *testing.T) {
	s := demo(t, 1)
	v := Viewer{ID: "k", Allow: func(ref string) bool { return auth.MatchPattern("Tank1.*", ref) }}
	if got := names(children(t, s, v, nil, Query{}).GetChildren()); !slices.Equal(got, []string{"Plant"}) {
		t.Errorf("roots %v", got)
	}
	if got := names(children(t, s, v, byPath("Plant"), Query{}).GetChildren()); !slices.Equal(got, []string{"TankFarm"}) {
		t.Errorf("Plant %v", got)
	}
	farm := children(t, s, v, byPath("Plant.TankFarm"), Query{IncludeAttributes: true, IncludeBuiltin: true})
	if got := names(farm.GetChildren()); !slices.Equal(got, []string{"Tank1"}) {
		t.Fatalf("TankFarm %v", got)
	}
	for _, a := range farm.GetChildren()[0].GetAttributes() {
		if !strings.HasPrefix(a.GetReference(), "Tank1.") {
			t.Errorf("attribute %s", a.GetReference())
		}
	}
	for _, tag := range []string{"Tank2", "TIC101", "Sim"} {
		if _, err := s.Object(v, byTag(tag), false); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: %v, want ErrNotFound", tag, err)
		}
	}
	all, err := s.Discover(v, nil, 0, Query{})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(all.GetObjects()); !slices.Equal(got, []string{"Plant", "TankFarm", "Tank1"}) {
		t.Errorf("discover %v", got)
	}
	// Only the attributes it may read.
	v = Viewer{ID: "k", Allow: func(ref string) bool { return auth.MatchPattern("Tank1.Level", ref) }}
	o, err := s.Object(v, byTag("Tank1"), true)
	if err != nil {
		t.Fatal(err)
	}
	if a := o.GetObject().GetAttributes(); len(a) != 1 || a[0].GetReference() != "Tank1.Level" {
		t.Errorf("attributes %v", a)
	}
}

func TestStore(t *testing.T) {
	var st Store
	if st.Load() != nil {
		t.Fatal("zero store holds a snapshot")
	}
	s := demo(t, 1)
	st.Set(s)
	if st.Load() != s {
		t.Fatal("Load after Set")
	}
}
