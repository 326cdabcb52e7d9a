package gateway

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
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

// galaxyWatchStream is the server side of one WatchGalaxy stream: what the
// handler sends goes to sent.
type galaxyWatchStream struct {
	grpc.ServerStream
	ctx  context.Context
	sent chan *mxgatewayv1.WatchGalaxyResponse
}

func (w *galaxyWatchStream) Context() context.Context { return w.ctx }
func (w *galaxyWatchStream) Send(c *mxgatewayv1.WatchGalaxyResponse) error {
	w.sent <- c
	return nil
}

// WatchGalaxy: UNAVAILABLE without a model; the current state first;
// a constrained key learns only the changed ids it may see; the gateway's
// stop ends the stream with SHUTTING_DOWN.
func TestGalaxyServiceWatch(t *testing.T) {
	var st browse.Store
	stop, stopping := context.WithCancel(context.Background())
	defer stopping()
	g := NewGalaxyService(&st, nil).StopWith(stop)
	err := g.WatchGalaxy(&mxgatewayv1.WatchGalaxyRequest{}, &galaxyWatchStream{ctx: context.Background()})
	wantStatus(t, err, codes.Unavailable, mxgatewayv1.ReasonGalaxyUnavailable)

	st.Set(browse.FromModel(sim.DemoModel(), 1, time.Now(), mxgatewayv1.Freshness_FRESHNESS_LIVE))
	c := auth.Constraints{AllowRead: []string{"Tank1.*"}}
	kctx := auth.NewContext(context.Background(), auth.NewPrincipal("k1", "reader", []auth.Scope{auth.ScopeBrowseRead}, c))
	ws := &galaxyWatchStream{ctx: kctx, sent: make(chan *mxgatewayv1.WatchGalaxyResponse, 4)}
	done := make(chan error, 1)
	go func() { done <- g.WatchGalaxy(&mxgatewayv1.WatchGalaxyRequest{}, ws) }()
	recv := func() *mxgatewayv1.WatchGalaxyResponse {
		t.Helper()
		select {
		case c := <-ws.sent:
			return c
		case err := <-done:
			t.Fatalf("stream ended: %v", err)
		case <-time.After(10 * time.Second):
			t.Fatal("nothing sent")
		}
		return nil
	}
	if first := recv(); first.GetSequence() != 1 || len(first.GetChangedObjectIds()) != 0 {
		t.Fatalf("first %v", first)
	}
	// A deploy that changes Tank1 and Tank2: the key sees Tank1's id only.
	m := sim.DemoModel()
	var tank1 int32
	for _, o := range m.Objects {
		if o.Tag == "Tank1" || o.Tag == "Tank2" {
			o.Attributes = o.Attributes[1:]
		}
		if o.Tag == "Tank1" {
			tank1 = o.ID
		}
	}
	st.Set(browse.FromModel(m, 2, time.Now(), mxgatewayv1.Freshness_FRESHNESS_LIVE))
	if ch := recv(); ch.GetSequence() != 2 || len(ch.GetChangedObjectIds()) != 1 || ch.GetChangedObjectIds()[0] != tank1 {
		t.Fatalf("change %v, want only Tank1 (%d)", ch, tank1)
	}
	stopping()
	select {
	case err := <-done:
		wantStatus(t, err, codes.Unavailable, mxgatewayv1.ReasonShuttingDown)
	case <-time.After(10 * time.Second):
		t.Fatal("the stream outlived the gateway's stop")
	}
}
