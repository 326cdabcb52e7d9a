package gateway

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/internal/auth"
	"github.com/mxgateway/mxgateway/internal/backend/sim"
	"github.com/mxgateway/mxgateway/internal/galaxy/browse"
)

// The Galaxy service maps browse's errors to codes and reasons and applies
// the caller's read constraints.
func TestGalaxyServiceStatuses(t *testing.T) {
	var st browse.Store
	g := NewGalaxyService(&st, nil)
	ctx := context.Background()
	_, err := g.GetGalaxy(ctx, &mxgatewayv1.GetGalaxyRequest{})
	wantStatus(t, err, codes.Unavailable, mxgatewayv1.ReasonGalaxyUnavailable)

	st.Set(browse.FromModel(sim.DemoModel(), 1, time.Now(), mxgatewayv1.Freshness_FRESHNESS_LIVE))
	info, err := g.GetGalaxy(ctx, &mxgatewayv1.GetGalaxyRequest{})
	if err != nil || info.GetGalaxy().GetDeploySequence() != 1 {
		t.Fatalf("GetGalaxy: %v %v", info, err)
	}
	_, err = g.GetObject(ctx, &mxgatewayv1.GetObjectRequest{Object: &mxgatewayv1.ObjectSelector{
		By: &mxgatewayv1.ObjectSelector_TagName{TagName: "NoSuch"}}})
	wantStatus(t, err, codes.NotFound, mxgatewayv1.ReasonObjectNotFound)
	_, err = g.BrowseChildren(ctx, &mxgatewayv1.BrowseChildrenRequest{PageToken: "garbage"})
	wantStatus(t, err, codes.InvalidArgument, mxgatewayv1.ReasonPageTokenInvalid)
	_, err = g.DiscoverHierarchy(ctx, &mxgatewayv1.DiscoverHierarchyRequest{Filter: &mxgatewayv1.BrowseFilter{TagNameGlob: "x\\"}})
	wantStatus(t, err, codes.InvalidArgument, mxgatewayv1.ReasonInvalidRequest)

	page, err := g.BrowseChildren(ctx, &mxgatewayv1.BrowseChildrenRequest{PageSize: 1})
	if err != nil || page.GetNextPageToken() == "" {
		t.Fatalf("first page: %v %v", page, err)
	}
	st.Set(browse.FromModel(sim.DemoModel(), 2, time.Now(), mxgatewayv1.Freshness_FRESHNESS_LIVE))
	_, err = g.BrowseChildren(ctx, &mxgatewayv1.BrowseChildrenRequest{PageSize: 1, PageToken: page.GetNextPageToken()})
	wantStatus(t, err, codes.InvalidArgument, mxgatewayv1.ReasonPageTokenStale)

	// A constrained key sees only what it may read.
	c := auth.Constraints{AllowRead: []string{"Tank1.*"}}
	kctx := auth.NewContext(ctx, auth.NewPrincipal("k1", "reader", []auth.Scope{auth.ScopeBrowseRead}, c))
	_, err = g.GetObject(kctx, &mxgatewayv1.GetObjectRequest{Object: &mxgatewayv1.ObjectSelector{
		By: &mxgatewayv1.ObjectSelector_TagName{TagName: "Tank2"}}})
	wantStatus(t, err, codes.NotFound, mxgatewayv1.ReasonObjectNotFound)
	if _, err := g.GetObject(kctx, &mxgatewayv1.GetObjectRequest{Object: &mxgatewayv1.ObjectSelector{
		By: &mxgatewayv1.ObjectSelector_TagName{TagName: "Tank1"}}}); err != nil {
		t.Fatalf("Tank1: %v", err)
	}
}
