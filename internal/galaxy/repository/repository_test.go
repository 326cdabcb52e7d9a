package repository

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/internal/backend/sim"
	"github.com/mxgateway/mxgateway/internal/galaxy/browse"
	"github.com/mxgateway/mxgateway/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite testdata/queries.golden and testdata/demo.json")

func TestMain(m *testing.M) { testutil.VerifyNoLeaks(m) }

// demoDeployed is the demo fixture's time_of_last_deploy.
var demoDeployed = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// The query text is pinned: a change to a .sql file shows up here as a
// diff to review (go test ./internal/galaxy/repository -update).
func TestQueriesGolden(t *testing.T) {
	var b strings.Builder
	for _, name := range Queries {
		b.WriteString("-- file: " + name + "\n" + Query(name) + "\n")
	}
	golden := filepath.Join("testdata", "queries.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if b.String() != string(want) {
		t.Errorf("the queries differ from %s; review and run with -update", golden)
	}
	for _, name := range Queries {
		if q := Query(name); !strings.Contains(q, "SELECT") {
			t.Errorf("%s holds no SELECT", name)
		}
	}
}

// demoBrowsable is the demo Galaxy without what only the simulator has
// (the built-in Sim object, category 0): what its Galaxy Repository
// would list.
func demoBrowsable() *browse.Model {
	m := browse.SimModel(sim.DemoModel(), demoDeployed)
	m.Objects = slices.DeleteFunc(m.Objects, func(o browse.Object) bool { return o.Category == 0 })
	return m
}

func mxValue(length uint32) string {
	b := make([]byte, 20)
	b[0] = 0x01
	binary.LittleEndian.PutUint32(b[mxValueArrayOffset:], length)
	return hex.EncodeToString(b)
}

// repositoryRows writes a browse model in Galaxy Repository row form, as
// the queries would return it: the fixture of the equivalence test.
func repositoryRows(m *browse.Model) fixture {
	f := fixture{
		QueryGalaxy: {Columns: []string{"galaxy_name:string", "time_of_last_deploy:time"},
			Rows: [][]any{{m.Name, m.Deployed.Format(time.RFC3339Nano)}}},
		QueryHierarchy: {Columns: []string{"gobject_id:int", "tag_name:string", "contained_name:string", "parent_gobject_id:int",
			"is_area:bool", "category_id:int", "area_gobject_id:int", "hosted_by_gobject_id:int", "template_chain:string"}},
		QueryAttributes: {Columns: []string{"gobject_id:int", "attribute_name:string", "mx_data_type:int", "is_array:bool",
			"mx_value:bytes", "security_classification:int", "is_historized:bool", "is_alarm:bool"}},
		QueryBuiltins: {Columns: []string{"gobject_id:int", "primitive_instance:string", "primitive_definition:string",
			"attribute_name:string", "mx_data_type:int", "is_array:bool", "security_classification:int"}},
	}
	objs := slices.Clone(m.Objects)
	slices.SortFunc(objs, func(a, b browse.Object) int {
		return cmpOr(int(a.Parent)-int(b.Parent), strings.Compare(a.Tag, b.Tag))
	})
	for _, o := range objs {
		var contained, chain any
		if o.Contained != "" {
			contained = o.Contained
		}
		if len(o.Templates) > 0 {
			chain = strings.Join(o.Templates, "|")
		}
		f[QueryHierarchy].Rows = append(f[QueryHierarchy].Rows, []any{float64(o.ID), o.Tag, contained, float64(o.Parent),
			o.IsArea, float64(o.Category), float64(o.Area), float64(o.Host), chain})
	}
	slices.SortFunc(objs, func(a, b browse.Object) int { return int(a.ID) - int(b.ID) })
	for _, o := range objs {
		for _, a := range o.Attributes {
			if a.Builtin {
				inst, name := "", a.Name
				if i := strings.LastIndexByte(a.Name, '.'); i >= 0 {
					inst, name = a.Name[:i], a.Name[i+1:]
				}
				f[QueryBuiltins].Rows = append(f[QueryBuiltins].Rows, []any{float64(o.ID), inst, a.Primitive, name,
					float64(a.Type), a.IsArray, float64(a.Security)})
				continue
			}
			value := hex.EncodeToString([]byte{0x01, 0, 0, 0})
			if a.IsArray {
				value = mxValue(a.ArrayLength)
			}
			f[QueryAttributes].Rows = append(f[QueryAttributes].Rows, []any{float64(o.ID), a.Name, float64(a.Type), a.IsArray,
				value, float64(a.Security), a.Historized, a.Alarm})
		}
	}
	return f
}

