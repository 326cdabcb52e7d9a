package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/mxgatewayv1grpc"
	"github.com/mxgateway/mxgateway/client"
	"github.com/mxgateway/mxgateway/internal/backend/sim"
	"github.com/mxgateway/mxgateway/internal/galaxy/browse"
)

// The browse figures' targets (issue 16).
const (
	targetBrowsePageP50Ms = 1.0 // BrowseChildren p50 for a page of 500
	browsePage            = 500
	browseWalkPage        = 5000 // the largest page: the fewest round trips for a whole walk
)

// BrowseParams are the browse figures' workloads.
type BrowseParams struct {
	// PlantAreas is the generated plant's size (--sim-plant).
	PlantAreas int `json:"plant_areas"`
	// WideObjects root objects of WideAttributes attributes each make
	// the wide model, whose roots page in full pages of 500 (the plant's
	// widest level has PlantAreas+PlantAreas/10 objects).
	WideObjects    int `json:"wide_objects"`
	WideAttributes int `json:"wide_attributes"`
	// Calls timed BrowseChildren calls per repetition, after Warmup.
	Calls  int `json:"calls"`
	Warmup int `json:"warmup_calls"`
}

// BrowseResult is the Galaxy browse figures.
type BrowseResult struct {
	Params BrowseParams `json:"params"`
	// PlantObjects and PlantAttributes are the plant's counts (GetGalaxy).
	PlantObjects    uint32 `json:"plant_objects"`
	PlantAttributes uint32 `json:"plant_attributes"`
	// Page is BrowseChildren p50 (ms) for a page of 500 objects (the
	// lazy tree: no attributes), over the wide model's pages; PageCeiling the same
	// calls answered by a bare server holding the same pages; PageRatio
	// median / median.
	Page        Spread  `json:"page_500_p50_ms"`
	PageCeiling Spread  `json:"page_500_ceiling_p50_ms"`
	PageRatio   float64 `json:"page_500_ratio"`
	PageBytes   int     `json:"page_500_bytes"`
	// PlantPage is BrowseChildren p50 (ms) of the plant's widest level
	// (the Site area's children, one page, with attributes).
	PlantPage     Spread `json:"plant_widest_level_p50_ms"`
	PlantPageSize int    `json:"plant_widest_level_objects"`
	// Walk is a full DiscoverHierarchy walk of the plant with attributes
	// (pages of 5,000), in ms; WalkPages its round trips.
	Walk      Spread `json:"plant_walk_ms"`
	WalkPages int    `json:"plant_walk_pages"`
	// GatewayMiB is the plant gateway's RSS (its own process, holding
	// the snapshot; not the runtime or the workers).
	GatewayMiB Spread `json:"plant_gateway_rss_mib"`
	// Auth is the browse gateways' authentication.
	Auth string `json:"authentication"`
	// SnapshotMiB is the heap the plant's browse snapshot holds, built in
	// the driver's process (runtime.MemStats before and after); BuildMs
	// the time to build it, DiffMs the time a deploy's change list takes
	// (every object of the plant compared with an equal model).
	SnapshotMiB Spread `json:"plant_snapshot_heap_mib"`
	BuildMs     Spread `json:"plant_snapshot_build_ms"`
	DiffMs      Spread `json:"plant_deploy_diff_ms"`
}

// writeWideModel writes the wide model: objects W0000... at the root,
// each with attrs MxDouble attributes.
func writeWideModel(path string, objects, attrs int) error {
	var b strings.Builder
	b.WriteString("galaxy: Wide\ndescription: mxbench browse model\nobjects:\n")
	for o := range objects {
		fmt.Fprintf(&b, "  - tag: W%04d\n    attributes:\n", o)
		for a := range attrs {
			fmt.Fprintf(&b, "      - {name: A%03d, type: MxDouble, value: 0}\n", a)
		}
	}
	return os.WriteFile(path, []byte(b.String()), 0o600)
}

