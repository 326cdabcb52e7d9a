package client

import (
	"context"
	"errors"
	"iter"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	mxgatewayv1grpc "github.com/mxgateway/mxgateway/api/mxgateway/v1/mxgatewayv1grpc"
)

// Errors of the Galaxy service (Client.Galaxy).
var (
	// ErrObjectNotFound: the selector names no object the key may see.
	ErrObjectNotFound = errors.New("client: Galaxy object not found")
	// ErrPageTokenStale: the page token was made before the last deploy;
	// start the listing again.
	ErrPageTokenStale = errors.New("client: page token stale (the Galaxy was deployed since)")
)

// Galaxy browses the Galaxy's model (service mxgateway.v1.Galaxy,
// docs/browse.md): areas, objects and attributes, metadata only. Every
// method needs an API key with scope browse:read; a key with read
// constraints sees only what it may read. Get it from Client.Galaxy.
type Galaxy struct {
	c  *Client
	gc mxgatewayv1grpc.GalaxyClient
}

// Galaxy returns the browse client on the connection.
func (c *Client) Galaxy() *Galaxy {
	return &Galaxy{c: c, gc: mxgatewayv1grpc.NewGalaxyClient(c.conn)}
}

// ByPath selects an object by its browse path ("Plant.TankFarm.Tank1");
// "" selects nothing (nil: the roots).
func ByPath(path string) *mxgatewayv1.ObjectSelector {
	if path == "" {
		return nil
	}
	return &mxgatewayv1.ObjectSelector{By: &mxgatewayv1.ObjectSelector_ContainedPath{ContainedPath: path}}
}

// ByTag selects an object by its tag name.
func ByTag(tag string) *mxgatewayv1.ObjectSelector {
	return &mxgatewayv1.ObjectSelector{By: &mxgatewayv1.ObjectSelector_TagName{TagName: tag}}
}

// ByID selects an object by its id.
func ByID(id int32) *mxgatewayv1.ObjectSelector {
	return &mxgatewayv1.ObjectSelector{By: &mxgatewayv1.ObjectSelector_ObjectId{ObjectId: id}}
}

// Info describes the Galaxy: name, deploy sequence and time, counts,
// source and freshness.
func (g *Galaxy) Info(ctx context.Context) (*mxgatewayv1.GalaxyInfo, error) {
	if err := g.c.checkOpen(); err != nil {
		return nil, err
	}
	ctx, cancel := g.c.callCtx(ctx)
	defer cancel()
	r, err := g.gc.GetGalaxy(ctx, &mxgatewayv1.GetGalaxyRequest{})
	if err != nil {
		return nil, fromRPC(ctx, err)
	}
	return r.GetGalaxy(), nil
}

// Object returns one object with its attributes (built-in ones too when
// builtin is true).
func (g *Galaxy) Object(ctx context.Context, sel *mxgatewayv1.ObjectSelector, builtin bool) (*mxgatewayv1.GalaxyObject, error) {
	if err := g.c.checkOpen(); err != nil {
		return nil, err
	}
	ctx, cancel := g.c.callCtx(ctx)
	defer cancel()
	r, err := g.gc.GetObject(ctx, &mxgatewayv1.GetObjectRequest{Object: sel, IncludeBuiltin: builtin})
	if err != nil {
		return nil, fromRPC(ctx, err)
	}
	return r.GetObject(), nil
}

// ChildrenPage returns one page of BrowseChildren as the gateway answers it.
func (g *Galaxy) ChildrenPage(ctx context.Context, req *mxgatewayv1.BrowseChildrenRequest) (*mxgatewayv1.BrowseChildrenResponse, error) {
	if err := g.c.checkOpen(); err != nil {
		return nil, err
	}
	ctx, cancel := g.c.callCtx(ctx)
	defer cancel()
	r, err := g.gc.BrowseChildren(ctx, req)
	if err != nil {
		return nil, fromRPC(ctx, err)
	}
	return r, nil
}

