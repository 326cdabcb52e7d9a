package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/client"
	"github.com/mxgateway/mxgateway/internal/tlsutil"
	"github.com/mxgateway/mxgateway/test/e2e/harness"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
)

// keyRE is the shape of a full API key: mxgw_<16 base32 chars>_<43 base64url chars>.
var keyRE = regexp.MustCompile(`^mxgw_([a-z2-7]{16})_([A-Za-z0-9_-]{43})$`)

// secretOf returns the secret part of a full key.
func secretOf(t *testing.T, key string) string {
	t.Helper()
	m := keyRE.FindStringSubmatch(key)
	if m == nil {
		t.Fatalf("%q is not a full API key", key)
	}
	return m[2]
}

// idOf returns the id part of a full key.
func idOf(t *testing.T, key string) string {
	t.Helper()
	m := keyRE.FindStringSubmatch(key)
	if m == nil {
		t.Fatalf("%q is not a full API key", key)
	}
	return m[1]
}

// dialKey connects with key only (no admin key) and no retry delays.
func dialKey(t *testing.T, ctx context.Context, g *harness.Gateway, key string, opts ...client.Option) *client.Client {
	t.Helper()
	all := []client.Option{client.WithEventBackoff(client.Backoff{Initial: 10 * time.Millisecond, Max: 200 * time.Millisecond, Factor: 2, MaxAttempts: 5})}
	if key != "" {
		all = append(all, client.WithAPIKey(key))
	}
	if g.CAFile != "" {
		all = append(all, client.WithCAFile(g.CAFile))
	}
	c, err := client.Dial(ctx, g.GRPCAddr, append(all, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// wantGatewayError checks that err is a *GatewayError with code and reason
// and that it matches sentinel with errors.Is.
func wantGatewayError(t *testing.T, what string, err error, code codes.Code, reason string, sentinel error) *client.GatewayError {
	t.Helper()
	var ge *client.GatewayError
	if !errors.As(err, &ge) {
		t.Fatalf("%s: %v (%T), want a *client.GatewayError", what, err, err)
	}
	if ge.Code != code || ge.Reason != reason {
		t.Fatalf("%s: code %v reason %q (%v), want %v %q", what, ge.Code, ge.Reason, err, code, reason)
	}
	if !errors.Is(err, sentinel) {
		t.Fatalf("%s: errors.Is(%v, %v) = false", what, err, sentinel)
	}
	if status.Code(err) != code {
		t.Fatalf("%s: status.Code = %v, want %v", what, status.Code(err), code)
	}
	return ge
}

// eventsErr runs Events until it ends and returns its final error (nil when
// it ended without one); it fails the test if an event arrives.
func eventsErr(t *testing.T, ctx context.Context, s *client.Session) error {
	t.Helper()
	for ev, err := range s.Events(ctx) {
		if err != nil {
			return err
		}
		t.Fatalf("unexpected event %v", ev)
	}
	return nil
}

// TestMissingAndBadKeys: without a key, with a malformed one and with an
// unknown one, every call but health fails with ErrUnauthenticated.
func TestMissingAndBadKeys(t *testing.T) {
	leakCheck(t)
	g := harness.Start(t)
	ctx := harness.Context(t, 60*time.Second)
	if !keyRE.MatchString(g.AdminKey) {
		t.Fatalf("first-run admin key %q has the wrong shape", g.AdminKey)
	}
	keys := map[string]struct{ key, message string }{
		"none":         {"", "missing API key"},
		"garbage":      {"garbage", "malformed API key"},
		"unknown":      {"mxgw_aaaaaaaaaaaaaaaa_" + strings.Repeat("A", 43), "invalid API key"},
		"wrong secret": {"mxgw_" + idOf(t, g.AdminKey) + "_" + strings.Repeat("A", 43), "invalid API key"},
	}
	for name, tc := range keys {
		key := tc.key
		t.Run(name, func(t *testing.T) {
			c := dialKey(t, ctx, g, key) // Dial's probe is the exempt health check
			h, err := c.Health(ctx)
			if err != nil || !h.Serving {
				t.Fatalf("health without a valid key: %+v %v", h, err)
			}
			_, err = c.OpenSession(ctx, "nokey")
			ge := wantGatewayError(t, "OpenSession", err, codes.Unauthenticated, mxgatewayv1.ReasonUnauthenticated, client.ErrUnauthenticated)
			if !client.IsUnauthenticated(err) || !ge.Permanent() || client.IsPermissionDenied(err) {
				t.Fatalf("OpenSession: helpers disagree on %v", err)
			}
			if !strings.HasPrefix(ge.Message, tc.message) {
				t.Fatalf("OpenSession: message %q, want %q", ge.Message, tc.message)
			}
			_, err = c.ListSessions(ctx)
			wantGatewayError(t, "ListSessions", err, codes.Unauthenticated, mxgatewayv1.ReasonUnauthenticated, client.ErrUnauthenticated)
			_, err = c.Admin().ListAPIKeys(ctx)
			wantGatewayError(t, "ListAPIKeys", err, codes.Unauthenticated, mxgatewayv1.ReasonUnauthenticated, client.ErrUnauthenticated)
			// Events on someone's session: a permanent error, not a retry loop.
			s, err := c.AttachSession("whatever")
			if err != nil {
				t.Fatal(err)
			}
			err = eventsErr(t, ctx, s)
			wantGatewayError(t, "Events", err, codes.Unauthenticated, mxgatewayv1.ReasonUnauthenticated, client.ErrUnauthenticated)
		})
	}
}

// TestScopedKey: a key with some scopes can do exactly what they grant;
// everything else fails with ErrPermissionDenied naming the missing scope.
func TestScopedKey(t *testing.T) {
	leakCheck(t)
	g := harness.Start(t)
	ctx := harness.Context(t, 90*time.Second)

	// Read-only: open and close sessions, read; no writes, no events, no
	// secured calls, no admin.
	key := g.CreateKey(t, "reader", []string{"session:open", "session:close", "invoke:read"}, nil, nil)
	c := dialKey(t, ctx, g, key)
	s := open(t, ctx, c)
	res, err := s.Read(ctx, "Tank1.Material")
	if err != nil || res[0].Err() != nil {
		t.Fatalf("read with invoke:read: %v %v", err, res)
	}
	if v, _ := res[0].Value.AsString(); v != "Ethanol" {
		t.Fatalf("Tank1.Material = %v", res[0].Value)
	}
	mx := s.MX()
	h, err := s.ServerHandle(ctx)
	if err != nil {
		t.Fatal(err)
	}
	item, err := mx.AddItem(ctx, h, "TIC101.SP")
	if err != nil {
		t.Fatal(err)
	}
	if err := mx.Advise(ctx, h, item); err != nil {
		t.Fatal(err)
	}
	denied := func(what, scope string, err error) {
		t.Helper()
		ge := wantGatewayError(t, what, err, codes.PermissionDenied, mxgatewayv1.ReasonPermissionDenied, client.ErrPermissionDenied)
		if !client.IsPermissionDenied(err) || client.IsUnauthenticated(err) || !ge.Permanent() {
			t.Fatalf("%s: helpers disagree on %v", what, err)
		}
		if !strings.Contains(ge.Message, "missing scope "+scope) {
			t.Fatalf("%s: message %q does not name scope %s", what, ge.Message, scope)
		}
	}
	denied("Write", "invoke:write", mx.Write(ctx, h, item, client.MustValue(50.0), 0))
	_, err = mx.WriteBulk(ctx, h, []client.WriteEntry{{ItemHandle: item, Value: client.MustValue(50.0)}})
	denied("WriteBulk", "invoke:write", err)
	_, err = mx.AuthenticateUser(ctx, h, "operator", "operator1")
	denied("AuthenticateUser", "invoke:secure", err)
	denied("WriteSecured", "invoke:secure", mx.WriteSecured(ctx, h, item, 1, 1, client.MustValue(50.0)))
	denied("Events", "events:read", eventsErr(t, ctx, s))
	_, err = s.WriteValue(ctx, "TIC101.SP", 50.0) // needs an event stream, which is refused
	if !client.IsPermissionDenied(err) {
		t.Fatalf("WriteValue without events:read and invoke:write: %v", err)
	}
	_, err = c.Admin().ListAPIKeys(ctx)
	denied("ListAPIKeys", "admin", err)
	_, _, err = c.Admin().CreateAPIKey(ctx, client.NewAPIKey{Name: "escalate", Scopes: []string{"admin"}})
	denied("CreateAPIKey", "admin", err)
	_, err = c.Admin().ListAuditEvents(ctx, &mxgatewayv1.ListAuditEventsRequest{})
	denied("ListAuditEvents", "admin", err)
	if err := s.Close(); err != nil {
		t.Fatalf("close with session:close: %v", err)
	}

	// Without session:open nothing can start.
	closer := dialKey(t, ctx, g, g.CreateKey(t, "no-open", []string{"invoke:read", "events:read"}, nil, nil))
	_, err = closer.OpenSession(ctx, "x")
	denied("OpenSession", "session:open", err)

	// Without session:close the session stays (it ends with its lease or
	// an admin closes it).
	noClose := dialKey(t, ctx, g, g.CreateKey(t, "no-close", []string{"session:open", "invoke:read"}, nil, nil),
		client.WithoutSessionCleanup())
	s2 := open(t, ctx, noClose)
	denied("CloseSession", "session:close", s2.Close())
	admin := dialKey(t, ctx, g, g.AdminKey)
	orphan, err := admin.AttachSession(s2.ID())
	if err != nil {
		t.Fatal(err)
	}
	if err := orphan.Close(); err != nil {
		t.Fatalf("admin closing another key's session: %v", err)
	}

	// The full set of non-admin scopes writes and streams.
	full := dialKey(t, ctx, g, g.CreateKey(t, "operator", []string{"session:open", "session:close", "invoke:read",
		"invoke:write", "invoke:secure", "events:read"}, nil, nil))
	fs := open(t, ctx, full)
	if _, err := fs.WriteValue(ctx, "TIC101.SP", 51.5); err != nil {
		t.Fatalf("WriteValue with invoke:write and events:read: %v", err)
	}
	uid, err := fs.Authenticate(ctx, "operator", "operator1")
	if err != nil {
		t.Fatalf("Authenticate with invoke:secure: %v", err)
	}
	if _, err := fs.WriteValue(ctx, "Pump1.StartCmd", true, client.Secured(uid, uid)); err != nil {
		t.Fatalf("secured write with invoke:secure: %v", err)
	}
	_, err = full.Admin().ListAPIKeys(ctx)
	denied("ListAPIKeys without admin", "admin", err)
}

// TestReferenceConstraints: a key allowed to read only Tank1.* and write
// only Tank1.Material. Bulk commands carry typed per-entry denials; single
// commands fail with REFERENCE_NOT_ALLOWED.
func TestReferenceConstraints(t *testing.T) {
	leakCheck(t)
	g := harness.Start(t)
	ctx := harness.Context(t, 90*time.Second)
	key := g.CreateKey(t, "tank1", []string{"session:open", "session:close", "invoke:read", "invoke:write", "events:read"},
		[]string{"Tank1.*"}, []string{"Tank1.Material"})
	c := dialKey(t, ctx, g, key)
	s := open(t, ctx, c)
	log := watchEvents(t, s)
	mx := s.MX()
	h, err := mx.Register(ctx, "constrained")
	if err != nil {
		t.Fatal(err)
	}
	refs := []string{"Tank1.Material", "TIC101.PV", "tank1.volume"} // patterns ignore case
	sub, err := mx.SubscribeBulk(ctx, h, refs, false)
	if err != nil || len(sub) != 3 {
		t.Fatalf("SubscribeBulk failed as a whole: %v %v", sub, err)
	}
	if sub[0].Err() != nil || sub[2].Err() != nil {
		t.Fatalf("allowed entries failed: %v / %v", sub[0].Err(), sub[2].Err())
	}
	deniedEntry := func(what string, err error) {
		t.Helper()
		ge := wantGatewayError(t, what, err, codes.PermissionDenied, mxgatewayv1.ReasonReferenceForbidden, client.ErrPermissionDenied)
		if !strings.Contains(ge.Error(), "REFERENCE_NOT_ALLOWED") || client.GatewayReason(err) != "REFERENCE_NOT_ALLOWED" {
			t.Fatalf("%s: %q does not say REFERENCE_NOT_ALLOWED", what, ge.Error())
		}
		var me *client.MxAccessError
		if errors.As(err, &me) {
			t.Fatalf("%s: a denial is not an MXAccess error: %v", what, err)
		}
	}
	deniedEntry("SubscribeBulk entry TIC101.PV", sub[1].Err())
	if sub[1].Denial == nil || sub[1].ItemHandle != 0 {
		t.Fatalf("denied entry: %+v", sub[1])
	}
	// The allowed entries run normally: their values arrive.
	mat := log.waitFor(t, "Tank1.Material", dataChangeOf(sub[0].ItemHandle)).DataChange()
	if v, _ := mat.Value.AsString(); v != "Ethanol" {
		t.Fatalf("Tank1.Material = %v", mat.Value)
	}
	log.waitFor(t, "Tank1.Volume", dataChangeOf(sub[2].ItemHandle))

	// ReadBulk (Session.Read) and AddItemBulk deny per entry too.
	res, err := s.Read(ctx, "Tank1.Level", "TIC101.SP")
	if err != nil || len(res) != 2 {
		t.Fatalf("Read failed as a whole: %v", err)
	}
	if res[0].Err() != nil {
		t.Fatalf("Tank1.Level: %v", res[0].Err())
	}
	deniedEntry("ReadBulk entry TIC101.SP", res[1].Err())
	added, err := mx.AddItemBulk(ctx, h, []string{"Pump1.StartCount", "Tank1.HighLevel"})
	if err != nil || len(added) != 2 || added[1].Err() != nil {
		t.Fatalf("AddItemBulk: %+v %v", added, err)
	}
	deniedEntry("AddItemBulk entry Pump1.StartCount", added[0].Err())
	// Subscribe (the convenience) reports the denial per reference.
	cs, err := s.Subscribe(ctx, "Tank1.Inlet", "Valve1.Cmd")
	if err != nil || len(cs) != 2 || cs[0].Err() != nil {
		t.Fatalf("Subscribe: %+v %v", cs, err)
	}
	deniedEntry("Subscribe entry Valve1.Cmd", cs[1].Err())

	// Single commands fail as a whole.
	_, err = mx.AddItem(ctx, h, "TIC101.PV")
	deniedEntry("AddItem TIC101.PV", err)
	// Writes: Tank1.Material may be written, Tank1.Volume (readable) not.
	if _, err := s.WriteValue(ctx, "Tank1.Material", "Water"); err != nil {
		t.Fatalf("allowed write: %v", err)
	}
	_, err = s.WriteValue(ctx, "Tank1.Volume", 1.0)
	deniedEntry("WriteValue Tank1.Volume", err)
	wb, err := mx.WriteBulk(ctx, h, []client.WriteEntry{
		{ItemHandle: sub[0].ItemHandle, Value: client.MustValue("Oil")},
		{ItemHandle: sub[2].ItemHandle, Value: client.MustValue(float32(2))},
	})
	if err != nil || len(wb) != 2 || wb[0].Err() != nil {
		t.Fatalf("WriteBulk: %+v %v", wb, err)
	}
	deniedEntry("WriteBulk entry Tank1.Volume", wb[1].Err())
	log.waitFor(t, "Oil", func(ev client.Event) bool {
		d := ev.DataChange()
		return d != nil && d.ItemHandle == sub[0].ItemHandle && d.Value.Equal(client.MustValue("Oil"))
	})
}

// TestSessionOwnership: a session belongs to the key that opened it; another
// key can neither see nor use it, an admin key can do both.
func TestSessionOwnership(t *testing.T) {
	leakCheck(t)
	g := harness.Start(t)
	ctx := harness.Context(t, 90*time.Second)
	scopes := []string{"session:open", "session:close", "invoke:read", "events:read"}
	keyA := g.CreateKey(t, "alice", scopes, nil, nil)
	keyB := g.CreateKey(t, "bob", scopes, nil, nil)
	a := dialKey(t, ctx, g, keyA)
	b := dialKey(t, ctx, g, keyB)
	admin := dialKey(t, ctx, g, g.AdminKey)
	sa := open(t, ctx, a)
	sb := open(t, ctx, b)
	if _, err := sa.Subscribe(ctx, "Tank1.Material"); err != nil {
		t.Fatal(err)
	}

	ids := func(c *client.Client) []string {
		t.Helper()
		list, err := c.ListSessions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, s := range list {
			out = append(out, s.GetSessionId())
		}
		slices.Sort(out)
		return out
	}
	if got := ids(a); !slices.Equal(got, []string{sa.ID()}) {
		t.Fatalf("alice sees %v, want only %s", got, sa.ID())
	}
	if got := ids(b); !slices.Equal(got, []string{sb.ID()}) {
		t.Fatalf("bob sees %v, want only %s", got, sb.ID())
	}
	all := ids(admin)
	if !slices.Contains(all, sa.ID()) || !slices.Contains(all, sb.ID()) {
		t.Fatalf("admin sees %v, want both %s and %s", all, sa.ID(), sb.ID())
	}
	list, err := admin.ListSessions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range list {
		want := map[string]string{sa.ID(): idOf(t, keyA), sb.ID(): idOf(t, keyB)}[s.GetSessionId()]
		if want != "" && s.GetOwnerKeyId() != want {
			t.Fatalf("session %s owned by %q, want %q", s.GetSessionId(), s.GetOwnerKeyId(), want)
		}
	}

	// Bob on Alice's session: every call is refused as NOT_SESSION_OWNER.
	stolen, err := b.AttachSession(sa.ID())
	if err != nil {
		t.Fatal(err)
	}
	notOwner := func(what string, err error) {
		t.Helper()
		wantGatewayError(t, what, err, codes.PermissionDenied, mxgatewayv1.ReasonNotSessionOwner, client.ErrPermissionDenied)
	}
	_, err = stolen.Read(ctx, "Tank1.Material")
	notOwner("Read", err)
	_, err = stolen.MX().Register(ctx, "thief")
	notOwner("Register", err)
	notOwner("Events", eventsErr(t, ctx, stolen))
	notOwner("Close", stolen.Close())
	// Alice's session is untouched.
	if res, err := sa.Read(ctx, "Tank1.Material"); err != nil || res[0].Err() != nil {
		t.Fatalf("alice after bob's attempts: %v", err)
	}
	// The admin key may use and close it.
	adm, err := admin.AttachSession(sa.ID())
	if err != nil {
		t.Fatal(err)
	}
	if res, err := adm.Read(ctx, "Tank1.Material"); err != nil || res[0].Err() != nil {
		t.Fatalf("admin read on alice's session: %v", err)
	}
	if err := adm.Close(); err != nil {
		t.Fatalf("admin close of alice's session: %v", err)
	}
	_, err = sa.Read(ctx, "Tank1.Material")
	if !client.IsSessionNotFound(err) {
		t.Fatalf("alice after the admin closed her session: %v", err)
	}
}

// TestAdminRoundTrip drives the Admin service through the SDK: create, list,
// rotate, revoke and the audit log.
func TestAdminRoundTrip(t *testing.T) {
	leakCheck(t)
	g := harness.Start(t)
	ctx := harness.Context(t, 90*time.Second)
	c := dialKey(t, ctx, g, g.AdminKey)
	adm := c.Admin()
	adminID := idOf(t, g.AdminKey)

	spec := client.NewAPIKey{Name: "grafana", Scopes: []string{"session:open", "session:close", "invoke:read"},
		AllowRead: []string{"TIC*", "Tank1.*"}, AllowWrite: []string{"TIC101.SP"}}
	info, raw, err := adm.CreateAPIKey(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if !keyRE.MatchString(raw) || idOf(t, raw) != info.GetId() {
		t.Fatalf("raw key %q does not carry id %q", raw, info.GetId())
	}
	if info.GetName() != spec.Name || !slices.Equal(info.GetScopes(), spec.Scopes) || !slices.Equal(info.GetAllowRead(), spec.AllowRead) ||
		!slices.Equal(info.GetAllowWrite(), spec.AllowWrite) || info.GetCreatedAt() == nil || info.GetRevokedAt() != nil {
		t.Fatalf("created key %v", info)
	}
	secrets := []string{secretOf(t, raw), secretOf(t, g.AdminKey)}
	noSecret := func(what string, msgs ...proto.Message) {
		t.Helper()
		for _, m := range msgs {
			text := prototext.Format(m)
			for _, s := range secrets {
				if strings.Contains(text, s) {
					t.Fatalf("%s shows a key secret:\n%s", what, text)
				}
			}
		}
	}
	noSecret("CreateAPIKey's key info", info)

	// The new key works, within its scopes.
	user := dialKey(t, ctx, g, raw)
	us := open(t, ctx, user)
	if res, err := us.Read(ctx, "TIC101.PV"); err != nil || res[0].Err() != nil {
		t.Fatalf("new key cannot read: %v", err)
	}
	if err := us.Close(); err != nil {
		t.Fatal(err)
	}

	listed := func() map[string]*mxgatewayv1.ApiKeyInfo {
		t.Helper()
		keys, err := adm.ListAPIKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]*mxgatewayv1.ApiKeyInfo{}
		for _, k := range keys {
			noSecret("ListAPIKeys", k)
			out[k.GetId()] = k
		}
		return out
	}
	keys := listed()
	if k := keys[info.GetId()]; k == nil || k.GetName() != "grafana" || k.GetRevokedAt() != nil {
		t.Fatalf("ListAPIKeys: new key %v", k)
	}
	if k := keys[adminID]; k == nil || !slices.Contains(k.GetScopes(), "admin") {
		t.Fatalf("ListAPIKeys: first-run admin key %v", k)
	}

	// Rotate: a new id and secret with the same name, scopes and
	// constraints; the old key stops working at once.
	rot, raw2, err := adm.RotateAPIKey(ctx, info.GetId())
	if err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, secretOf(t, raw2))
	if rot.GetId() == info.GetId() || idOf(t, raw2) != rot.GetId() || rot.GetRotatedFrom() != info.GetId() ||
		rot.GetName() != info.GetName() || !slices.Equal(rot.GetScopes(), info.GetScopes()) ||
		!slices.Equal(rot.GetAllowRead(), info.GetAllowRead()) || !slices.Equal(rot.GetAllowWrite(), info.GetAllowWrite()) {
		t.Fatalf("rotated %v from %v", rot, info)
	}
	noSecret("RotateAPIKey's key info", rot)
	_, err = dialKey(t, ctx, g, raw).OpenSession(ctx, "old")
	ge := wantGatewayError(t, "old key after rotation", err, codes.Unauthenticated, mxgatewayv1.ReasonUnauthenticated, client.ErrUnauthenticated)
	if !strings.Contains(ge.Message, "revoked") {
		t.Fatalf("old key after rotation: %q does not say revoked", ge.Message)
	}
	rotated := dialKey(t, ctx, g, raw2)
	rs := open(t, ctx, rotated)
	if res, err := rs.Read(ctx, "Tank1.Material"); err != nil || res[0].Err() != nil {
		t.Fatalf("rotated key cannot read: %v", err)
	}
	if err := rs.Close(); err != nil {
		t.Fatal(err)
	}
	// Rotating the revoked key again is refused.
	_, _, err = adm.RotateAPIKey(ctx, info.GetId())
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("rotate a revoked key: %v", err)
	}

	// Revoke: once changes, twice reports already revoked; the key fails.
	rk, already, err := adm.RevokeAPIKey(ctx, rot.GetId())
	if err != nil || already || rk.GetRevokedAt() == nil || rk.GetId() != rot.GetId() {
		t.Fatalf("revoke: %v %v %v", rk, already, err)
	}
	if _, already, err = adm.RevokeAPIKey(ctx, rot.GetId()); err != nil || !already {
		t.Fatalf("second revoke: already=%v %v", already, err)
	}
	_, err = rotated.OpenSession(ctx, "revoked")
	wantGatewayError(t, "revoked key", err, codes.Unauthenticated, mxgatewayv1.ReasonUnauthenticated, client.ErrUnauthenticated)
	_, _, err = adm.RevokeAPIKey(ctx, "aaaaaaaaaaaaaaaa")
	if ge := new(client.GatewayError); !errors.As(err, &ge) || ge.Code != codes.NotFound || client.IsSessionNotFound(err) {
		t.Fatalf("revoke an unknown id: %v", err)
	}
	// Invalid requests.
	_, _, err = adm.CreateAPIKey(ctx, client.NewAPIKey{Name: "bad", Scopes: []string{"root"}})
	if !errors.Is(err, client.ErrInvalidRequest) {
		t.Fatalf("create with an unknown scope: %v", err)
	}
	_, _, err = adm.CreateAPIKey(ctx, client.NewAPIKey{Scopes: []string{"invoke:read"}})
	if !errors.Is(err, client.ErrInvalidRequest) {
		t.Fatalf("create without a name: %v", err)
	}
	keys = listed()
	if k := keys[info.GetId()]; k == nil || k.GetRevokedAt() == nil {
		t.Fatalf("ListAPIKeys: rotated-away key %v is not revoked", k)
	}
	if k := keys[rot.GetId()]; k == nil || k.GetRevokedAt() == nil || k.GetRotatedFrom() != info.GetId() {
		t.Fatalf("ListAPIKeys: revoked key %v", k)
	}
	if _, ok := keys["aaaaaaaaaaaaaaaa"]; ok || len(keys) != 3 {
		t.Fatalf("ListAPIKeys: %d keys, want 3 (bootstrap, grafana, its rotation)", len(keys))
	}

	// The audit log has every change, by the admin key, and the denials.
	events, err := adm.ListAuditEvents(ctx, &mxgatewayv1.ListAuditEventsRequest{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	have := func(action, target, outcome, actor string) bool {
		for _, e := range events {
			if e.GetAction() == action && e.GetTarget() == target && e.GetOutcome() == outcome && e.GetActorKeyId() == actor {
				return true
			}
		}
		return false
	}
	var dump strings.Builder
	for _, e := range events {
		noSecret("ListAuditEvents", e)
		fmt.Fprintf(&dump, "%d %s %s %s %s %s\n", e.GetSeq(), e.GetActorKeyId(), e.GetAction(), e.GetTarget(), e.GetOutcome(), e.GetDetail())
	}
	for i := 1; i < len(events); i++ {
		if events[i].GetSeq() >= events[i-1].GetSeq() {
			t.Fatalf("audit events not newest first:\n%s", dump.String())
		}
	}
	for _, want := range [][4]string{
		{"apikey.bootstrap", adminID, "ok", "local:serve"},
		{"apikey.create", info.GetId(), "ok", adminID},
		{"apikey.rotate", info.GetId(), "ok", adminID},
		{"apikey.rotate", info.GetId(), "failed", adminID},
		{"apikey.revoke", rot.GetId(), "ok", adminID},
	} {
		if !have(want[0], want[1], want[2], want[3]) {
			t.Errorf("audit log lacks %v:\n%s", want, dump.String())
		}
	}
	denials := 0
	for _, e := range events {
		if e.GetOutcome() == "denied" {
			denials++
		}
	}
	if denials == 0 {
		t.Errorf("audit log has no denial (the old and the revoked key were refused):\n%s", dump.String())
	}
	// Paging forwards from a sequence: oldest first.
	first := events[len(events)-1].GetSeq()
	fwd, err := adm.ListAuditEvents(ctx, &mxgatewayv1.ListAuditEventsRequest{AfterSeq: first, Limit: 2})
	if err != nil || len(fwd) != 2 || fwd[0].GetSeq() <= first || fwd[1].GetSeq() <= fwd[0].GetSeq() {
		t.Fatalf("ListAuditEvents after %d: %v %v", first, fwd, err)
	}
	// By action: the rotation, and the refused second rotation (newest
	// first).
	byAction, err := adm.ListAuditEvents(ctx, &mxgatewayv1.ListAuditEventsRequest{Action: "apikey.rotate"})
	if err != nil || len(byAction) != 2 || byAction[0].GetOutcome() != "failed" || byAction[1].GetOutcome() != "ok" ||
		byAction[0].GetTarget() != info.GetId() || byAction[1].GetTarget() != info.GetId() {
		t.Fatalf("ListAuditEvents by action: %v %v", byAction, err)
	}
}

// TestTLSSelfSigned: against --tls=self-signed, WithCAFile pins the
// gateway's certificate; plaintext, the system roots and a wrong CA fail
// at Dial.
func TestTLSSelfSigned(t *testing.T) {
	leakCheck(t)
	g := harness.Start(t, "--tls=self-signed")
	ctx := harness.Context(t, 90*time.Second)
	if g.CAFile == "" {
		t.Fatal("gateway with --tls=self-signed printed no CA file")
	}
	c, err := client.Dial(ctx, g.GRPCAddr, client.WithAPIKey(g.AdminKey), client.WithCAFile(g.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := open(t, ctx, c)
	res, err := s.Read(ctx, "Tank1.Material")
	if err != nil || res[0].Err() != nil {
		t.Fatalf("read over TLS: %v", err)
	}
	if _, err := s.WriteValue(ctx, "TIC101.SP", 43.5); err != nil {
		t.Fatalf("write over TLS: %v", err)
	}
	// "localhost" is in the certificate too.
	port := g.GRPCAddr[strings.LastIndex(g.GRPCAddr, ":")+1:]
	byName, err := client.Dial(ctx, "localhost:"+port, client.WithAPIKey(g.AdminKey), client.WithCAFile(g.CAFile))
	if err != nil {
		t.Fatalf("TLS to localhost: %v", err)
	}
	if _, err := byName.ListSessions(ctx); err != nil {
		t.Fatal(err)
	}
	byName.Close()

	// A wrong CA: a certificate that did not sign the gateway's.
	otherCA, err := tlsutil.EnsureSelfSigned(tlsutil.SelfSignedConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	other := otherCA.CertFile
	fails := map[string][]client.Option{
		"plaintext":    {client.WithInsecure()},
		"default":      nil, // loopback: plaintext
		"system roots": {client.WithTLS()},
		"wrong CA":     {client.WithCAFile(other)},
	}
	for name, opts := range fails {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		bad, err := client.Dial(dctx, g.GRPCAddr, append([]client.Option{client.WithAPIKey(g.AdminKey)}, opts...)...)
		cancel()
		if err == nil {
			bad.Close()
			t.Errorf("%s: Dial to a TLS gateway succeeded", name)
			continue
		}
		if !strings.Contains(err.Error(), "cannot reach gateway") {
			t.Errorf("%s: %v", name, err)
		}
		if strings.Contains(err.Error(), secretOf(t, g.AdminKey)) {
			t.Errorf("%s: error shows the key: %v", name, err)
		}
		if name == "system roots" || name == "wrong CA" {
			if !strings.Contains(err.Error(), "certificate") {
				t.Errorf("%s: %v does not mention the certificate", name, err)
			}
		}
	}
	// A CA file that is not PEM fails at once.
	junk := filepath.Join(t.TempDir(), "junk.pem")
	if err := os.WriteFile(junk, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Dial(ctx, g.GRPCAddr, client.WithCAFile(junk)); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Fatalf("junk CA file: %v", err)
	}
	if _, err := client.Dial(ctx, g.GRPCAddr, client.WithCAFile(filepath.Join(t.TempDir(), "missing.pem"))); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing CA file: %v", err)
	}
}
