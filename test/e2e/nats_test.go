package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/mxgatewayv1grpc"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/subject"
	mxclient "github.com/mxgateway/mxgateway/client"
	"github.com/mxgateway/mxgateway/client/shared"
	"github.com/mxgateway/mxgateway/internal/testutil"
	"github.com/mxgateway/mxgateway/test/e2e/harness"
)

// Shared subscriptions on NATS (docs/nats.md): the real gateway with its
// embedded NATS server and real sim workers, consumers on nats.go and the
// SDK's client.Shared.

// readScopes are what a key needs to receive shared values.
var readScopes = []string{"invoke:read", "events:read"}

// natsConn connects to g's NATS server with key the way docs/nats.md says:
// the key as token, replies under the key's own inbox.
func natsConn(t *testing.T, g *harness.Gateway, key newKey) *nats.Conn {
	t.Helper()
	nc, err := natsDial(g, key)
	if err != nil {
		t.Fatalf("connect to NATS %s: %v", g.NATSAddr, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func natsDial(g *harness.Gateway, key newKey) (*nats.Conn, error) {
	return nats.Connect("nats://"+g.NATSAddr, nats.Token(key.raw), nats.CustomInboxPrefix(subject.Inbox(key.id)),
		nats.NoReconnect(), nats.Timeout(10*time.Second))
}

// lease sends a protobuf lease request for refs on nc as key.
func lease(t *testing.T, nc *nats.Conn, keyID string, refs ...string) *mxgatewayv1.SharedLeaseReply {
	t.Helper()
	s, _ := subject.NewSubjects(subject.DefaultGalaxy)
	data, _ := proto.Marshal(&mxgatewayv1.SharedLeaseRequest{Consumer: "e2e", References: refs})
	msg, err := nc.Request(s.Subscribe(keyID), data, 30*time.Second)
	if err != nil {
		t.Fatalf("lease request: %v", err)
	}
	reply := &mxgatewayv1.SharedLeaseReply{}
	if err := proto.Unmarshal(msg.Data, reply); err != nil {
		t.Fatal(err)
	}
	return reply
}

// values collects the SharedValues published on one subject.
type values struct {
	mu  sync.Mutex
	got []*mxgatewayv1.SharedValue
}

func collectValues(t *testing.T, nc *nats.Conn, subj string) *values {
	t.Helper()
	v := &values{}
	_, err := nc.Subscribe(subj, func(m *nats.Msg) {
		sv := &mxgatewayv1.SharedValue{}
		if err := proto.Unmarshal(m.Data, sv); err != nil {
			t.Errorf("%s: not a SharedValue: %v", subj, err)
			return
		}
		v.mu.Lock()
		v.got = append(v.got, sv)
		v.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return v
}

func (v *values) snapshot() []*mxgatewayv1.SharedValue {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]*mxgatewayv1.SharedValue(nil), v.got...)
}

// waitValues waits for n values and checks they are TIC101.PV-like: the
// reference, a double, good quality, increasing per-subject sequences.
func (v *values) waitValues(t *testing.T, ref string, n int) []*mxgatewayv1.SharedValue {
	t.Helper()
	testutil.Eventually(t, 30*time.Second, func() error {
		if got := len(v.snapshot()); got < n {
			return fmt.Errorf("%d of %d values of %s", got, n, ref)
		}
		return nil
	})
	got := v.snapshot()
	for i, sv := range got {
		if sv.GetReference() != ref || sv.GetValue().GetKind() == nil || sv.GetQuality().GetRaw() != 192 || sv.GetSourceTime() == nil {
			t.Fatalf("value %d of %s: %v", i, ref, sv)
		}
		if i > 0 && sv.GetSequence() <= got[i-1].GetSequence() {
			t.Fatalf("sequences not increasing: %d then %d", got[i-1].GetSequence(), sv.GetSequence())
		}
	}
	return got
}

func adviseCount(t *testing.T, g *harness.Gateway) float64 {
	n, _ := scrape(t, g).sum("mxgateway_commands_total", `command="advise"`, `outcome="ok"`)
	return n
}

// TestNATSSharedValues: a nats.go client with an API key declares interest
// in TIC101.PV and receives its values on the documented subject; a second
// consumer (the SDK) shares the one advise and starts with the last value.
func TestNATSSharedValues(t *testing.T) {
	t.Parallel()
	g := harness.Start(t)
	if g.NATSAddr == "" {
		t.Fatal("the gateway printed no NATS address")
	}
	key := createKey(t, g, keyspec{name: "nats-reader", scopes: readScopes, allowRead: []string{"TIC101.*"}})
	nc := natsConn(t, g, key)
	const subj = "mxgw.v1.galaxy.tag.TIC101.PV"
	vals := collectValues(t, nc, subj)
	reply := lease(t, nc, key.id, "TIC101.PV")
	if reply.GetReason() != "" || len(reply.GetEntries()) != 1 || reply.GetEntries()[0].GetReason() != "" {
		t.Fatalf("lease refused: %v", reply)
	}
	if e := reply.GetEntries()[0]; e.GetSubject() != subj || reply.GetTtl().AsDuration() <= 0 {
		t.Fatalf("lease entry %v, ttl %v", e, reply.GetTtl())
	}
	first := vals.waitValues(t, "TIC101.PV", 2)

	// The SDK, a second consumer of the same reference: its first value is
	// the last one (from the lease reply), and the gateway advised once.
	sh, err := shared.Dial(harness.Context(t, 30*time.Second), shared.Options{URL: "nats://" + g.NATSAddr, APIKey: key.raw})
	if err != nil {
		t.Fatal(err)
	}
	defer sh.Close()
	got := make(chan shared.Value, 100)
	sub, err := sh.Subscribe(harness.Context(t, 30*time.Second), []string{"TIC101.PV"}, func(v shared.Value) {
		select {
		case got <- v:
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	v := <-got
	if !v.Last || v.Reference != "TIC101.PV" || v.Sequence < first[0].GetSequence() {
		t.Fatalf("first SDK value %+v, want the last value (sequence >= %d)", v, first[0].GetSequence())
	}
	if _, err := v.Value.AsFloat64(); err != nil || !v.Quality.IsGood() {
		t.Fatalf("SDK value %+v: %v", v, err)
	}
	select {
	case live := <-got:
		if live.Last || live.Sequence <= v.Sequence {
			t.Fatalf("live value %+v after %+v", live, v)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no live value through the SDK")
	}
	if n := adviseCount(t, g); n != 1 {
		t.Fatalf("two consumers of TIC101.PV: %v Advise commands, want 1", n)
	}
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestNATSSecurity: NATS clients authenticate with API keys and get the
// subject permissions of their scopes and constraints, like the gRPC
// security suite.
func TestNATSSecurity(t *testing.T) {
	t.Parallel()
	g := harness.Start(t)
	url := "nats://" + g.NATSAddr
	ctx := harness.Context(t, 2*time.Minute)

	t.Run("no key refused", func(t *testing.T) {
		nc, err := nats.Connect(url, nats.NoReconnect())
		if err == nil {
			nc.Close()
			t.Fatal("connected without a key")
		}
		if !errors.Is(err, nats.ErrAuthorization) {
			t.Fatalf("connect without a key: %v, want an authorization violation", err)
		}
	})
	t.Run("unknown key refused", func(t *testing.T) {
		if _, err := natsDial(g, newKey{id: "x", raw: fakeKey("")}); !errors.Is(err, nats.ErrAuthorization) {
			t.Fatalf("connect with an unknown key: %v", err)
		}
	})
	t.Run("revoked key refused", func(t *testing.T) {
		k := createKey(t, g, keyspec{name: "nats-revoked", scopes: readScopes})
		nc := natsConn(t, g, k) // connected before the revocation
		if _, err := g.Admin().RevokeApiKey(ctx, &mxgatewayv1.RevokeApiKeyRequest{Id: k.id}); err != nil {
			t.Fatal(err)
		}
		if _, err := natsDial(g, k); !errors.Is(err, nats.ErrAuthorization) {
			t.Fatalf("connect with a revoked key: %v", err)
		}
		// The connection made before is closed by the gateway, subscriptions
		// and all.
		testutil.Eventually(t, 30*time.Second, func() error {
			if !nc.IsClosed() {
				return errors.New("the connection of the revoked key is still open")
			}
			return nil
		})
		if _, err := shared.Dial(ctx, shared.Options{URL: url, APIKey: k.raw}); !errors.Is(err, mxclient.ErrUnauthenticated) {
			t.Fatalf("DialShared with a revoked key: %v", err)
		}
	})
	t.Run("key without read rights refused", func(t *testing.T) {
		k := createKey(t, g, keyspec{name: "nats-noread", scopes: []string{"session:open"}})
		sh, err := shared.Dial(ctx, shared.Options{URL: url, APIKey: k.raw})
		if err != nil {
			t.Fatal(err)
		}
		defer sh.Close()
		_, err = sh.Subscribe(ctx, []string{"TIC101.PV"}, func(shared.Value) {})
		if !errors.Is(err, mxclient.ErrPermissionDenied) {
			t.Fatalf("Subscribe without read scopes: %v, want permission denied", err)
		}
	})
	t.Run("reference outside allow_read refused", func(t *testing.T) {
		k := createKey(t, g, keyspec{name: "nats-tic101", scopes: readScopes, allowRead: []string{"TIC101.*"}})
		nc := natsConn(t, g, k)
		r := lease(t, nc, k.id, "TIC101.PV", "FIC101.PV")
		if len(r.GetEntries()) != 2 || r.GetEntries()[0].GetReason() != "" || r.GetEntries()[1].GetReason() != mxgatewayv1.ReasonReferenceForbidden {
			t.Fatalf("lease of TIC101.PV and FIC101.PV with allow_read TIC101.*: %v", r)
		}
		sh, err := shared.Dial(ctx, shared.Options{URL: url, APIKey: k.raw})
		if err != nil {
			t.Fatal(err)
		}
		defer sh.Close()
		// The NATS server itself refuses the subscription.
		if _, err := sh.Subscribe(ctx, []string{"FIC101.PV"}, func(shared.Value) {}); !errors.Is(err, mxclient.ErrPermissionDenied) {
			t.Fatalf("Subscribe FIC101.PV with allow_read TIC101.*: %v", err)
		}
		// No one may publish values but the gateway.
		if err := nc.Publish("mxgw.v1.galaxy.tag.TIC101.PV", []byte("forged")); err != nil {
			t.Fatal(err)
		}
		_ = nc.Flush()
		testutil.Eventually(t, 10*time.Second, func() error {
			if err := nc.LastError(); !errors.Is(err, nats.ErrPermissionViolation) {
				return fmt.Errorf("a publish on a value subject: last error %v, want a permissions violation", err)
			}
			return nil
		})
	})
	t.Run("writes checked against allow_write", func(t *testing.T) {
		k := createKey(t, g, keyspec{name: "nats-writer", scopes: []string{"invoke:write"}, allowWrite: []string{"TIC101.SP"}})
		sh, err := shared.Dial(ctx, shared.Options{URL: url, APIKey: k.raw})
		if err != nil {
			t.Fatal(err)
		}
		defer sh.Close()
		if _, err := sh.Write(ctx, "TIC101.SP", mxclient.MustValue(70.5)); err != nil {
			t.Fatalf("write TIC101.SP: %v", err)
		}
		_, err = sh.Write(ctx, "TIC101.HiLimit", mxclient.MustValue(99.0))
		var se *shared.Error
		if !errors.As(err, &se) || se.Reason != mxgatewayv1.ReasonReferenceForbidden {
			t.Fatalf("write TIC101.HiLimit with allow_write TIC101.SP: %v", err)
		}
		// The denial is audited like the gRPC API's.
		testutil.Eventually(t, 10*time.Second, func() error {
			r, err := g.Admin().ListAuditEvents(ctx, &mxgatewayv1.ListAuditEventsRequest{ActorKeyId: k.id})
			if err != nil {
				return err
			}
			for _, e := range r.GetEvents() {
				if e.GetOutcome() == "denied" && strings.Contains(e.GetTarget(), "TIC101.HiLimit") {
					return nil
				}
			}
			return fmt.Errorf("no audit row for the refused write among %v", r.GetEvents())
		})
		// A reader cannot write at all: the server refuses the publish.
		rk := createKey(t, g, keyspec{name: "nats-reader-only", scopes: readScopes})
		rsh, err := shared.Dial(ctx, shared.Options{URL: url, APIKey: rk.raw})
		if err != nil {
			t.Fatal(err)
		}
		defer rsh.Close()
		wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		if _, err := rsh.Write(wctx, "TIC101.SP", mxclient.MustValue(1.0)); err == nil {
			t.Fatal("a key without invoke:write wrote")
		}
	})
}

// TestNATSRestartKeepsLastValue: after a gateway restart a consumer that
// declares its interest again starts from the last value (kept in the
// JetStream bucket under the data directory) and the sequence goes on.
func TestNATSRestartKeepsLastValue(t *testing.T) {
	t.Parallel()
	g := harness.Start(t)
	key := createKey(t, g, keyspec{name: "nats-restart", scopes: readScopes})
	nc := natsConn(t, g, key)
	vals := collectValues(t, nc, "mxgw.v1.galaxy.tag.TIC101.PV")
	if r := lease(t, nc, key.id, "TIC101.PV"); r.GetEntries()[0].GetReason() != "" {
		t.Fatalf("lease: %v", r)
	}
	before := vals.waitValues(t, "TIC101.PV", 2)
	nc.Close()
	if err := g.Stop(); err != nil {
		t.Fatal(err)
	}
	last := before[len(before)-1].GetSequence()

	g2 := g.Restart(t)
	nc2 := natsConn(t, g2, key)
	vals2 := collectValues(t, nc2, "mxgw.v1.galaxy.tag.TIC101.PV")
	r := lease(t, nc2, key.id, "TIC101.PV")
	e := r.GetEntries()[0]
	if e.GetReason() != "" || e.GetLast() == nil || e.GetLast().GetSequence() < last {
		t.Fatalf("lease after restart: %v, want the last value (sequence >= %d)", r, last)
	}
	// The sequence goes on from the stored one: the first value after the
	// restart is newer than every value before it (the lease reply's last
	// value may already be that first live one).
	after := vals2.waitValues(t, "TIC101.PV", 1)
	if after[0].GetSequence() <= last {
		t.Fatalf("first live sequence %d after the restart, last before it %d", after[0].GetSequence(), last)
	}
}

// TestNATSPortTaken: a gateway whose NATS address is taken does not start,
// and says which address and flag.
func TestNATSPortTaken(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dir := t.TempDir()
	addr := l.Addr().String()
	code, out, errOut := runBinary(t, []string{"TMPDIR=" + dir}, "serve", "--listen=127.0.0.1:0", "--http-listen=127.0.0.1:0",
		"--nats-listen="+addr, "--data-dir="+filepath.Join(dir, "data"), "--sim-profile=test")
	if code != 1 || strings.Contains(out, "listening on") {
		t.Fatalf("serve with NATS on a taken port = exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "cannot listen for NATS on "+addr) || !strings.Contains(errOut, "--nats-listen") {
		t.Fatalf("the refusal does not name the NATS address and flag:\n%s", errOut)
	}
}

// TestNATSLeafNode: a second gateway's embedded server joins the first as
// a leaf node (with the first's admin key); a value a consumer of the
// second gateway leases reaches a consumer connected to the first, and a
// leaf with a non-admin key is refused.
func TestNATSLeafNode(t *testing.T) {
	t.Parallel()
	hub := harness.Start(t, "--nats-leaf-listen=127.0.0.1:0")
	if hub.NATSLeafAddr == "" {
		t.Fatal("the hub printed no leaf-node address")
	}
	reader := createKey(t, hub, keyspec{name: "leaf-refused", scopes: readScopes})
	refused := harness.Start(t, "--nats-leaf-remotes=nats-leaf://"+reader.raw+"@"+hub.NATSLeafAddr)
	leaf := harness.Start(t, "--nats-leaf-remotes=nats-leaf://"+hub.AdminKey+"@"+hub.NATSLeafAddr)

	// A consumer on the hub listens; a consumer on the leaf declares the
	// interest, which the leaf gateway takes (its own server is nearest)
	// and serves itself or forwards to the hub, whichever owns TIC101.PV.
	hubKey := createKey(t, hub, keyspec{name: "hub-reader", scopes: readScopes})
	onHub := collectValues(t, natsConn(t, hub, hubKey), "mxgw.v1.galaxy.tag.TIC101.PV")
	leafKey := createKey(t, leaf, keyspec{name: "leaf-reader", scopes: readScopes})
	testutil.Eventually(t, 30*time.Second, func() error {
		nc, err := natsDial(leaf, leafKey)
		if err != nil {
			return err
		}
		defer nc.Close()
		if n := len(onHub.snapshot()); n > 0 {
			return nil
		}
		r := lease(t, nc, leafKey.id, "TIC101.PV")
		if e := r.GetEntries(); len(e) != 1 || e[0].GetReason() != "" {
			return fmt.Errorf("lease on the leaf: %v", r)
		}
		return fmt.Errorf("no value on the hub yet")
	})
	onHub.waitValues(t, "TIC101.PV", 1)
	// One of the two advises it (the reference's owner, docs/nats.md).
	if h, l := adviseCount(t, hub), adviseCount(t, leaf); h+l != 1 {
		t.Fatalf("the hub advised %v times and the leaf %v, want 1 in all", h, l)
	}
	// The leaf with a reader's key was refused, and the hub audited it.
	_ = refused
	testutil.Eventually(t, 30*time.Second, func() error {
		r, err := hub.Admin().ListAuditEvents(harness.Context(t, 10*time.Second), &mxgatewayv1.ListAuditEventsRequest{Action: "nats.leaf"})
		if err != nil {
			return err
		}
		for _, e := range r.GetEvents() {
			if e.GetActorKeyId() == reader.id && e.GetOutcome() == "denied" {
				return nil
			}
		}
		return fmt.Errorf("no denied nats.leaf audit row for the reader's key: %v", r.GetEvents())
	})
}

// TestNATSLeaseLapses: the advise is released when the last lease lapses
// (a consumer that stops renewing), not while another lease holds it.
func TestNATSLeaseLapses(t *testing.T) {
	t.Parallel()
	g := harness.Start(t)
	key := createKey(t, g, keyspec{name: "nats-lapse", scopes: readScopes})
	nc := natsConn(t, g, key)
	unadvised := func() float64 {
		n, _ := scrape(t, g).sum("mxgateway_commands_total", `command="un_advise"`, `outcome="ok"`)
		return n
	}
	leaseAs := func(consumer string, ttl time.Duration, release bool) *mxgatewayv1.SharedLeaseReply {
		data, _ := proto.Marshal(&mxgatewayv1.SharedLeaseRequest{Consumer: consumer, References: []string{"TIC101.PV"},
			Ttl: durationpb.New(ttl), Release: release})
		msg, err := nc.Request("mxgw.v1.galaxy.subscribe."+key.id, data, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		r := &mxgatewayv1.SharedLeaseReply{}
		if err := proto.Unmarshal(msg.Data, r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	// "lapsing" holds the reference for 5s and never renews; "leaving"
	// releases its lease at once.
	for _, c := range []struct {
		name string
		ttl  time.Duration
	}{{"lapsing", 5 * time.Second}, {"leaving", time.Minute}} {
		if r := leaseAs(c.name, c.ttl, false); r.GetEntries()[0].GetReason() != "" || r.GetTtl().AsDuration() != c.ttl {
			t.Fatalf("lease %s: %v", c.name, r)
		}
	}
	if n := adviseCount(t, g); n != 1 {
		t.Fatalf("two leases: %v advises, want 1", n)
	}
	leaseAs("leaving", time.Minute, true)
	if n := unadvised(); n != 0 {
		t.Fatalf("a lease remains, yet %v UnAdvise", n)
	}
	testutil.Eventually(t, 30*time.Second, func() error {
		if n := unadvised(); n != 1 {
			return fmt.Errorf("%v UnAdvise after the last lease lapsed, want 1", n)
		}
		return nil
	})
}

// TestNATSDeployEvents: a deploy of the Galaxy is published on
// mxgw.v1.<galaxy>.deploy to the keys with read rights.
func TestNATSDeployEvents(t *testing.T) {
	t.Parallel()
	dir := startRuntime(t)
	g := harness.Start(t, "--sim-galaxy="+dir)
	key := createKey(t, g, keyspec{name: "nats-deploys", scopes: readScopes})
	nc := natsConn(t, g, key)
	got := make(chan *mxgatewayv1.SharedDeployEvent, 10)
	if _, err := nc.Subscribe("mxgw.v1.galaxy.deploy", func(m *nats.Msg) {
		ev := &mxgatewayv1.SharedDeployEvent{}
		if proto.Unmarshal(m.Data, ev) == nil {
			got <- ev
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	info, err := mxgatewayv1grpc.NewGalaxyClient(g.Conn()).GetGalaxy(harness.Context(t, step), &mxgatewayv1.GetGalaxyRequest{})
	if err != nil {
		t.Fatal(err)
	}
	before := info.GetGalaxy().GetDeploySequence()
	if err := galaxyAdmin(t, dir, "deploy"); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-got:
		if ev.GetDeploySequence() <= before || ev.GetGatewayTime() == nil {
			t.Fatalf("deploy event %v after deploy sequence %d", ev, before)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no deploy event on mxgw.v1.galaxy.deploy")
	}
}

// TestNATSFilters: a lease's deadband suppresses small changes and its
// at_least_every republishes the last value, with new sequences.
func TestNATSFilters(t *testing.T) {
	t.Parallel()
	g := harness.Start(t)
	key := createKey(t, g, keyspec{name: "nats-filters", scopes: readScopes})
	sh, err := shared.Dial(harness.Context(t, 30*time.Second), shared.Options{URL: "nats://" + g.NATSAddr, APIKey: key.raw,
		Deadband: 1000, AtLeastEvery: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer sh.Close()
	var mu sync.Mutex
	var got []shared.Value
	sub, err := sh.Subscribe(harness.Context(t, 30*time.Second), []string{"TIC101.PV"}, func(v shared.Value) {
		mu.Lock()
		got = append(got, v)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	// TIC101.PV is a sine of amplitude 15: with a deadband of 1000 every
	// value after the first is a republication of it.
	testutil.Eventually(t, 30*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(got) < 4 {
			return fmt.Errorf("%d values", len(got))
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	for i, v := range got[1:] {
		if !v.Value.Equal(got[0].Value) || !v.SourceTime.Equal(got[0].SourceTime) || v.Sequence <= got[i].Sequence {
			t.Fatalf("value %d %+v after %+v: want the same value republished with a new sequence", i+1, v, got[i])
		}
	}
}

// heldAdvises is the number of advises g's shared session holds: its
// Advise commands less its UnAdvise commands (the test opens no other
// session on g).
func heldAdvises(t *testing.T, g *harness.Gateway) float64 {
	m := scrape(t, g)
	a, _ := m.sum("mxgateway_commands_total", `command="advise"`, `outcome="ok"`)
	u, _ := m.sum("mxgateway_commands_total", `command="un_advise"`, `outcome="ok"`)
	return a - u
}

// sharedConsumer is an SDK consumer of one gateway, recording what it
// receives.
type sharedConsumer struct {
	sh  *shared.Client
	sub *shared.Subscription
	mu  sync.Mutex
	got []shared.Value
}

func consume(t *testing.T, g *harness.Gateway, key newKey, refs ...string) *sharedConsumer {
	t.Helper()
	c := &sharedConsumer{}
	var err error
	c.sh, err = shared.Dial(harness.Context(t, 30*time.Second), shared.Options{URL: "nats://" + g.NATSAddr, APIKey: key.raw,
		Lease: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.sh.Close() })
	c.sub, err = c.sh.Subscribe(harness.Context(t, 30*time.Second), refs, func(v shared.Value) {
		c.mu.Lock()
		c.got = append(c.got, v)
		c.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// waitLive waits for a live value of ref with a sequence past after and
// returns its sequence.
func (c *sharedConsumer) waitLive(t *testing.T, ref string, after uint64) uint64 {
	t.Helper()
	var seq uint64
	testutil.Eventually(t, 60*time.Second, func() error {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, v := range c.got {
			if v.Reference == ref && !v.Last && v.Sequence > after {
				seq = v.Sequence
				return nil
			}
		}
		return fmt.Errorf("no live value of %s past sequence %d (%d values)", ref, after, len(c.got))
	})
	return seq
}

func (c *sharedConsumer) sequences(ref string) map[uint64]bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := map[uint64]bool{}
	for _, v := range c.got {
		if v.Reference == ref && !v.Last {
			m[v.Sequence] = true
		}
	}
	return m
}

// TestNATSTwoGatewaysShareInterest: two gateways on one simulated Galaxy,
// the second's embedded NATS server a leaf node of the first's, hold one
// advise per reference between them whichever gateway its consumers use;
// killing the one that advises moves the advise to the other without
// losing its consumers; the killed gateway, restarted, takes its
// consumers back (they declare again and start from the last value) and
// the two still hold one advise per reference.
func TestNATSTwoGatewaysShareInterest(t *testing.T) {
	t.Parallel()
	rt := startRuntime(t)
	// A fixed leaf port, so that the hub restarted in place is found again
	// by its leaf.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	leafAddr := l.Addr().String()
	l.Close()
	hub := harness.Start(t, "--sim-galaxy="+rt, "--nats-leaf-listen="+leafAddr)
	leaf := harness.Start(t, "--sim-galaxy="+rt, "--nats-leaf-remotes=nats-leaf://"+hub.AdminKey+"@"+leafAddr)
	gws := map[string]*harness.Gateway{"hub": hub, "leaf": leaf}
	for name, g := range gws {
		testutil.Eventually(t, 60*time.Second, func() error {
			if !strings.Contains(g.Stderr.String(), "peer gateway joined") {
				return fmt.Errorf("the %s gateway has not seen the other", name)
			}
			return nil
		})
	}
	keys := map[string]newKey{}
	for name, g := range gws {
		keys[name] = createKey(t, g, keyspec{name: "shared-" + name, scopes: []string{"invoke:read", "events:read", "invoke:write"}})
	}
	refs := []string{"TIC101.PV", "TIC101.SP"}
	onHub, onLeaf := consume(t, hub, keys["hub"], refs...), consume(t, leaf, keys["leaf"], refs...)

	held := func(want float64, gs ...*harness.Gateway) {
		t.Helper()
		testutil.Eventually(t, 60*time.Second, func() error {
			sum, each := 0.0, []float64{}
			for _, g := range gs {
				n := heldAdvises(t, g)
				sum += n
				each = append(each, n)
			}
			if sum != want {
				return fmt.Errorf("advises held %v (each %v), want %v in all", sum, each, want)
			}
			return nil
		})
	}
	held(2, hub, leaf)
	// Both consumers receive the one publication of each value: the same
	// sequences.
	seq := onHub.waitLive(t, "TIC101.PV", 0)
	onLeaf.waitLive(t, "TIC101.PV", seq)
	testutil.Eventually(t, 30*time.Second, func() error {
		h, l := onHub.sequences("TIC101.PV"), onLeaf.sequences("TIC101.PV")
		for s := range h {
			if l[s] {
				return nil
			}
		}
		return fmt.Errorf("no sequence seen by both consumers (hub %v, leaf %v)", h, l)
	})
	held(2, hub, leaf)

	// A write through either gateway reaches the Galaxy without an advise of
	// its own.
	for name, g := range gws {
		w, err := shared.Dial(harness.Context(t, 30*time.Second), shared.Options{URL: "nats://" + g.NATSAddr, APIKey: keys[name].raw})
		if err != nil {
			t.Fatal(err)
		}
		want := 40.0 + float64(len(name))
		if _, err := w.Write(harness.Context(t, 30*time.Second), "TIC101.SP", mxclient.MustValue(want)); err != nil {
			t.Fatalf("write through the %s gateway: %v", name, err)
		}
		w.Close()
		for _, c := range []*sharedConsumer{onHub, onLeaf} {
			testutil.Eventually(t, 30*time.Second, func() error {
				c.mu.Lock()
				defer c.mu.Unlock()
				for _, v := range c.got {
					if f, err := v.Value.AsFloat64(); err == nil && v.Reference == "TIC101.SP" && f == want {
						return nil
					}
				}
				return fmt.Errorf("TIC101.SP = %v (written through the %s gateway) not received", want, name)
			})
		}
	}
	held(2, hub, leaf)

	// Kill a gateway that advises (the one with more advises): the other
	// takes its references over and its consumer keeps receiving.
	victim, survivor, victimName := hub, leaf, "hub"
	if heldAdvises(t, leaf) > heldAdvises(t, hub) {
		victim, survivor, victimName = leaf, hub, "leaf"
	}
	survivorC := map[*harness.Gateway]*sharedConsumer{hub: onHub, leaf: onLeaf}[survivor]
	before := survivorC.waitLive(t, "TIC101.PV", 0)
	t.Logf("killing the %s gateway (advises held: hub %v, leaf %v)", victimName, heldAdvises(t, hub), heldAdvises(t, leaf))
	victim.Kill()
	survivorC.waitLive(t, "TIC101.PV", before+2)
	held(2, survivor)

	// The killed gateway restarts (in place for the hub, whose leaf
	// reconnects); its consumer declares again and starts from the last
	// value; the two hold one advise per reference again.
	back := victim.Restart(t)
	testutil.Eventually(t, 60*time.Second, func() error {
		if strings.Count(survivor.Stderr.String(), "peer gateway joined") < 2 {
			return fmt.Errorf("the survivor has not seen the restarted gateway")
		}
		return nil
	})
	last := survivorC.waitLive(t, "TIC101.PV", 0)
	again := consume(t, back, keys[victimName], refs...)
	again.mu.Lock()
	first := again.got
	again.mu.Unlock()
	if len(first) == 0 || first[0].Sequence < last {
		t.Fatalf("the re-declared consumer's first values %+v: want the last value (sequence >= %d)", first, last)
	}
	seq = again.waitLive(t, "TIC101.PV", last)
	survivorC.waitLive(t, "TIC101.PV", seq)
	held(2, survivor, back)
}

// TestNATSAlarms: alarm transitions are published on
// mxgw.v1.<galaxy>.alarm.<alarm reference> to keys with alarms:read whose
// allow_read covers the alarm; other keys may not subscribe there.
func TestNATSAlarms(t *testing.T) {
	t.Parallel()
	g := harness.Start(t, "--alarms=on")
	ctx := harness.Context(t, 2*time.Minute)
	c := sdkDial(t, ctx, g, g.AdminKey)
	waitReady(t, ctx, c.Alarms())

	valve := createKey(t, g, keyspec{name: "nats-alarms-valve", scopes: []string{"alarms:read"}, allowRead: []string{"Valve1.*"}})
	nc := natsConn(t, g, valve)
	const hihi = "Valve1.Position.HiHi"
	got := make(chan *mxgatewayv1.StreamAlarmsResponse, 100)
	if _, err := nc.Subscribe("mxgw.v1.galaxy.alarm.Valve1.>", func(m *nats.Msg) {
		msg := &mxgatewayv1.StreamAlarmsResponse{}
		if err := proto.Unmarshal(m.Data, msg); err != nil {
			t.Errorf("%s: not a StreamAlarmsResponse: %v", m.Subject, err)
			return
		}
		if ref := msg.GetTransition().GetAlarm().GetReference(); m.Subject != "mxgw.v1.galaxy.alarm."+ref {
			t.Errorf("transition of %s on %s", ref, m.Subject)
		}
		select {
		case got <- msg:
		default:
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	// Keys without alarms:read, or whose allow_read does not cover the
	// alarm, may not subscribe to it.
	for _, k := range []keyspec{
		{name: "nats-alarms-tic", scopes: []string{"alarms:read"}, allowRead: []string{"TIC101.*"}},
		{name: "nats-alarms-none", scopes: readScopes},
	} {
		other := natsConn(t, g, createKey(t, g, k))
		if _, err := other.Subscribe("mxgw.v1.galaxy.alarm."+hihi, func(*nats.Msg) {}); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, 30*time.Second, func() error {
			if err := other.LastError(); !errors.Is(err, nats.ErrPermissionViolation) {
				return fmt.Errorf("%s subscribing to %s: last error %v, want a permissions violation", k.name, hihi, err)
			}
			return nil
		})
	}

	s, err := c.OpenSession(ctx, t.Name())
	if err != nil {
		t.Fatal(err)
	}
	next := func(kind mxgatewayv1.AlarmTransitionKind, after uint64) *mxgatewayv1.StreamAlarmsResponse {
		t.Helper()
		deadline := time.After(60 * time.Second)
		for {
			select {
			case msg := <-got:
				tr := msg.GetTransition()
				if tr.GetAlarm().GetReference() == hihi && tr.GetKind() == kind {
					if msg.GetSequence() <= after {
						t.Fatalf("sequence %d after %d", msg.GetSequence(), after)
					}
					return msg
				}
			case <-deadline:
				t.Fatalf("no %s transition of %s on NATS", kind, hihi)
			}
		}
	}
	write(t, ctx, s, "Valve1.Position", 97.0)
	raise := next(kRaise, 0)
	if a := raise.GetTransition().GetAlarm(); a.GetState() != sUnackAlm || a.GetValue().GetFloatValue() != 97 {
		t.Fatalf("raise on NATS: %v", raise)
	}
	write(t, ctx, s, "Valve1.Position", 50.0)
	ret := next(kReturn, raise.GetSequence())
	if ret.GetTransition().GetPrevious() != sUnackAlm || ret.GetTransition().GetAlarm().GetState() != sUnackRtn {
		t.Fatalf("return on NATS: %v", ret)
	}
}
