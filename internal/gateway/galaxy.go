package gateway

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/grpc"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	mxgatewayv1grpc "github.com/mxgateway/mxgateway/api/mxgateway/v1/mxgatewayv1grpc"
	"github.com/mxgateway/mxgateway/internal/auth"
	"github.com/mxgateway/mxgateway/internal/galaxy/browse"
)

// GalaxyService is the Galaxy gRPC service (browse): it answers from the
// snapshot in force in its store, applying the caller's read constraints.
// Register it with mxgatewayv1grpc.RegisterGalaxyServer.
type GalaxyService struct {
	mxgatewayv1grpc.UnimplementedGalaxyServer
	store *browse.Store
	log   *slog.Logger
	stop  context.Context // ends WatchGalaxy streams (gateway shutdown)
}

// MaxChangedIDs bounds WatchGalaxyResponse.changed_object_ids; past it the
// change says changed_truncated.
const MaxChangedIDs = 10000

// ErrGalaxyUnavailable is returned while the gateway has no Galaxy model
// (no source on this gateway, or none read yet).
var ErrGalaxyUnavailable = errors.New("no Galaxy model on this gateway (yet)")

// NewGalaxyService serves browse from st. A store without a snapshot
// answers UNAVAILABLE. Its errors become statuses through the gateway's
// one error table; log gets what that table cannot map.
func NewGalaxyService(st *browse.Store, log *slog.Logger) *GalaxyService {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &GalaxyService{store: st, log: log, stop: context.Background()}
}

// StopWith makes WatchGalaxy streams end with UNAVAILABLE (SHUTTING_DOWN)
// when ctx ends (Server.Stopping). It returns g.
func (g *GalaxyService) StopWith(ctx context.Context) *GalaxyService {
	g.stop = ctx
	return g
}

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
		return nil, ErrGalaxyUnavailable
	}
	return s, nil
}

// GetGalaxy implements mxgatewayv1grpc.GalaxyServer.
func (g *GalaxyService) GetGalaxy(ctx context.Context, _ *mxgatewayv1.GetGalaxyRequest) (*mxgatewayv1.GetGalaxyResponse, error) {
	s, err := g.snapshot()
	if err != nil {
		return nil, toStatus(g.log, "GetGalaxy", err)
	}
	return &mxgatewayv1.GetGalaxyResponse{Galaxy: s.Info()}, nil
}

// BrowseChildren implements mxgatewayv1grpc.GalaxyServer.
func (g *GalaxyService) BrowseChildren(ctx context.Context, req *mxgatewayv1.BrowseChildrenRequest) (*mxgatewayv1.BrowseChildrenResponse, error) {
	s, err := g.snapshot()
	if err != nil {
		return nil, toStatus(g.log, "BrowseChildren", err)
	}
	r, err := s.Children(viewer(ctx), req.GetParent(), browse.Query{Filter: req.GetFilter(), PageSize: req.GetPageSize(),
		PageToken: req.GetPageToken(), IncludeAttributes: req.GetIncludeAttributes(), IncludeBuiltin: req.GetIncludeBuiltin()})
	if err != nil {
		return nil, toStatus(g.log, "BrowseChildren", err)
	}
	return r, nil
}

// GetObject implements mxgatewayv1grpc.GalaxyServer.
func (g *GalaxyService) GetObject(ctx context.Context, req *mxgatewayv1.GetObjectRequest) (*mxgatewayv1.GetObjectResponse, error) {
	s, err := g.snapshot()
	if err != nil {
		return nil, toStatus(g.log, "GetObject", err)
	}
	r, err := s.Object(viewer(ctx), req.GetObject(), req.GetIncludeBuiltin())
	if err != nil {
		return nil, toStatus(g.log, "GetObject", err)
	}
	return r, nil
}

// DiscoverHierarchy implements mxgatewayv1grpc.GalaxyServer.
func (g *GalaxyService) DiscoverHierarchy(ctx context.Context, req *mxgatewayv1.DiscoverHierarchyRequest) (*mxgatewayv1.DiscoverHierarchyResponse, error) {
	s, err := g.snapshot()
	if err != nil {
		return nil, toStatus(g.log, "DiscoverHierarchy", err)
	}
	r, err := s.Discover(viewer(ctx), req.GetRoot(), req.GetMaxDepth(), browse.Query{Filter: req.GetFilter(),
		PageSize: req.GetPageSize(), PageToken: req.GetPageToken(), IncludeAttributes: req.GetIncludeAttributes(),
		IncludeBuiltin: req.GetIncludeBuiltin()})
	if err != nil {
		return nil, toStatus(g.log, "DiscoverHierarchy", err)
	}
	return r, nil
}

// WatchGalaxy implements mxgatewayv1.GalaxyServer: the current state,
// then every change of the model in force, until the client goes or the
// gateway shuts down.
func (g *GalaxyService) WatchGalaxy(_ *mxgatewayv1.WatchGalaxyRequest, stream grpc.ServerStreamingServer[mxgatewayv1.WatchGalaxyResponse]) error {
	w, err := g.store.Watch()
	if errors.Is(err, browse.ErrNoModel) {
		err = ErrGalaxyUnavailable
	}
	if err != nil {
		return toStatus(g.log, "WatchGalaxy", err)
	}
	defer w.Close()
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	stopped := context.AfterFunc(g.stop, cancel)
	defer stopped()
	v := viewer(stream.Context())
	for {
		c, err := w.Next(ctx)
		if err != nil {
			if g.stop.Err() != nil && stream.Context().Err() == nil {
				err = ErrShuttingDown
			}
			return toStatus(g.log, "WatchGalaxy", err)
		}
		msg := &mxgatewayv1.WatchGalaxyResponse{Sequence: c.Seq, Galaxy: c.Info, Gap: c.Gap}
		if len(c.Changed) > 0 {
			if s := g.store.Load(); s != nil {
				msg.ChangedObjectIds = s.VisibleIDs(v, c.Changed)
			}
			if len(msg.ChangedObjectIds) > MaxChangedIDs {
				msg.ChangedObjectIds, msg.ChangedTruncated = msg.ChangedObjectIds[:MaxChangedIDs], true
			}
		}
		if err := stream.Send(msg); err != nil {
			return err
		}
	}
}