// browseKey creates a browse:read key with the gateway's first-run admin
// key (the workloads' key has application scopes only).
func browseKey(ctx context.Context, g *gatewayProc) (*client.Client, error) {
	raw, err := os.ReadFile(filepath.Join(g.dataDir, "admin.key"))
	if err != nil {
		return g.dial(ctx) // no authentication
	}
	admin, err := g.dialKey(ctx, strings.TrimSpace(string(raw)))
	if err != nil {
		return nil, err
	}
	defer admin.Close()
	_, key, err := admin.Admin().CreateAPIKey(ctx, client.NewAPIKey{Name: "mxbench-browse", Scopes: []string{"browse:read"}})
	if err != nil {
		return nil, err
	}
	return g.dialKey(ctx, key)
}

// browseCeiling is a bare Galaxy server answering BrowseChildren from
// captured pages, by page token.
type browseCeiling struct {
	mxgatewayv1grpc.UnimplementedGalaxyServer
	pages map[string]*mxgatewayv1.BrowseChildrenResponse
}

func (b *browseCeiling) BrowseChildren(_ context.Context, r *mxgatewayv1.BrowseChildrenRequest) (*mxgatewayv1.BrowseChildrenResponse, error) {
	if p := b.pages[r.GetPageToken()]; p != nil {
		return p, nil
	}
	return nil, status.Error(codes.InvalidArgument, "no such page")
}

// timeCalls runs warmup then calls BrowseChildren calls cycling through
// reqs and returns the p50 in ms.
func timeCalls(ctx context.Context, gx *client.Galaxy, reqs []*mxgatewayv1.BrowseChildrenRequest, warmup, calls int) (float64, error) {
	lat := make([]float64, 0, calls)
	for i := range warmup + calls {
		began := time.Now()
		if _, err := gx.ChildrenPage(ctx, reqs[i%len(reqs)]); err != nil {
			return 0, err
		}
		if i >= warmup {
			lat = append(lat, float64(time.Since(began))/float64(time.Millisecond))
		}
	}
	slices.Sort(lat)
	return percentile(lat, 50), nil
}

