package auth

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	mxgatewayv1grpc "github.com/mxgateway/mxgateway/api/mxgateway/v1/mxgatewayv1grpc"
	"github.com/mxgateway/mxgateway/internal/store"
	"github.com/mxgateway/mxgateway/internal/testutil"
)

// idleStream is a server stream whose handler only waits for its end.
type idleStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s idleStream) Context() context.Context { return s.ctx }

// openStream runs the guard's stream interceptor around a handler that
// waits for its context, as StreamEvents does between events; the
// returned channel yields the interceptor's answer.
func openStream(t *testing.T, parent context.Context, g *Guard, raw RawKey) <-chan error {
	t.Helper()
	ctx := metadata.NewIncomingContext(parent, metadata.Pairs(MDAuthorization, "Bearer "+raw.Reveal()))
	info := &grpc.StreamServerInfo{FullMethod: mxgatewayv1grpc.Gateway_StreamEvents_FullMethodName, IsServerStream: true}
	done := make(chan error, 1)
	go func() {
		done <- g.StreamInterceptor()(nil, idleStream{ctx: ctx}, info, func(_ any, ss grpc.ServerStream) error {
			<-ss.Context().Done()
			return ss.Context().Err()
		})
	}()
	return done
}

func waitEnd(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("the stream did not end after its key was revoked")
		return nil
	}
}

// TestRevocationEndsStreams: a stream of a key revoked through the
// Manager (the Admin service) ends at once, and one of a key revoked by
// another process (the store only) within the cache TTL, both with
// UNAUTHENTICATED / API_KEY_REVOKED; other keys' streams go on.
func TestRevocationEndsStreams(t *testing.T) {
	testutil.CheckLeaks(t)
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
	mgr, err := NewManager(ManagerConfig{Store: st, Peppers: pep, KeyCacheTTL: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewGuard(GuardConfig{Manager: mgr})
	if err != nil {
		t.Fatal(err)
	}
	create := func(name string) (RawKey, store.Key) {
		raw, k, err := mgr.CreateKey(context.Background(), KeySpec{Name: name, Scopes: []Scope{ScopeEventsRead}}, Actor{KeyID: CLIActor})
		if err != nil {
			t.Fatal(err)
		}
		return raw, k
	}
	watching := func(n int) {
		testutil.Eventually(t, 5*time.Second, func() error {
			if got := mgr.Watched(); got != n {
				return errors.New("streams not yet watched")
			}
			return nil
		})
	}

	otherRaw, _ := create("bystander")
	octx, stopOther := context.WithCancel(context.Background())
	other := openStream(t, octx, g, otherRaw)

	t.Run("admin revoke ends the stream at once", func(t *testing.T) {
		raw, k := create("revoked online")
		done := openStream(t, context.Background(), g, raw)
		watching(2)
		if _, err := mgr.RevokeKey(context.Background(), k.ID, Actor{KeyID: CLIActor}); err != nil {
			t.Fatal(err)
		}
		wantCode(t, waitEnd(t, done), codes.Unauthenticated, mxgatewayv1.ReasonAPIKeyRevoked)
	})
	t.Run("rotation ends the old key's stream", func(t *testing.T) {
		raw, k := create("rotated")
		done := openStream(t, context.Background(), g, raw)
		watching(2)
		if _, _, err := mgr.RotateKey(context.Background(), k.ID, Actor{KeyID: CLIActor}); err != nil {
			t.Fatal(err)
		}
		wantCode(t, waitEnd(t, done), codes.Unauthenticated, mxgatewayv1.ReasonAPIKeyRevoked)
	})
	t.Run("offline revoke ends the stream within the TTL", func(t *testing.T) {
		raw, k := create("revoked offline")
		done := openStream(t, context.Background(), g, raw)
		watching(2)
		if _, err := st.RevokeKey(context.Background(), k.ID, time.Now(), nil); err != nil {
			t.Fatal(err)
		}
		wantCode(t, waitEnd(t, done), codes.Unauthenticated, mxgatewayv1.ReasonAPIKeyRevoked)
	})

	watching(1)
	select {
	case err := <-other:
		t.Fatalf("another key's stream ended: %v", err)
	default:
	}
	stopOther()
	if err := waitEnd(t, other); !errors.Is(err, context.Canceled) {
		t.Fatalf("the bystander's stream ended with %v", err)
	}
	watching(0)
}
