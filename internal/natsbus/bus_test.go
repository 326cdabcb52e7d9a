package natsbus

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/subject"
	"github.com/mxgateway/mxgateway/internal/auth"
	"github.com/mxgateway/mxgateway/internal/session"
	"github.com/mxgateway/mxgateway/internal/store"
	"github.com/mxgateway/mxgateway/internal/testutil"
)

// errNoWorker is the start failure of this test's session manager.
var errNoWorker = errors.New("no worker in this test")

// TestBusLifecycle: the embedded server authenticates with the real key
// store, a lease the gateway cannot advise (no worker) is answered with
// UNAVAILABLE, revoking the key closes its connection, and Close leaves no
// goroutine behind.
func TestBusLifecycle(t *testing.T) {
	testutil.CheckLeaks(t)
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.OpenInDir(ctx, dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	peppers, err := auth.LoadPeppers(auth.PepperConfig{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := auth.NewManager(auth.ManagerConfig{Store: st, Peppers: peppers})
	if err != nil {
		t.Fatal(err)
	}
	raw, k, err := mgr.CreateKey(ctx, auth.KeySpec{Name: "reader", Scopes: []auth.Scope{auth.ScopeInvokeRead, auth.ScopeEventsRead}},
		auth.Actor{KeyID: auth.CLIActor})
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := session.New(session.Options{Acquire: func(context.Context) (string, session.Worker, error) {
		return "", nil, errNoWorker
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer sessions.Close()
	b, err := Start(ctx, Options{Mode: ModeEmbedded, Listen: "127.0.0.1:0", StoreDir: filepath.Join(dir, "nats"), Galaxy: "g",
		Lease: time.Second, LeaseMax: time.Minute, MaxReferences: 10, MaxLeasesPerKey: 10,
		Authenticator: mgr, WatchRevocation: mgr.WatchRevocation, Sessions: sessions})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(ctx)

	if _, err := nats.Connect("nats://"+b.Addr(), nats.NoReconnect()); !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("connect without a key: %v", err)
	}
	nc, err := nats.Connect("nats://"+b.Addr(), nats.Token(raw.Reveal()), nats.CustomInboxPrefix(subject.Inbox(k.ID)), nats.NoReconnect())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	data, _ := proto.Marshal(&mxgatewayv1.SharedLeaseRequest{Consumer: "t", References: []string{"A.B", "A..B"}})
	msg, err := nc.Request(b.Subjects().Subscribe(k.ID), data, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	r := &mxgatewayv1.SharedLeaseReply{}
	if err := proto.Unmarshal(msg.Data, r); err != nil {
		t.Fatal(err)
	}
	if e := r.GetEntries(); len(e) != 2 || e[0].GetReason() != mxgatewayv1.ReasonUnavailable || e[1].GetReason() != mxgatewayv1.ReasonInvalidRequest {
		t.Fatalf("lease without a worker: %v", r)
	}
	if b.Advised() != 0 {
		t.Fatalf("%d references advised", b.Advised())
	}
	// Another key's subject is not this key's to publish on.
	if err := nc.Publish(b.Subjects().Subscribe("someoneelse"), data); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		if err := nc.LastError(); !errors.Is(err, nats.ErrPermissionViolation) {
			return fmt.Errorf("publish on another key's subject: last error %v, want a permissions violation", err)
		}
		return nil
	})
	// Revoking the key closes its connection; it cannot connect again.
	if _, err := mgr.RevokeKey(ctx, k.ID, auth.Actor{KeyID: auth.CLIActor}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		if !nc.IsClosed() {
			return errors.New("the revoked key's connection is still open")
		}
		return nil
	})
	if _, err := nats.Connect("nats://"+b.Addr(), nats.Token(raw.Reveal()), nats.NoReconnect()); !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("connect with the revoked key: %v", err)
	}
	b.Close(ctx)
	b.Close(ctx) // idempotent
}
