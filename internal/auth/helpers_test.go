package auth

import (
	"context"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/mxgateway/mxgateway/internal/store"
	"github.com/mxgateway/mxgateway/internal/testutil"
)

func TestMain(m *testing.M) { testutil.VerifyNoLeaks(m) }

// env is a manager on a fresh store and generated pepper in a temp data dir.
type env struct {
	dir   string
	store *store.Store
	mgr   *Manager
	clock *fakeClock
}

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func newEnv(t testing.TB) *env {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(context.Background(), filepath.Join(dir, store.DBFileName), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	pep, err := LoadPeppers(PepperConfig{DataDir: dir, Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	m, err := NewManager(ManagerConfig{Store: st, Peppers: pep, Now: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	return &env{dir: dir, store: st, mgr: m, clock: clock}
}

// mustCreate creates a key with the given scopes and constraints.
func (e *env) mustCreate(t testing.TB, name string, c Constraints, scopes ...Scope) (RawKey, store.Key) {
	t.Helper()
	raw, k, err := e.mgr.CreateKey(context.Background(), KeySpec{Name: name, Scopes: scopes, Constraints: c}, Actor{KeyID: CLIActor})
	if err != nil {
		t.Fatal(err)
	}
	return raw, k
}

func protoName(s string) protoreflect.Name { return protoreflect.Name(s) }

func isWindows() bool { return runtime.GOOS == "windows" }

// incoming returns ctx with incoming metadata kv.
func incoming(ctx context.Context, kv ...string) context.Context {
	return metadata.NewIncomingContext(ctx, metadata.Pairs(kv...))
}