func cmpOr(a, b int) int {
	if a != 0 {
		return a
	}
	return b
}

// testdata/demo.json is the demo Galaxy in repository row form; it is
// kept current with the demo model (regenerate with -update).
func TestDemoFixtureCurrent(t *testing.T) {
	path := filepath.Join("testdata", "demo.json")
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", " ")
	if err := enc.Encode(repositoryRows(demoBrowsable())); err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("%s is not the demo Galaxy any more; run with -update", path)
	}
}

// The scan code on canned rows: NULLs, the template chain, the array
// length in mx_value, built-in names, hidden names, a built-in that a
// dynamic attribute shadows, attributes of unknown objects, bad rows.
func TestScanRows(t *testing.T) {
	f := fixture{
		QueryGalaxy: {Columns: []string{"galaxy_name:string", "time_of_last_deploy:time"},
			Rows: [][]any{{"ZB", "2026-01-02T03:04:05.5Z"}}},
		QueryHierarchy: {Columns: []string{"gobject_id:int", "tag_name:string", "contained_name:string", "parent_gobject_id:int",
			"is_area:bool", "category_id:int", "area_gobject_id:int", "hosted_by_gobject_id:int", "template_chain:string"},
			Rows: [][]any{
				{1.0, "DEV", nil, 0.0, true, 13.0, 0.0, nil, nil},
				{2.0, "TestMachine_001", "", 1.0, false, 10.0, 1.0, 3.0, "$TestMachine|$gMachine|$UserDefined"},
				{3.0, "DelmiaReceiver_001", "DelmiaReceiver", 2.0, false, 10.0, 1.0, 3.0, "$DelmiaReceiver"},
			}},
		QueryAttributes: {Columns: []string{"gobject_id:int", "attribute_name:string", "mx_data_type:int", "is_array:bool",
			"mx_value:bytes", "security_classification:int", "is_historized:bool", "is_alarm:bool"},
			Rows: [][]any{
				{2.0, "Speed", 4.0, false, nil, 1.0, true, false},
				{2.0, "Recipe", 5.0, true, mxValue(12), 5.0, false, false},
				{2.0, "Short", 2.0, true, "0102", 0.0, false, false},
				{2.0, "_Hidden", 2.0, false, nil, 0.0, false, false},
				{2.0, "Level", 4.0, false, nil, 0.0, false, true},
				{99.0, "Orphan", 2.0, false, nil, 0.0, false, false},
			}},
		QueryBuiltins: {Columns: []string{"gobject_id:int", "primitive_instance:string", "primitive_definition:string",
			"attribute_name:string", "mx_data_type:int", "is_array:bool", "security_classification:int"},
			Rows: [][]any{
				{2.0, "Level", "AlarmExtension", "InAlarm", 1.0, false, 6.0},
				{2.0, nil, "CommonPrimitive", "ScanState", 1.0, false, 1.0},
				{2.0, "", "CommonPrimitive", "speed", 2.0, false, 0.0}, // shadowed by Speed
				{2.0, "_Internal", "CommonPrimitive", "X", 2.0, false, 0.0},
			}},
	}
	db, _ := serve(f)
	defer db.Close()
	rows := func(name string) Rows {
		r, err := queryRows(db, name)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	g, err := ScanGalaxy(rows(QueryGalaxy))
	if err != nil || g.Name != "ZB" || !g.Deployed.Equal(time.Date(2026, 1, 2, 3, 4, 5, 5e8, time.UTC)) {
		t.Fatalf("galaxy %+v %v", g, err)
	}
	hier, err := ScanHierarchy(rows(QueryHierarchy))
	if err != nil {
		t.Fatal(err)
	}
	if h := hier[0]; h.Contained != "" || h.Host != 0 || h.Templates != nil || !h.IsArea {
		t.Errorf("NULL columns: %+v", h)
	}
	if h := hier[1]; !slices.Equal(h.Templates, []string{"$TestMachine", "$gMachine", "$UserDefined"}) || h.Host != 3 {
		t.Errorf("template chain: %+v", h)
	}
	attrs, err := ScanAttributes(rows(QueryAttributes))
	if err != nil {
		t.Fatal(err)
	}
	if attrs[1].ArrayLength != 12 || attrs[2].ArrayLength != 0 || attrs[0].ArrayLength != 0 {
		t.Errorf("array lengths %d %d %d", attrs[1].ArrayLength, attrs[2].ArrayLength, attrs[0].ArrayLength)
	}
	builtins, err := ScanBuiltins(rows(QueryBuiltins))
	if err != nil {
		t.Fatal(err)
	}
	m := Assemble(g, hier, attrs, builtins)
	s := browse.Build(m, 1, mxgatewayv1.ModelSource_MODEL_SOURCE_REPOSITORY, mxgatewayv1.Freshness_FRESHNESS_LIVE)
	obj, err := s.Object(browse.Viewer{}, &mxgatewayv1.ObjectSelector{By: &mxgatewayv1.ObjectSelector_ContainedPath{
		ContainedPath: "DEV.TestMachine_001"}}, true)
	if err != nil {
		t.Fatal(err)
	}
	var refs []string
	for _, a := range obj.GetObject().GetAttributes() {
		refs = append(refs, a.GetReference())
	}
	if want := []string{"TestMachine_001.Level", "TestMachine_001.Level.InAlarm", "TestMachine_001.Recipe[]",
		"TestMachine_001.ScanState", "TestMachine_001.Short[]", "TestMachine_001.Speed"}; !slices.Equal(refs, want) {
		t.Errorf("references %v, want %v", refs, want)
	}
	if _, err := s.Object(browse.Viewer{}, &mxgatewayv1.ObjectSelector{By: &mxgatewayv1.ObjectSelector_ContainedPath{
		ContainedPath: "DEV.TestMachine_001.DelmiaReceiver"}}, false); err != nil {
		t.Errorf("contained name in the path: %v", err)
	}

	// A row of the wrong type names its row; a probe without its row is refused.
	f[QueryHierarchy].Rows = [][]any{{4.0, "Bad", nil, "not a number", false, 10.0, 0.0, 0.0, nil}}
	f[QueryHierarchy].Columns[3] = "parent_gobject_id:string"
	if _, err := ScanHierarchy(rows(QueryHierarchy)); err == nil || !strings.Contains(err.Error(), "row 1") {
		t.Errorf("bad row: %v", err)
	}
	f[QueryGalaxy].Rows = nil
	if _, err := ScanGalaxy(rows(QueryGalaxy)); err == nil {
		t.Error("a probe with no row scanned")
	}
}

// The equivalence test: the demo Galaxy in repository row form, read by
// the repository source through database/sql, browses exactly as the
// simulator's model of it: every level, every object with every
// attribute, the whole walk.
func TestEquivalenceWithSimulator(t *testing.T) {
	f, err := loadFixture(filepath.Join("testdata", "demo.json"))
	if err != nil {
		t.Fatal(err)
	}
	db, _ := serve(f)
	var st browse.Store
	src := Start(context.Background(), Options{DB: db, Store: &st, Poll: time.Hour})
	defer src.Close()
	repo := st.Load()
	if repo == nil {
		t.Fatal("no model read")
	}
	want := browse.Build(demoBrowsable(), 1, mxgatewayv1.ModelSource_MODEL_SOURCE_SIMULATOR, mxgatewayv1.Freshness_FRESHNESS_LIVE)
	ri, wi := proto.CloneOf(repo.Info()), proto.CloneOf(want.Info())
	if ri.GetSource() != mxgatewayv1.ModelSource_MODEL_SOURCE_REPOSITORY {
		t.Errorf("source %v", ri.GetSource())
	}
	ri.Source, wi.Source = 0, 0
	if !proto.Equal(ri, wi) {
		t.Fatalf("info\n%v\nwant\n%v", ri, wi)
	}
	same := func(what string, a, b proto.Message, errA, errB error) {
		t.Helper()
		if errA != nil || errB != nil || !proto.Equal(a, b) {
			t.Fatalf("%s differs:\nrepository %v (%v)\nsimulator  %v (%v)", what, a, errA, b, errB)
		}
	}
	all := browse.Query{IncludeAttributes: true, IncludeBuiltin: true}
	ra, ea := repo.Discover(browse.Viewer{}, nil, 0, all)
	wa, eb := want.Discover(browse.Viewer{}, nil, 0, all)
	same("the whole walk", ra, wa, ea, eb)
	parents := []*mxgatewayv1.ObjectSelector{nil}
	for _, o := range wa.GetObjects() {
		parents = append(parents, &mxgatewayv1.ObjectSelector{By: &mxgatewayv1.ObjectSelector_ObjectId{ObjectId: o.GetObjectId()}})
	}
	for _, p := range parents {
		for _, q := range []browse.Query{{}, all, {PageSize: 1}, {Filter: &mxgatewayv1.BrowseFilter{AlarmBearingOnly: true}}} {
			rc, ea := repo.Children(browse.Viewer{}, p, q)
			wc, eb := want.Children(browse.Viewer{}, p, q)
			same("children of "+p.String(), rc, wc, ea, eb)
		}
		if p != nil {
			ro, ea := repo.Object(browse.Viewer{}, p, true)
			wo, eb := want.Object(browse.Viewer{}, p, true)
			same("object "+p.String(), ro, wo, ea, eb)
		}
	}
	if len(wa.GetObjects()) < 10 {
		t.Fatalf("the demo walk has %d objects", len(wa.GetObjects()))
	}
}

func info(st *browse.Store) (uint64, mxgatewayv1.ModelSource, mxgatewayv1.Freshness) {
	s := st.Load()
	if s == nil {
		return 0, 0, 0
	}
	return s.Sequence(), s.Info().GetSource(), s.Info().GetFreshness()
}

// The source's life: a start with the database down and no snapshot
// file has no model; the first read is live and writes the file; the
// database going away makes it stale; back with the same deploy time it
// is live again without a read; a new deploy time reads the model again.
// A new start with the database down serves the file, stale, and goes
// live (without a read) when the database answers with that deploy time.
func TestSourceLifecycle(t *testing.T) {
	f, err := loadFixture(filepath.Join("testdata", "demo.json"))
	if err != nil {
		t.Fatal(err)
	}
	db, fs := serve(f)
	fs.set(f, true)
	dir := t.TempDir()
	file := filepath.Join(dir, browse.SnapshotFileName)
	ctx := context.Background()
	var st browse.Store
	src := Start(ctx, Options{DB: db, Store: &st, Poll: time.Hour, SnapshotPath: file})
	if st.Load() != nil {
		t.Fatal("a model with the database down and no file")
	}
	fs.set(f, false)
	if err := src.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if seq, s, fr := info(&st); seq != 1 || s != mxgatewayv1.ModelSource_MODEL_SOURCE_REPOSITORY || fr != mxgatewayv1.Freshness_FRESHNESS_LIVE {
		t.Fatalf("after the first read: %d %v %v", seq, s, fr)
	}
	if _, err := os.Stat(file); err != nil {
		t.Fatalf("no snapshot file: %v", err)
	}
	fs.set(f, true)
	if err := src.Refresh(ctx); !errors.Is(err, errUnreachable) {
		t.Fatalf("refresh with the database down: %v", err)
	}
	if seq, _, fr := info(&st); seq != 1 || fr != mxgatewayv1.Freshness_FRESHNESS_STALE {
		t.Fatalf("database down: %d %v", seq, fr)
	}
	fs.set(f, false)
	before := len(fs.ran())
	if err := src.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if seq, _, fr := info(&st); seq != 1 || fr != mxgatewayv1.Freshness_FRESHNESS_LIVE {
		t.Fatalf("back: %d %v", seq, fr)
	}
	if ran := fs.ran()[before:]; !slices.Equal(ran, []string{QueryGalaxy}) {
		t.Errorf("back with the same deploy time ran %v, want the probe only", ran)
	}
	// A deploy.
	f2 := repositoryRows(demoBrowsable())
	f2[QueryGalaxy].Rows[0][1] = demoDeployed.Add(time.Minute).Format(time.RFC3339Nano)
	f2[QueryAttributes].Rows = f2[QueryAttributes].Rows[1:]
	fs.set(f2, false)
	if err := src.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if seq, _, fr := info(&st); seq != 2 || fr != mxgatewayv1.Freshness_FRESHNESS_LIVE ||
		st.Load().Info().GetAttributeCount() != want(t, f).GetAttributeCount()-1 {
		t.Fatalf("after a deploy: %d %v %v", seq, fr, st.Load().Info())
	}
	src.Close()

	// A new start with the database down: the file's model, stale.
	db2, fs2 := serve(f2)
	fs2.set(f2, true)
	var st2 browse.Store
	src2 := Start(ctx, Options{DB: db2, Store: &st2, Poll: time.Hour, SnapshotPath: file})
	defer src2.Close()
	if seq, s, fr := info(&st2); seq != 1 || s != mxgatewayv1.ModelSource_MODEL_SOURCE_SNAPSHOT || fr != mxgatewayv1.Freshness_FRESHNESS_STALE {
		t.Fatalf("start from the file: %d %v %v", seq, s, fr)
	}
	if !proto.Equal(st2.Load().Info().GetLastDeployTime(), st.Load().Info().GetLastDeployTime()) ||
		st2.Load().Info().GetAttributeCount() != st.Load().Info().GetAttributeCount() {
		t.Fatalf("the file's model %v, want %v", st2.Load().Info(), st.Load().Info())
	}
	fs2.set(f2, false)
	if err := src2.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if seq, s, fr := info(&st2); seq != 1 || s != mxgatewayv1.ModelSource_MODEL_SOURCE_REPOSITORY || fr != mxgatewayv1.Freshness_FRESHNESS_LIVE {
		t.Fatalf("file promoted: %d %v %v", seq, s, fr)
	}
	if ran := fs2.ran(); !slices.Equal(ran, []string{QueryGalaxy}) {
		t.Errorf("promoting the file's model ran %v, want the probe only", ran)
	}
}

func want(t *testing.T, f fixture) *mxgatewayv1.GalaxyInfo {
	t.Helper()
	db, _ := serve(f)
	var st browse.Store
	src := Start(context.Background(), Options{DB: db, Store: &st, Poll: time.Hour})
	defer src.Close()
	if st.Load() == nil {
		t.Fatal("no model")
	}
	return st.Load().Info()
}

// EnvLive names a real Galaxy Repository's connection string: with it,
// TestLiveRepository reads that Galaxy (docs/windows.md's checklist).
const EnvLive = "MXGATEWAY_LIVE_GR"

// TestLiveRepository reads a real Galaxy Repository when EnvLive gives a
// connection string (none can run on the CI machines): the probe, a
// model with objects and attributes, and a walk of its whole tree.
func TestLiveRepository(t *testing.T) {
	conn := os.Getenv(EnvLive)
	if conn == "" {
		t.Skip(EnvLive + " not set: no Galaxy Repository to read")
	}
	db, err := OpenDB(conn)
	if err != nil {
		t.Fatal(err)
	}
	var st browse.Store
	src := Start(context.Background(), Options{DB: db, Store: &st, Poll: time.Hour})
	defer src.Close()
	if err := src.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	s := st.Load()
	in := s.Info()
	t.Logf("Galaxy %s deployed %v: %d objects, %d attributes", in.GetName(), in.GetLastDeployTime().AsTime(), in.GetObjectCount(), in.GetAttributeCount())
	if in.GetObjectCount() == 0 || in.GetAttributeCount() == 0 {
		t.Fatalf("an empty Galaxy: %v", in)
	}
	q := browse.Query{PageSize: browse.MaxPageSize}
	walked := 0
	for {
		r, err := s.Discover(browse.Viewer{}, nil, 0, q)
		if err != nil {
			t.Fatal(err)
		}
		walked += len(r.GetObjects())
		if q.PageToken = r.GetNextPageToken(); q.PageToken == "" {
			break
		}
	}
	if walked != int(in.GetObjectCount()) {
		t.Errorf("walked %d objects of %d", walked, in.GetObjectCount())
	}
}

// The poll loop: without any Refresh call, a deploy (a new
// time_of_last_deploy) is read within the poll period, and Close ends
// the loop (the leak check of TestMain).
func TestSourcePolls(t *testing.T) {
	f := repositoryRows(demoBrowsable())
	db, fs := serve(f)
	var st browse.Store
	src := Start(context.Background(), Options{DB: db, Store: &st, Poll: 10 * time.Millisecond})
	defer src.Close()
	if seq, _, _ := info(&st); seq != 1 {
		t.Fatalf("start: sequence %d", seq)
	}
	f2 := repositoryRows(demoBrowsable())
	f2[QueryGalaxy].Rows[0][1] = demoDeployed.Add(time.Hour).Format(time.RFC3339Nano)
	fs.set(f2, false)
	testutil.Eventually(t, 10*time.Second, func() error {
		if seq, _, _ := info(&st); seq != 2 {
			return fmt.Errorf("sequence %d, want 2", seq)
		}
		return nil
	})
	fs.set(f2, true)
	testutil.Eventually(t, 10*time.Second, func() error {
		if _, _, fr := info(&st); fr != mxgatewayv1.Freshness_FRESHNESS_STALE {
			return fmt.Errorf("freshness %v with the database down", fr)
		}
		return nil
	})
}
