package browse

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/mxgateway/mxgateway/api/mxgateway/galaxy/v1"
	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/internal/galaxy/runtime"
	"github.com/mxgateway/mxgateway/internal/galaxy/wire"
	"github.com/mxgateway/mxgateway/internal/ipc"
	"github.com/mxgateway/mxgateway/internal/testutil"
)

func TestMain(m *testing.M) { testutil.VerifyNoLeaks(m) }

const waitFor = 10 * time.Second

func yamlModel(tags ...string) *galaxyv1.Model {
	src := "galaxy: Watched\nareas:\n  - name: Area1\nobjects:\n"
	for _, tag := range tags {
		src += fmt.Sprintf("  - {tag: %s, area: Area1, attributes: [{name: PV, type: MxDouble, value: 1}]}\n", tag)
	}
	return &galaxyv1.Model{Source: &galaxyv1.Model_Yaml{Yaml: []byte(src)}}
}

// serveRuntime runs a runtime in dir until the returned stop.
func serveRuntime(t *testing.T, dir string, key []byte, m *galaxyv1.Model) (*runtime.Runtime, func()) {
	t.Helper()
	rt, err := runtime.New(runtime.Options{Model: m, Credential: key})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := ipc.ListenNamed(dir, wire.EndpointName)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = rt.Serve(ctx, ln) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); wg.Wait(); rt.Close() }) }
	t.Cleanup(stop)
	return rt, stop
}

// The watcher follows the runtime's deploys, serves the last model as
// stale while the runtime is away, and is live again when it is back.
func TestWatchRuntime(t *testing.T) {
	dir, err := os.MkdirTemp("", "bw")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	key, err := runtime.WriteKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	rt, stop := serveRuntime(t, dir, key, yamlModel("A", "B"))
	var st Store
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	w, err := WatchRuntime(ctx, dir, nil, &st, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	in := st.Load().Info()
	if in.GetName() != "Watched" || in.GetDeploySequence() != 1 || in.GetFreshness() != mxgatewayv1.Freshness_FRESHNESS_LIVE {
		t.Fatalf("first model %v", in)
	}
	if rep := rt.Admin(&galaxyv1.AdminRequest{Action: runtime.ActionDeploy, Model: yamlModel("A", "C")}); rep.GetError() != "" {
		t.Fatal(rep.GetError())
	}
	testutil.Eventually(t, waitFor, func() error {
		if s := st.Load(); s.Sequence() != 2 {
			return fmt.Errorf("sequence %d", s.Sequence())
		}
		return nil
	})
	s := st.Load()
	if _, err := s.Object(Viewer{}, byTag("C"), false); err != nil {
		t.Errorf("the deployed object: %v", err)
	}
	if _, err := s.Object(Viewer{}, byTag("B"), false); err == nil {
		t.Error("the removed object is still there")
	}
	stop()
	testutil.Eventually(t, waitFor, func() error {
		if f := st.Load().Info().GetFreshness(); f != mxgatewayv1.Freshness_FRESHNESS_STALE {
			return fmt.Errorf("freshness %v", f)
		}
		return nil
	})
	if st.Load().Sequence() != 2 {
		t.Errorf("stale snapshot at sequence %d", st.Load().Sequence())
	}
	serveRuntime(t, dir, key, yamlModel("D"))
	testutil.Eventually(t, waitFor, func() error {
		in := st.Load().Info()
		if in.GetFreshness() != mxgatewayv1.Freshness_FRESHNESS_LIVE || in.GetObjectCount() != 3 { // Area1, D, Sim
			return fmt.Errorf("after the restart %v", in)
		}
		return nil
	})
}
