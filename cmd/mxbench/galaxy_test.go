package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	galaxyv1 "github.com/mxgateway/mxgateway/api/mxgateway/galaxy/v1"
	"github.com/mxgateway/mxgateway/internal/galaxy/runtime"
	"github.com/mxgateway/mxgateway/internal/galaxy/wire"
	"github.com/mxgateway/mxgateway/internal/ipc"
)

// startTestRuntime serves the bench model from an in-process runtime on a
// fresh directory (what `mxgateway galaxy --listen DIR` runs).
func startTestRuntime(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "mxb") // short: a Unix socket path is bounded
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	model := filepath.Join(dir, "bench.yaml")
	if err := writeModel(model, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	yaml, err := os.ReadFile(model)
	if err != nil {
		t.Fatal(err)
	}
	key, err := runtime.WriteKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := runtime.New(runtime.Options{Model: &galaxyv1.Model{Source: &galaxyv1.Model_Yaml{Yaml: yaml}}, Credential: key})
	if err != nil {
		t.Fatalf("the runtime refused the bench model: %v", err)
	}
	ln, err := ipc.ListenNamed(dir, wire.EndpointName)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = rt.Serve(ctx, ln) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		rt.Close()
	})
	return dir
}

// subscribe opens a session connection to the runtime (as a worker does)
// and reads it up to the end of the snapshot.
func subscribe(t *testing.T, dir string) (*wire.Conn, func()) {
	t.Helper()
	key, err := wire.ReadKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := ipc.Dial(ctx, wire.Endpoint(dir))
	if err != nil {
		t.Fatal(err)
	}
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	wc := wire.NewConn(nc)
	if err := wc.Write(&galaxyv1.GalaxyEnvelope{Body: &galaxyv1.GalaxyEnvelope_Hello{Hello: &galaxyv1.Hello{
		ProtocolVersion: wire.ProtocolVersion, Credential: key, ClientName: "test", Subscribe: true}}}); err != nil {
		t.Fatal(err)
	}
	for {
		env, err := wc.Read()
		if err != nil {
			t.Fatal(err)
		}
		if env.GetValues().GetSnapshotEnd() {
			return wc, func() { nc.Close() }
		}
	}
}

// The runtime storm figure's trigger: the admin connection the driver keeps
// open storms the bench model's refRuntimeStorm, every change reaches a
// subscribed session in order, and refused requests are typed errors.
func TestGalaxyAdminStorm(t *testing.T) {
	dir := startTestRuntime(t)
	wc, closeSub := subscribe(t, dir)
	defer closeSub()
	admin, err := dialGalaxyAdmin(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.close()

	// Two requests on the one connection, as the paced driver sends them.
	const first, second = 1500, 2500
	for _, n := range []int{first, second} {
		if err := admin.storm(refRuntimeStorm, n); err != nil {
			t.Fatalf("storm %d: %v", n, err)
		}
	}
	got, want := 0, int32(first+second)
	last := int32(0)
	for last < want {
		env, err := wc.Read()
		if err != nil {
			t.Fatalf("after %d changes: %v", got, err)
		}
		for _, c := range env.GetValues().GetChanges() {
			v := c.GetValue().GetInt32Value()
			if v != last+1 {
				t.Fatalf("change %d: value %d after %d", got, v, last)
			}
			last = v
			got++
		}
	}
	if got != int(want) {
		t.Fatalf("%d changes, want %d", got, want)
	}

	for _, bad := range []struct {
		ref string
		n   int
	}{{"Nope.X", 1}, {refRuntimeStorm, 0}} {
		if err := admin.storm(bad.ref, bad.n); !errors.Is(err, errGalaxyAdmin) {
			t.Errorf("storm %s %d: %v, want errGalaxyAdmin", bad.ref, bad.n, err)
		}
	}
	// The connection survives a refused request.
	if err := admin.storm(refRuntimeStorm, 1); err != nil {
		t.Fatalf("storm after a refusal: %v", err)
	}
}

func TestDialGalaxyAdminNoKey(t *testing.T) {
	if _, err := dialGalaxyAdmin(context.Background(), t.TempDir()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("dial without a key file: %v, want os.ErrNotExist", err)
	}
}
