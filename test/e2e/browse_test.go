package e2e

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	mxgatewayv1grpc "github.com/mxgateway/mxgateway/api/mxgateway/v1/mxgatewayv1grpc"
	sdk "github.com/mxgateway/mxgateway/client"
	"github.com/mxgateway/mxgateway/internal/backend/sim"
	"github.com/mxgateway/mxgateway/internal/galaxy/browse"
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

// TestWatchGalaxy: through the Go SDK, WatchGalaxy sends the current
// state first, then one change per deploy with the next sequence; a key
// without browse:read is refused; gateway shutdown ends the stream with
// UNAVAILABLE (SHUTTING_DOWN) instead of holding the drain.
func TestWatchGalaxy(t *testing.T) {
	t.Parallel()
	dir := startRuntime(t)
	g := harness.Start(t, "--sim-galaxy="+dir)
	ctx := harness.Context(t, step)
	opts := []sdk.Option{sdk.WithAPIKey(g.AdminKey)}
	if g.CAFile != "" {
		opts = append(opts, sdk.WithCAFile(g.CAFile))
	}
	c, err := sdk.Dial(ctx, g.GRPCAddr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	changes := make(chan *mxgatewayv1.WatchGalaxyResponse, 8)
	ended := make(chan error, 1)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		for ch, err := range c.Galaxy().Watch(wctx) {
			if err != nil {
				ended <- err
				return
			}
			changes <- ch
		}
		ended <- nil
	}()
	recv := func() *mxgatewayv1.WatchGalaxyResponse {
		t.Helper()
		select {
		case ch := <-changes:
			return ch
		case err := <-ended:
			t.Fatalf("watch ended: %v", err)
		case <-ctx.Done():
			t.Fatal("no change in time")
		}
		return nil
	}
	first := recv()
	if first.GetSequence() == 0 || first.GetGalaxy().GetDeploySequence() == 0 || first.GetGap() || len(first.GetChangedObjectIds()) != 0 ||
		first.GetGalaxy().GetSource() != mxgatewayv1.ModelSource_MODEL_SOURCE_SIMULATOR {
		t.Fatalf("first message %v", first)
	}
	if err := galaxyAdmin(t, dir, "deploy"); err != nil {
		t.Fatal(err)
	}
	ch := recv()
	if ch.GetSequence() != first.GetSequence()+1 || ch.GetGalaxy().GetDeploySequence() <= first.GetGalaxy().GetDeploySequence() || ch.GetGap() {
		t.Fatalf("after a deploy %v, first %v", ch, first)
	}

	noBrowse := g.CreateKey(t, "no-browse-watch", []string{"session:open"}, nil, nil)
	nc, err := sdk.Dial(ctx, g.GRPCAddr, append(opts, sdk.WithAPIKey(noBrowse))...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	for _, err := range nc.Galaxy().Watch(ctx) {
		var ge *sdk.GatewayError
		if !errors.As(err, &ge) || ge.Code != codes.PermissionDenied || ge.Reason != mxgatewayv1.ReasonPermissionDenied {
			t.Fatalf("watch without browse:read: %v", err)
		}
		break
	}

	stopped := make(chan error, 1)
	go func() { stopped <- g.Stop() }()
	select {
	case err := <-ended:
		var ge *sdk.GatewayError
		if !errors.As(err, &ge) || ge.Code != codes.Unavailable || ge.Reason != mxgatewayv1.ReasonShuttingDown {
			t.Fatalf("watch at shutdown ended with %v", err)
		}
	case <-ctx.Done():
		t.Fatal("watch did not end at shutdown")
	}
	if err := <-stopped; err != nil {
		t.Fatalf("gateway stop: %v", err)
	}
}

// unreachableRepository is a Galaxy Repository connection string (SQL
// login) to a port where nothing listens.
const unreachableRepository = "server=127.0.0.1;port=1;database=ZB;user id=mxgw;password=none;dial timeout=2;connection timeout=2;encrypt=disable"

// TestBrowseRepositorySnapshotFile: a gateway configured for a Galaxy
// Repository it cannot reach and without a snapshot file has no model
// (UNAVAILABLE, GALAXY_UNAVAILABLE) but serves; restarted with a snapshot
// file in its data directory it serves that model, source SNAPSHOT and
// freshness STALE, tree and all.
func TestBrowseRepositorySnapshotFile(t *testing.T) {
	t.Parallel()
	g := harness.Start(t, "--galaxy-repository="+unreachableRepository, "--galaxy-poll=1h")
	gx := mxgatewayv1grpc.NewGalaxyClient(g.Conn())
	ctx := harness.Context(t, step)
	_, err := gx.GetGalaxy(ctx, &mxgatewayv1.GetGalaxyRequest{})
	wantCode(t, err, codes.Unavailable, mxgatewayv1.ReasonGalaxyUnavailable)
	if err := g.Stop(); err != nil {
		t.Fatal(err)
	}

	want := browse.FromModel(sim.DemoModel(), 7, time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC), mxgatewayv1.Freshness_FRESHNESS_LIVE)
	if err := browse.WriteFile(filepath.Join(g.DataDir, browse.SnapshotFileName), want); err != nil {
		t.Fatal(err)
	}
	g = g.Restart(t)
	gx = mxgatewayv1grpc.NewGalaxyClient(g.Conn())
	info, err := gx.GetGalaxy(ctx, &mxgatewayv1.GetGalaxyRequest{})
	if err != nil {
		t.Fatal(err)
	}
	in := info.GetGalaxy()
	if in.GetSource() != mxgatewayv1.ModelSource_MODEL_SOURCE_SNAPSHOT || in.GetFreshness() != mxgatewayv1.Freshness_FRESHNESS_STALE ||
		in.GetObjectCount() != want.Info().GetObjectCount() || !in.GetLastDeployTime().AsTime().Equal(want.Info().GetLastDeployTime().AsTime()) {
		t.Fatalf("GetGalaxy %v, want the file's model %v", in, want.Info())
	}
	roots, err := gx.BrowseChildren(ctx, &mxgatewayv1.BrowseChildrenRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if c := roots.GetChildren(); len(c) == 0 || c[0].GetContainedPath() != "Plant" {
		t.Fatalf("roots from the snapshot file %v", c)
	}
}