// DiscoverPage returns one page of DiscoverHierarchy as the gateway answers
// it.
func (g *Galaxy) DiscoverPage(ctx context.Context, req *mxgatewayv1.DiscoverHierarchyRequest) (*mxgatewayv1.DiscoverHierarchyResponse, error) {
	if err := g.c.checkOpen(); err != nil {
		return nil, err
	}
	ctx, cancel := g.c.callCtx(ctx)
	defer cancel()
	r, err := g.gc.DiscoverHierarchy(ctx, req)
	if err != nil {
		return nil, fromRPC(ctx, err)
	}
	return r, nil
}

// Children yields every child that req selects (req.PageToken is where
// it starts), fetching the next page only when the loop gets there. An
// error ends the sequence; ErrPageTokenStale means the Galaxy was deployed
// during the walk. req is not changed.
func (g *Galaxy) Children(ctx context.Context, req *mxgatewayv1.BrowseChildrenRequest) iter.Seq2[*mxgatewayv1.GalaxyObject, error] {
	return func(yield func(*mxgatewayv1.GalaxyObject, error) bool) {
		r := &mxgatewayv1.BrowseChildrenRequest{Parent: req.GetParent(), PageSize: req.GetPageSize(),
			PageToken: req.GetPageToken(), Filter: req.GetFilter(), IncludeAttributes: req.GetIncludeAttributes(),
			IncludeBuiltin: req.GetIncludeBuiltin()}
		for {
			page, err := g.ChildrenPage(ctx, r)
			if err != nil {
				yield(nil, err)
				return
			}
			for _, o := range page.GetChildren() {
				if !yield(o, nil) {
					return
				}
			}
			if r.PageToken = page.GetNextPageToken(); r.PageToken == "" {
				return
			}
		}
	}
}

// Walk yields every object of the depth-first walk req describes (each
// object before its children), fetching pages as the loop gets there. Its
// errors are those of Children.
func (g *Galaxy) Walk(ctx context.Context, req *mxgatewayv1.DiscoverHierarchyRequest) iter.Seq2[*mxgatewayv1.GalaxyObject, error] {
	return func(yield func(*mxgatewayv1.GalaxyObject, error) bool) {
		r := &mxgatewayv1.DiscoverHierarchyRequest{Root: req.GetRoot(), MaxDepth: req.GetMaxDepth(),
			PageSize: req.GetPageSize(), PageToken: req.GetPageToken(), Filter: req.GetFilter(),
			IncludeAttributes: req.GetIncludeAttributes(), IncludeBuiltin: req.GetIncludeBuiltin()}
		for {
			page, err := g.DiscoverPage(ctx, r)
			if err != nil {
				yield(nil, err)
				return
			}
			for _, o := range page.GetObjects() {
				if !yield(o, nil) {
					return
				}
			}
			if r.PageToken = page.GetNextPageToken(); r.PageToken == "" {
				return
			}
		}
	}
}

// Watch yields the Galaxy's changes (WatchGalaxy): the current state
// first, then one change each time the model in force changes (a deploy,
// or the source going stale or coming back), sequence increasing by one
// per change. A change with Gap set follows changes the stream dropped
// because the loop was slow: browse again. The sequence ends when ctx
// ends (yielding nothing more) or the stream fails (yielding the error).
func (g *Galaxy) Watch(ctx context.Context) iter.Seq2[*mxgatewayv1.WatchGalaxyResponse, error] {
	return func(yield func(*mxgatewayv1.WatchGalaxyResponse, error) bool) {
		if err := g.c.checkOpen(); err != nil {
			yield(nil, err)
			return
		}
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		st, err := g.gc.WatchGalaxy(ctx, &mxgatewayv1.WatchGalaxyRequest{})
		if err != nil {
			if ctx.Err() == nil {
				yield(nil, fromRPC(ctx, err))
			}
			return
		}
		for {
			c, err := st.Recv()
			if err != nil {
				if ctx.Err() == nil {
					yield(nil, fromRPC(ctx, err))
				}
				return
			}
			if !yield(c, nil) {
				return
			}
		}
	}
}
