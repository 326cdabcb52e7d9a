package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	mxgatewayv1grpc "github.com/mxgateway/mxgateway/api/mxgateway/v1/mxgatewayv1grpc"
	"github.com/mxgateway/mxgateway/internal/testutil"
	"github.com/mxgateway/mxgateway/test/e2e/harness"
)

// TestBrowseDemoGalaxy: through the real gateway and its simulated Galaxy,
// BrowseChildren with no parent lists the demo Galaxy's root areas and
// next_page_token walks every page; after a deploy the old token is
// INVALID_ARGUMENT (PAGE_TOKEN_STALE); a constrained key sees only what it
// may read; a key without browse:read is refused.
func TestBrowseDemoGalaxy(t *testing.T) {
	t.Parallel()
	dir := startRuntime(t)
	g := harness.Start(t, "--sim-galaxy="+dir)
	gx := mxgatewayv1grpc.NewGalaxyClient(g.Conn())
	ctx := harness.Context(t, step)

	info, err := gx.GetGalaxy(ctx, &mxgatewayv1.GetGalaxyRequest{})
	if err != nil {
		t.Fatal(err)
	}
	in := info.GetGalaxy()
	if in.GetSource() != mxgatewayv1.ModelSource_MODEL_SOURCE_SIMULATOR || in.GetFreshness() != mxgatewayv1.Freshness_FRESHNESS_LIVE ||
		in.GetObjectCount() == 0 || in.GetAttributeCount() == 0 || in.GetDeploySequence() == 0 {
		t.Fatalf("GetGalaxy %v", in)
	}

	roots, err := gx.BrowseChildren(ctx, &mxgatewayv1.BrowseChildrenRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if c := roots.GetChildren(); len(c) == 0 || c[0].GetBrowseName() != "Plant" || !c[0].GetIsArea() {
		t.Fatalf("roots %v: want the area Plant first", roots.GetChildren())
	}

	// Every page of the whole Galaxy, one object a page, equals one page.
	walk := func(req *mxgatewayv1.DiscoverHierarchyRequest) ([]string, string) {
		t.Helper()
		var paths []string
		var first string
		for {
			r, err := gx.DiscoverHierarchy(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range r.GetObjects() {
				paths = append(paths, o.GetContainedPath())
			}
			if first == "" {
				first = r.GetNextPageToken()
			}
			if req.PageToken = r.GetNextPageToken(); req.PageToken == "" {
				if int(r.GetTotalCount()) != len(paths) {
					t.Fatalf("total %d, walked %d", r.GetTotalCount(), len(paths))
				}
				return paths, first
			}
		}
	}
	whole, _ := walk(&mxgatewayv1.DiscoverHierarchyRequest{})
	paged, _ := walk(&mxgatewayv1.DiscoverHierarchyRequest{PageSize: 3})
	if !slices.Equal(whole, paged) || len(whole) != int(in.GetObjectCount()) {
		t.Fatalf("paged walk %d objects, one page %d, Galaxy %d", len(paged), len(whole), in.GetObjectCount())
	}
	var children []string
	req := &mxgatewayv1.BrowseChildrenRequest{PageSize: 1, Parent: &mxgatewayv1.ObjectSelector{
		By: &mxgatewayv1.ObjectSelector_ContainedPath{ContainedPath: "Plant"}}}
	var stale string
	for {
		r, err := gx.BrowseChildren(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range r.GetChildren() {
			children = append(children, o.GetBrowseName())
		}
		if stale == "" {
			stale = r.GetNextPageToken()
		}
		if req.PageToken = r.GetNextPageToken(); req.PageToken == "" {
			break
		}
	}
	if len(children) < 4 || !slices.Contains(children, "TankFarm") {
		t.Fatalf("Plant's children %v", children)
	}

	// The attributes carry the references AddItem takes.
	obj, err := gx.GetObject(ctx, &mxgatewayv1.GetObjectRequest{Object: &mxgatewayv1.ObjectSelector{
		By: &mxgatewayv1.ObjectSelector_TagName{TagName: "Line1"}}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(obj.GetObject().GetAttributes(), func(a *mxgatewayv1.GalaxyAttribute) bool {
		return a.GetReference() == "Line1.Recipe[]" && a.GetArrayLength() == 5
	}) {
		t.Errorf("Line1 attributes %v", obj.GetObject().GetAttributes())
	}
	_, err = gx.GetObject(ctx, &mxgatewayv1.GetObjectRequest{Object: &mxgatewayv1.ObjectSelector{
		By: &mxgatewayv1.ObjectSelector_TagName{TagName: "NoSuchTag"}}})
	wantCode(t, err, codes.NotFound, mxgatewayv1.ReasonObjectNotFound)

	// A deploy makes the token stale.
	if err := galaxyAdmin(t, dir, "deploy"); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, step, func() error {
		r, err := gx.GetGalaxy(ctx, &mxgatewayv1.GetGalaxyRequest{})
		if err != nil {
			return err
		}
		if r.GetGalaxy().GetDeploySequence() <= in.GetDeploySequence() {
			return fmt.Errorf("deploy sequence still %d", r.GetGalaxy().GetDeploySequence())
		}
		return nil
	})
	req.PageToken = stale
	_, err = gx.BrowseChildren(ctx, req)
	wantCode(t, err, codes.InvalidArgument, mxgatewayv1.ReasonPageTokenStale)

	// A constrained key sees only what it may read.
	key := g.CreateKey(t, "tank1-reader", []string{"browse:read"}, []string{"Tank1.*"}, nil)
	kx := mxgatewayv1grpc.NewGalaxyClient(g.Dial(t, key))
	seen, _ := func() ([]string, string) {
		r, err := kx.DiscoverHierarchy(ctx, &mxgatewayv1.DiscoverHierarchyRequest{IncludeAttributes: true, IncludeBuiltin: true})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, o := range r.GetObjects() {
			out = append(out, o.GetContainedPath())
			for _, a := range o.GetAttributes() {
				if !strings.HasPrefix(a.GetReference(), "Tank1.") {
					t.Errorf("constrained key sees %s", a.GetReference())
				}
			}
		}
		return out, ""
	}()
	if want := []string{"Plant", "Plant.TankFarm", "Plant.TankFarm.Tank1"}; !slices.Equal(seen, want) {
		t.Errorf("constrained key sees %v, want %v", seen, want)
	}
	_, err = kx.GetObject(ctx, &mxgatewayv1.GetObjectRequest{Object: &mxgatewayv1.ObjectSelector{
		By: &mxgatewayv1.ObjectSelector_TagName{TagName: "Tank2"}}})
	wantCode(t, err, codes.NotFound, mxgatewayv1.ReasonObjectNotFound)

	// browse:read is needed.
	noBrowse := mxgatewayv1grpc.NewGalaxyClient(g.Dial(t, g.CreateKey(t, "no-browse", []string{"session:open"}, nil, nil)))
	_, err = noBrowse.GetGalaxy(ctx, &mxgatewayv1.GetGalaxyRequest{})
	wantCode(t, err, codes.PermissionDenied, mxgatewayv1.ReasonPermissionDenied)
}