// browseSection runs the browse figures: a gateway serving the wide
// model (pages of 500, against the ceiling), one serving the generated
// plant (its widest level, a full walk, its RSS), and the plant's
// snapshot built in this process (its heap).
func browseSection(ctx context.Context, bin, root string, p BrowseParams, reps int, logf func(string, ...any)) (*BrowseResult, error) {
	res := &BrowseResult{Params: p}

	// Pages of 500 on the wide model, and the same pages from the ceiling.
	model := filepath.Join(root, "wide.yaml")
	if err := writeWideModel(model, p.WideObjects, p.WideAttributes); err != nil {
		return nil, err
	}
	g, err := startGateway(ctx, bin, root, "browse-wide", "--sim-model="+model, "--spare-workers=0")
	if err != nil {
		return nil, err
	}
	defer g.stop()
	res.Auth = g.auth + ", the browse figures with a browse:read key"
	c, err := browseKey(ctx, g)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	ce := &browseCeiling{pages: map[string]*mxgatewayv1.BrowseChildrenResponse{}}
	var reqs []*mxgatewayv1.BrowseChildrenRequest
	for tok := ""; ; {
		req := &mxgatewayv1.BrowseChildrenRequest{PageSize: browsePage, PageToken: tok}
		page, err := c.Galaxy().ChildrenPage(ctx, req)
		if err != nil {
			return nil, fmt.Errorf("browse: wide model page: %w", err)
		}
		if len(page.GetChildren()) == browsePage {
			reqs = append(reqs, req)
			ce.pages[tok] = page
			res.PageBytes = max(res.PageBytes, proto.Size(page))
		}
		if tok = page.GetNextPageToken(); tok == "" {
			break
		}
	}
	if len(reqs) == 0 {
		return nil, fmt.Errorf("browse: the wide model has no full page of %d", browsePage)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	// The SDK pings every few seconds; a bare server's default policy
	// would answer that with GOAWAY (too_many_pings) on a long run.
	srv := grpc.NewServer(grpc.MaxSendMsgSize(64<<20),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: time.Second, PermitWithoutStream: true}))
	mxgatewayv1grpc.RegisterGalaxyServer(srv, ce)
	go srv.Serve(lis)
	defer srv.Stop()
	cc, err := client.Dial(ctx, lis.Addr().String(), client.WithInsecure(), client.WithUserAgent("mxbench"))
	if err != nil {
		return nil, err
	}
	defer cc.Close()
	var ours, ceil []float64
	for r := range reps {
		a, err := timeCalls(ctx, c.Galaxy(), reqs, p.Warmup, p.Calls)
		if err != nil {
			return nil, err
		}
		b, err := timeCalls(ctx, cc.Galaxy(), reqs, p.Warmup, p.Calls)
		if err != nil {
			return nil, err
		}
		ours, ceil = append(ours, a), append(ceil, b)
		logf("browse: page of %d, rep %d: p50 %.3f ms, ceiling %.3f ms", browsePage, r+1, a, b)
	}
	res.Page, res.PageCeiling = spreadOf(ours), spreadOf(ceil)
	res.PageRatio = ratio(res.Page.Median, res.PageCeiling.Median)
	c.Close()
	if err := g.stop(); err != nil {
		logf("gateway browse-wide exit: %v", err)
	}

	// The generated plant.
	pg, err := startGateway(ctx, bin, root, "browse-plant", fmt.Sprintf("--sim-plant=%d", p.PlantAreas), "--spare-workers=0")
	if err != nil {
		return nil, err
	}
	defer pg.stop()
	pc, err := browseKey(ctx, pg)
	if err != nil {
		return nil, err
	}
	defer pc.Close()
	info, err := pc.Galaxy().Info(ctx)
	if err != nil {
		return nil, err
	}
	res.PlantObjects, res.PlantAttributes = info.GetObjectCount(), info.GetAttributeCount()
	roots, err := pc.Galaxy().ChildrenPage(ctx, &mxgatewayv1.BrowseChildrenRequest{})
	if err != nil || len(roots.GetChildren()) == 0 {
		return nil, fmt.Errorf("browse: plant roots: %v", err)
	}
	widest := &mxgatewayv1.BrowseChildrenRequest{Parent: client.ByID(roots.GetChildren()[0].GetObjectId()), PageSize: browsePage, IncludeAttributes: true}
	wp, err := pc.Galaxy().ChildrenPage(ctx, widest)
	if err != nil {
		return nil, err
	}
	res.PlantPageSize = len(wp.GetChildren())
	var plantPage, walk, rss []float64
	for r := range reps {
		a, err := timeCalls(ctx, pc.Galaxy(), []*mxgatewayv1.BrowseChildrenRequest{widest}, p.Warmup, p.Calls)
		if err != nil {
			return nil, err
		}
		plantPage = append(plantPage, a)
		began := time.Now()
		pages, objs := 0, 0
		for _, err := range pc.Galaxy().Walk(ctx, &mxgatewayv1.DiscoverHierarchyRequest{PageSize: browseWalkPage, IncludeAttributes: true}) {
			if err != nil {
				return nil, err
			}
			if objs%browseWalkPage == 0 {
				pages++
			}
			objs++
		}
		walk = append(walk, float64(time.Since(began))/float64(time.Millisecond))
		if objs != int(res.PlantObjects) {
			return nil, fmt.Errorf("browse: the walk listed %d objects of %d", objs, res.PlantObjects)
		}
		res.WalkPages = pages
		if b, err := rssBytes(pg.pid()); err == nil {
			rss = append(rss, float64(b)/(1<<20))
		}
		logf("browse: plant of %d areas, rep %d: widest level p50 %.3f ms, walk %.0f ms", p.PlantAreas, r+1, a, walk[len(walk)-1])
	}
	res.PlantPage, res.Walk, res.GatewayMiB = spreadOf(plantPage), spreadOf(walk), spreadOf(rss)
	pc.Close()
	if err := pg.stop(); err != nil {
		logf("gateway browse-plant exit: %v", err)
	}

	// The plant's snapshot, measured in this process.
	var heap, build, diff []float64
	for range reps {
		m, err := sim.PlantModel(p.PlantAreas)
		if err != nil {
			return nil, err
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		began := time.Now()
		s := browse.FromModel(m, 1, time.Now(), mxgatewayv1.Freshness_FRESHNESS_LIVE)
		build = append(build, float64(time.Since(began))/float64(time.Millisecond))
		runtime.GC()
		runtime.ReadMemStats(&after)
		heap = append(heap, float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/(1<<20))
		// A deploy of an equal model: every object is compared.
		var st browse.Store
		st.Set(s)
		again := browse.FromModel(m, 2, time.Now(), mxgatewayv1.Freshness_FRESHNESS_LIVE)
		began = time.Now()
		st.Set(again)
		diff = append(diff, float64(time.Since(began))/float64(time.Millisecond))
		runtime.KeepAlive(m)
	}
	res.SnapshotMiB, res.BuildMs, res.DiffMs = spreadOf(heap), spreadOf(build), spreadOf(diff)
	return res, nil
}

