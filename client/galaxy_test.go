package client

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	mxgatewayv1grpc "github.com/mxgateway/mxgateway/api/mxgateway/v1/mxgatewayv1grpc"
)

// fakeGalaxy pages n objects, pageSize a page; the token is the next
// index, and a token starting with "stale" is refused as stale.
type fakeGalaxy struct {
	mxgatewayv1grpc.UnimplementedGalaxyServer
	n int

	mu    sync.Mutex
	calls int
}

func (f *fakeGalaxy) page(token string, size uint32) ([]*mxgatewayv1.GalaxyObject, string, error) {
	f.mu.Lock()
	f.calls++
	f.mu.Unlock()
	if token == "stale" {
		st, _ := status.New(codes.InvalidArgument, "stale").WithDetails(&errdetails.ErrorInfo{
			Reason: mxgatewayv1.ReasonPageTokenStale, Domain: mxgatewayv1.ErrorDomain})
		return nil, "", st.Err()
	}
	from, _ := strconv.Atoi(token)
	end := min(from+int(size), f.n)
	var out []*mxgatewayv1.GalaxyObject
	for i := from; i < end; i++ {
		out = append(out, &mxgatewayv1.GalaxyObject{ObjectId: int32(i + 1)})
	}
	next := ""
	if end < f.n {
		next = strconv.Itoa(end)
	}
	return out, next, nil
}

func (f *fakeGalaxy) BrowseChildren(_ context.Context, r *mxgatewayv1.BrowseChildrenRequest) (*mxgatewayv1.BrowseChildrenResponse, error) {
	objs, next, err := f.page(r.GetPageToken(), r.GetPageSize())
	return &mxgatewayv1.BrowseChildrenResponse{Children: objs, NextPageToken: next}, err
}

func (f *fakeGalaxy) DiscoverHierarchy(_ context.Context, r *mxgatewayv1.DiscoverHierarchyRequest) (*mxgatewayv1.DiscoverHierarchyResponse, error) {
	objs, next, err := f.page(r.GetPageToken(), r.GetPageSize())
	return &mxgatewayv1.DiscoverHierarchyResponse{Objects: objs, NextPageToken: next}, err
}

func (f *fakeGalaxy) GetObject(_ context.Context, r *mxgatewayv1.GetObjectRequest) (*mxgatewayv1.GetObjectResponse, error) {
	st, _ := status.New(codes.NotFound, "no such object").WithDetails(&errdetails.ErrorInfo{
		Reason: mxgatewayv1.ReasonObjectNotFound, Domain: mxgatewayv1.ErrorDomain})
	return nil, st.Err()
}

func (f *fakeGalaxy) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func dialGalaxy(t *testing.T, f *fakeGalaxy) *Client {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	mxgatewayv1grpc.RegisterGalaxyServer(srv, f)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(lis) }()
	t.Cleanup(func() { srv.Stop(); <-done })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// The walkers page by themselves, fetch a page only when the loop gets
// there, and end on a typed error.
func TestGalaxyWalkers(t *testing.T) {
	f := &fakeGalaxy{n: 10}
	g := dialGalaxy(t, f).Galaxy()
	ctx := testCtx(t)
	var ids []int32
	for o, err := range g.Children(ctx, &mxgatewayv1.BrowseChildrenRequest{PageSize: 3}) {
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, o.GetObjectId())
	}
	if len(ids) != 10 || ids[9] != 10 || f.callCount() != 4 {
		t.Fatalf("children %v in %d calls, want 1..10 in 4", ids, f.callCount())
	}
	before := f.callCount()
	n := 0
	for _, err := range g.Walk(ctx, &mxgatewayv1.DiscoverHierarchyRequest{PageSize: 3}) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 4 {
			break
		}
	}
	if got := f.callCount() - before; got != 2 {
		t.Errorf("4 objects of a walk took %d pages, want 2", got)
	}
	var last error
	for _, err := range g.Walk(ctx, &mxgatewayv1.DiscoverHierarchyRequest{PageToken: "stale"}) {
		last = err
	}
	if !errors.Is(last, ErrPageTokenStale) {
		t.Errorf("stale token: %v, want ErrPageTokenStale", last)
	}
	if _, err := g.Object(ctx, ByTag("Nope"), false); !errors.Is(err, ErrObjectNotFound) {
		t.Errorf("Object: %v, want ErrObjectNotFound", err)
	}
	if ByPath("") != nil || ByPath("A.B").GetContainedPath() != "A.B" || ByID(7).GetObjectId() != 7 {
		t.Error("selectors")
	}
}
