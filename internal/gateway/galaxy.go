package gateway

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/internal/auth"
	"github.com/mxgateway/mxgateway/internal/galaxy/browse"
)

// GalaxyService is the Galaxy gRPC service (browse): it answers from the
// snapshot in force in its store, applying the caller's read constraints.
// Register it with mxgatewayv1.RegisterGalaxyServer.
type GalaxyService struct {
	mxgatewayv1.UnimplementedGalaxyServer
	store *browse.Store
}

// NewGalaxyService serves browse from st. A store without a snapshot
// (no source on this gateway, or none read yet) answers UNAVAILABLE.
func NewGalaxyService(st *browse.Store) *GalaxyService { return &GalaxyService{store: st} }

// viewer is the caller as browse sees it: its key id, and its read
// constraints when it has any.
func viewer(ctx context.Context) browse.Viewer {
	p, _ := auth.FromContext(ctx)
	v := browse.Viewer{}
	if p != nil {
		v.ID = p.KeyID
		if p.HasReadConstraints() {
			v.Allow = p.AllowRead
		}
	}
	return v
}

func (g *GalaxyService) snapshot() (*browse.Snapshot, error) {
	s := g.store.Load()
	if s == nil {
		return nil, withDetails(codes.Unavailable, "no Galaxy model on this gateway (yet)", mxgatewayv1.ReasonGalaxyUnavailable)
	}
	return s, nil
}

// browseStatus maps a browse error to its status and reason.
func browseStatus(err error) error {
	switch {
	case errors.Is(err, browse.ErrNotFound):
		return withDetails(codes.NotFound, err.Error(), mxgatewayv1.ReasonObjectNotFound)
	case errors.Is(err, browse.ErrStaleToken):
		return withDetails(codes.InvalidArgument, err.Error(), mxgatewayv1.ReasonPageTokenStale)
	case errors.Is(err, browse.ErrPageToken):
		return withDetails(codes.InvalidArgument, err.Error(), mxgatewayv1.ReasonPageTokenInvalid)
	case errors.Is(err, browse.ErrInvalid):
		return withDetails(codes.InvalidArgument, err.Error(), mxgatewayv1.ReasonInvalidRequest)
	}
	return withDetails(codes.Internal, "internal error", mxgatewayv1.ReasonInternal)
}

// GetGalaxy implements mxgatewayv1.GalaxyServer.
func (g *GalaxyService) GetGalaxy(ctx context.Context, _ *mxgatewayv1.GetGalaxyRequest) (*mxgatewayv1.GetGalaxyResponse, error) {
	s, err := g.snapshot()
	if err != nil {
		return nil, err
	}
	return &mxgatewayv1.GetGalaxyResponse{Galaxy: s.Info()}, nil
}

// BrowseChildren implements mxgatewayv1.GalaxyServer.
func (g *GalaxyService) BrowseChildren(ctx context.Context, req *mxgatewayv1.BrowseChildrenRequest) (*mxgatewayv1.BrowseChildrenResponse, error) {
	s, err := g.snapshot()
	if err != nil {
		return nil, err
	}
	r, err := s.Children(viewer(ctx), req.GetParent(), browse.Query{Filter: req.GetFilter(), PageSize: req.GetPageSize(),
		PageToken: req.GetPageToken(), IncludeAttributes: req.GetIncludeAttributes(), IncludeBuiltin: req.GetIncludeBuiltin()})
	if err != nil {
		return nil, browseStatus(err)
	}
	return r, nil
}

// GetObject implements mxgatewayv1.GalaxyServer.
func (g *GalaxyService) GetObject(ctx context.Context, req *mxgatewayv1.GetObjectRequest) (*mxgatewayv1.GetObjectResponse, error) {
	s, err := g.snapshot()
	if err != nil {
		return nil, err
	}
	r, err := s.Object(viewer(ctx), req.GetObject(), req.GetIncludeBuiltin())
	if err != nil {
		return nil, browseStatus(err)
	}
	return r, nil
}

// DiscoverHierarchy implements mxgatewayv1.GalaxyServer.
func (g *GalaxyService) DiscoverHierarchy(ctx context.Context, req *mxgatewayv1.DiscoverHierarchyRequest) (*mxgatewayv1.DiscoverHierarchyResponse, error) {
	s, err := g.snapshot()
	if err != nil {
		return nil, err
	}
	r, err := s.Discover(viewer(ctx), req.GetRoot(), req.GetMaxDepth(), browse.Query{Filter: req.GetFilter(),
		PageSize: req.GetPageSize(), PageToken: req.GetPageToken(), IncludeAttributes: req.GetIncludeAttributes(),
		IncludeBuiltin: req.GetIncludeBuiltin()})
	if err != nil {
		return nil, browseStatus(err)
	}
	return r, nil
}