// browseRows are the browse figures' table rows.
func browseRows(b *BrowseResult) []row {
	if b == nil {
		return nil
	}
	ms := func(v float64) string { return fmt.Sprintf("%.3f", v) }
	return []row{
		{"browse page p50 ms", fmt.Sprintf("BrowseChildren, a page of %d objects of %d (%d B)", browsePage, b.Params.WideObjects, b.PageBytes),
			spreadStr(b.Page, ms), spreadStr(b.PageCeiling, ms), fmt.Sprintf("%.2f", b.PageRatio), fmt.Sprintf("< %.0f ms", targetBrowsePageP50Ms)},
		{"browse plant level p50 ms", fmt.Sprintf("plant of %d areas (%d objects, %d attributes): widest level, %d objects with attributes",
			b.Params.PlantAreas, b.PlantObjects, b.PlantAttributes, b.PlantPageSize), spreadStr(b.PlantPage, ms), "", "", ""},
		{"browse plant walk ms", fmt.Sprintf("DiscoverHierarchy, whole plant with attributes, %d pages", b.WalkPages), spreadStr(b.Walk, fmtMs), "", "", ""},
		{"browse plant gateway RSS MiB", "the serve process with the plant's snapshot", spreadStr(b.GatewayMiB, fmtMiB), "", "", ""},
		{"browse plant snapshot MiB", "heap of the plant's snapshot (built in the driver)", spreadStr(b.SnapshotMiB, fmtMiB), "", "", ""},
		{"browse plant snapshot build ms", "browse.FromModel of the plant (each deploy builds one)", spreadStr(b.BuildMs, fmtMs), "", "", ""},
		{"browse plant deploy diff ms", "Store.Set: the changed objects of a deploy, every object compared", spreadStr(b.DiffMs, fmtMs), "", "", ""},
	}
}

// browseTarget is the browse target line.
func browseTarget(b *BrowseResult) TargetStatus {
	t := TargetStatus{Target: fmt.Sprintf("BrowseChildren p50 < %.0f ms, page of %d", targetBrowsePageP50Ms, browsePage), Met: "not measured"}
	if b != nil && b.Page.N > 0 {
		t.Value = fmt.Sprintf("%.3f ms (ceiling %.3f ms)", b.Page.Median, b.PageCeiling.Median)
		t.Met = map[bool]string{true: "yes", false: "no"}[b.Page.Median < targetBrowsePageP50Ms]
	}
	return t
}
