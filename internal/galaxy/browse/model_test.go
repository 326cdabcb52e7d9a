package browse

import (
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
)

// A snapshot's Model builds the same snapshot again, and the snapshot
// file keeps it: the file's model browses as the one written, marked
// SNAPSHOT and STALE, and says where it was read from.
func TestModelAndFileRoundTrip(t *testing.T) {
	s := demo(t, 4)
	again := Build(s.Model(), 4, s.Info().GetSource(), s.Info().GetFreshness())
	all := Query{IncludeAttributes: true, IncludeBuiltin: true}
	a, _ := s.Discover(Viewer{}, nil, 0, all)
	b, _ := again.Discover(Viewer{}, nil, 0, all)
	if !proto.Equal(a, b) || !proto.Equal(s.Info(), again.Info()) {
		t.Fatal("Build(Model()) differs")
	}

	path := filepath.Join(t.TempDir(), SnapshotFileName)
	if err := WriteFile(path, s); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, s); err != nil { // over an existing file
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		t.Errorf("left %d files, want the snapshot file only", len(ents))
	}
	r, from, err := ReadFile(path, 1)
	if err != nil {
		t.Fatal(err)
	}
	if from != mxgatewayv1.ModelSource_MODEL_SOURCE_SIMULATOR || r.Info().GetSource() != mxgatewayv1.ModelSource_MODEL_SOURCE_SNAPSHOT ||
		r.Info().GetFreshness() != mxgatewayv1.Freshness_FRESHNESS_STALE || r.Sequence() != 1 {
		t.Fatalf("read back %v from %v", r.Info(), from)
	}
	c, _ := r.Discover(Viewer{}, nil, 0, all)
	a.DeploySequence, c.DeploySequence = 0, 0
	if !proto.Equal(a, c) || !proto.Equal(r.Info().GetLastDeployTime(), s.Info().GetLastDeployTime()) {
		t.Fatal("the file's model differs")
	}
	if _, _, err := ReadFile(filepath.Join(t.TempDir(), "none"), 1); err != ErrNoSnapshotFile {
		t.Errorf("no file: %v", err)
	}
	if err := os.WriteFile(path, []byte(`{"version": 99, "model": {}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ReadFile(path, 1); err == nil {
		t.Error("another format version read")
	}
}

// Objects whose parent is missing, or whose parents form a cycle, become
// roots; every object stays reachable.
func TestBuildOrphansAndCycles(t *testing.T) {
	m := &Model{Name: "G", Objects: []Object{
		{ID: 1, Tag: "A", Parent: 2}, {ID: 2, Tag: "B", Parent: 3}, {ID: 3, Tag: "C", Parent: 1}, // a cycle
		{ID: 4, Tag: "D", Parent: 42}, // an orphan
		{ID: 5, Tag: "E", Parent: 4},
		{ID: 5, Tag: "Dup"}, // a duplicate id: the first wins
	}}
	s := Build(m, 1, mxgatewayv1.ModelSource_MODEL_SOURCE_REPOSITORY, mxgatewayv1.Freshness_FRESHNESS_LIVE)
	r, err := s.Discover(Viewer{}, nil, 0, Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.GetObjects()) != 5 || s.Info().GetObjectCount() != 5 {
		t.Fatalf("walk %v", names(r.GetObjects()))
	}
	for _, o := range r.GetObjects() {
		if o.GetContainedPath() == "" {
			t.Errorf("%s has no path", o.GetTagName())
		}
	}
}
