package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	mxgatewayv1grpc "github.com/mxgateway/mxgateway/api/mxgateway/v1/mxgatewayv1grpc"
	"github.com/mxgateway/mxgateway/internal/tlsutil"
	"github.com/mxgateway/mxgateway/test/e2e/harness"
)

// Scopes as the API spells them.
const (
	scSessionOpen  = "session:open"
	scSessionClose = "session:close"
	scInvokeRead   = "invoke:read"
	scInvokeWrite  = "invoke:write"
	scInvokeSecure = "invoke:secure"
	scEventsRead   = "events:read"
	scAdmin        = "admin"
)

// Demo Galaxy user (docs/simulator.md): its password must never reach a log.
const (
	demoUser     = "operator"
	demoPassword = "operator1"
)

// allRPCs calls every Gateway RPC and one Admin RPC on conn and returns
// their errors by name. StreamEvents is checked at its first Recv.
func allRPCs(ctx context.Context, conn *grpc.ClientConn, sessionID string) map[string]error {
	c := mxgatewayv1grpc.NewGatewayClient(conn)
	out := map[string]error{}
	_, out["OpenSession"] = c.OpenSession(ctx, &mxgatewayv1.OpenSessionRequest{ClientName: "denied"})
	_, out["ListSessions"] = c.ListSessions(ctx, &mxgatewayv1.ListSessionsRequest{})
	_, out["Invoke"] = c.Invoke(ctx, &mxgatewayv1.InvokeRequest{SessionId: sessionID, Command: registerCmd()})
	_, out["CloseSession"] = c.CloseSession(ctx, &mxgatewayv1.CloseSessionRequest{SessionId: sessionID})
	out["StreamEvents"] = streamErr(ctx, c, sessionID)
	_, out["Admin.ListApiKeys"] = mxgatewayv1grpc.NewAdminClient(conn).ListApiKeys(ctx, &mxgatewayv1.ListApiKeysRequest{})
	return out
}

// streamErr opens an event stream and returns the error of its first
// receive (nil if an event arrived).
func streamErr(ctx context.Context, c mxgatewayv1grpc.GatewayClient, sessionID string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := c.StreamEvents(ctx, &mxgatewayv1.StreamEventsRequest{SessionId: sessionID})
	if err != nil {
		return err
	}
	_, err = st.Recv()
	return err
}

func registerCmd() *mxgatewayv1.Command {
	return &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Register{Register: &mxgatewayv1.RegisterCommand{ClientName: "e2e"}}}
}

// statusMessage returns the status message of err.
func statusMessage(err error) string {
	st, _ := status.FromError(err)
	return st.Message()
}

// TestSecurityAuthentication: calls without a key, with a malformed key,
// an unknown id, a wrong secret, a revoked key and a rotated key are
// refused with UNAUTHENTICATED; the first-run admin key, keys from the
// Admin service and keys from the CLI (while serve runs) work.
func TestSecurityAuthentication(t *testing.T) {
	t.Parallel()
	g := harness.Start(t)
	admin := g.AdminKey
	adminConn := g.Conn()
	anon := g.Dial(t, "")
	ctx := harness.Context(t, 2*step)
	const someSession = "0123456789abcdef0123456789abcdef"

	t.Run("first-run key", func(t *testing.T) {
		info, err := os.Stat(filepath.Join(g.DataDir, "admin.key"))
		if err != nil {
			t.Fatal(err)
		}
		if runtime.GOOS != "windows" && info.Mode().Perm() != 0o600 {
			t.Fatalf("admin.key has mode %v, want 0600", info.Mode().Perm())
		}
		// Standard error is a pipe, not a terminal: the banner (right
		// after the listen lines) names the key's file; the key itself is
		// never printed nor logged.
		eventually(t, "the first-run banner", func() error {
			if !strings.Contains(g.Stderr.String(), filepath.Join(g.DataDir, "admin.key")) {
				return errors.New("not printed yet")
			}
			return nil
		})
		if out := g.Stdout.String() + g.Stderr.String(); strings.Contains(out, admin) {
			t.Fatalf("the first-run key is printed to a pipe; output:\n%s", redactKey(out, admin))
		}
		keys, err := mxgatewayv1grpc.NewAdminClient(adminConn).ListApiKeys(ctx, &mxgatewayv1.ListApiKeysRequest{})
		if err != nil {
			t.Fatalf("ListApiKeys with the first-run key: %v", err)
		}
		var found bool
		for _, k := range keys.GetKeys() {
			if strings.HasPrefix(admin, "mxgw_"+k.GetId()+"_") {
				found = slices.Contains(k.GetScopes(), scAdmin)
			}
		}
		if !found {
			t.Fatalf("the first-run key is not listed as an admin key: %v", keys)
		}
		s := openSession(t, mxgatewayv1grpc.NewGatewayClient(adminConn), "first-run")
		s.register()
		s.close()
	})

	t.Run("no key", func(t *testing.T) {
		for name, err := range allRPCs(ctx, anon, someSession) {
			t.Run(name, func(t *testing.T) { wantCode(t, err, codes.Unauthenticated, mxgatewayv1.ReasonUnauthenticated) })
		}
		// Health checks are exempt: probes carry no key.
		hr, err := healthpb.NewHealthClient(anon).Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil || hr.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("health check without a key = %v, %v", hr, err)
		}
	})

	t.Run("malformed key", func(t *testing.T) {
		real := fakeKey("")
		bad := map[string][]string{
			"not a key":                {"authorization", "Bearer hello"},
			"basic scheme":             {"authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte("u:p"))},
			"bearer without a token":   {"authorization", "Bearer"},
			"truncated":                {"authorization", "Bearer " + real[:len(real)-1]},
			"upper-case id":            {"authorization", "Bearer mxgw_" + strings.ToUpper(real[5:21]) + real[21:]},
			"bad secret alphabet":      {"authorization", "Bearer " + real[:len(real)-1] + "!"},
			"wrong prefix":             {"authorization", "Bearer mxgx_" + real[5:]},
			"x-api-key garbage":        {"x-api-key", "garbage"},
			"two different keys":       {"authorization", "Bearer " + real, "x-api-key", fakeKey("")},
			"secret of the wrong size": {"authorization", "Bearer " + real[:22] + "AAAA"},
		}
		c := mxgatewayv1grpc.NewGatewayClient(anon)
		for name, md := range bad {
			t.Run(name, func(t *testing.T) {
				_, err := c.ListSessions(metadata.AppendToOutgoingContext(ctx, md...), &mxgatewayv1.ListSessionsRequest{})
				wantCode(t, err, codes.Unauthenticated, mxgatewayv1.ReasonUnauthenticated)
			})
		}
	})

	t.Run("unknown id and wrong secret", func(t *testing.T) {
		k := createKey(t, g, keyspec{name: "victim", scopes: []string{scSessionOpen}})
		c := mxgatewayv1grpc.NewGatewayClient(anon)
		_, errUnknown := c.ListSessions(withKey(ctx, fakeKey("")), &mxgatewayv1.ListSessionsRequest{})
		wantCode(t, errUnknown, codes.Unauthenticated, mxgatewayv1.ReasonUnauthenticated)
		_, errWrong := c.ListSessions(withKey(ctx, fakeKey(k.id)), &mxgatewayv1.ListSessionsRequest{})
		wantCode(t, errWrong, codes.Unauthenticated, mxgatewayv1.ReasonUnauthenticated)
		if statusMessage(errUnknown) != statusMessage(errWrong) {
			t.Fatalf("an unknown id says %q but a wrong secret says %q: they must be indistinguishable",
				statusMessage(errUnknown), statusMessage(errWrong))
		}
		// The right key still works, also as x-api-key.
		if _, err := c.ListSessions(withKey(ctx, k.raw), &mxgatewayv1.ListSessionsRequest{}); err != nil {
			t.Fatalf("the right key: %v", err)
		}
		if _, err := c.ListSessions(metadata.AppendToOutgoingContext(ctx, "x-api-key", k.raw), &mxgatewayv1.ListSessionsRequest{}); err != nil {
			t.Fatalf("the right key as x-api-key: %v", err)
		}
	})

	t.Run("revoked key", func(t *testing.T) {
		k := createKey(t, g, keyspec{name: "to revoke", scopes: []string{scSessionOpen}})
		c := mxgatewayv1grpc.NewGatewayClient(anon)
		if _, err := c.ListSessions(withKey(ctx, k.raw), &mxgatewayv1.ListSessionsRequest{}); err != nil {
			t.Fatalf("before revocation: %v", err)
		}
		ac := mxgatewayv1grpc.NewAdminClient(adminConn)
		rv, err := ac.RevokeApiKey(ctx, &mxgatewayv1.RevokeApiKeyRequest{Id: k.id})
		if err != nil || rv.GetAlreadyRevoked() || rv.GetKey().GetRevokedAt() == nil {
			t.Fatalf("RevokeApiKey = %v, %v", rv, err)
		}
		_, err = c.ListSessions(withKey(ctx, k.raw), &mxgatewayv1.ListSessionsRequest{})
		wantCode(t, err, codes.Unauthenticated, mxgatewayv1.ReasonUnauthenticated)
		if again, err := ac.RevokeApiKey(ctx, &mxgatewayv1.RevokeApiKeyRequest{Id: k.id}); err != nil || !again.GetAlreadyRevoked() {
			t.Fatalf("second RevokeApiKey = %v, %v", again, err)
		}
	})

	t.Run("rotated key", func(t *testing.T) {
		old := createKey(t, g, keyspec{name: "to rotate", scopes: []string{scSessionOpen}, allowRead: []string{"Tank1.*"}})
		rot, err := mxgatewayv1grpc.NewAdminClient(adminConn).RotateApiKey(ctx, &mxgatewayv1.RotateApiKeyRequest{Id: old.id})
		if err != nil {
			t.Fatalf("RotateApiKey: %v", err)
		}
		nk := rot.GetKey()
		if nk.GetId() == old.id || nk.GetRotatedFrom() != old.id || !strings.HasPrefix(rot.GetRawKey(), "mxgw_"+nk.GetId()+"_") ||
			nk.GetName() != "to rotate" || !slices.Equal(nk.GetScopes(), []string{scSessionOpen}) || !slices.Equal(nk.GetAllowRead(), []string{"Tank1.*"}) {
			t.Fatalf("RotateApiKey returned %v", nk)
		}
		c := mxgatewayv1grpc.NewGatewayClient(anon)
		_, err = c.ListSessions(withKey(ctx, old.raw), &mxgatewayv1.ListSessionsRequest{})
		wantCode(t, err, codes.Unauthenticated, mxgatewayv1.ReasonUnauthenticated)
		if _, err := c.ListSessions(withKey(ctx, rot.GetRawKey()), &mxgatewayv1.ListSessionsRequest{}); err != nil {
			t.Fatalf("the rotated key: %v", err)
		}
	})

	t.Run("cli while serving", func(t *testing.T) {
		code, out, errOut := runBinary(t, nil, "apikey", "create", "--data-dir", g.DataDir, "--name", "from cli",
			"--scopes", scSessionOpen, "--json")
		if code != 0 {
			t.Fatalf("apikey create exited %d: %s", code, errOut)
		}
		var k struct{ ID, Key string }
		if err := json.Unmarshal([]byte(out), &k); err != nil || k.ID == "" || !strings.HasPrefix(k.Key, "mxgw_"+k.ID+"_") {
			t.Fatalf("apikey create --json printed something else (%v)", err)
		}
		c := mxgatewayv1grpc.NewGatewayClient(anon)
		if _, err := c.ListSessions(withKey(ctx, k.Key), &mxgatewayv1.ListSessionsRequest{}); err != nil {
			t.Fatalf("a key created by the CLI while serving: %v", err)
		}
		code, out, errOut = runBinary(t, nil, "apikey", "list", "--data-dir", g.DataDir)
		if code != 0 || !strings.Contains(out, k.ID) || strings.Contains(out+errOut, keySecret(t, k.Key)) {
			t.Fatalf("apikey list exited %d, lists the id: %v, shows the secret: %v", code, strings.Contains(out, k.ID), strings.Contains(out+errOut, keySecret(t, k.Key)))
		}
		if code, _, errOut := runBinary(t, nil, "apikey", "revoke", k.ID, "--data-dir", g.DataDir); code != 0 {
			t.Fatalf("apikey revoke exited %d: %s", code, errOut)
		}
		// The running gateway caches verified keys for auth.DefaultKeyCacheTTL:
		// a revocation by another process takes effect within it.
		eventually(t, "CLI revocation seen by the gateway", func() error {
			_, err := c.ListSessions(withKey(ctx, k.Key), &mxgatewayv1.ListSessionsRequest{})
			if status.Code(err) != codes.Unauthenticated {
				return fmt.Errorf("got %v, want Unauthenticated", err)
			}
			return nil
		})
		_, err := c.ListSessions(withKey(ctx, k.Key), &mxgatewayv1.ListSessionsRequest{})
		wantCode(t, err, codes.Unauthenticated, mxgatewayv1.ReasonUnauthenticated)
	})

	t.Run("audit", func(t *testing.T) {
		resp, err := mxgatewayv1grpc.NewAdminClient(adminConn).ListAuditEvents(ctx, &mxgatewayv1.ListAuditEventsRequest{Limit: 1000})
		if err != nil {
			t.Fatalf("ListAuditEvents: %v", err)
		}
		seen := map[string]bool{}
		for _, e := range resp.GetEvents() {
			seen[e.GetAction()+" "+e.GetOutcome()] = true
			if strings.Contains(e.GetDetail(), "mxgw_") && !strings.Contains(e.GetDetail(), "REDACTED") {
				t.Errorf("audit detail %q looks like it holds a key", e.GetDetail())
			}
		}
		for _, want := range []string{
			"apikey.bootstrap ok", "apikey.create ok", "apikey.revoke ok", "apikey.rotate ok",
			mxgatewayv1grpc.Gateway_ListSessions_FullMethodName + " denied",
		} {
			if !seen[want] {
				t.Errorf("no audit event %q among %v", want, seen)
			}
		}
	})
}

// withKey attaches key to one call.
func withKey(ctx context.Context, key string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key)
}

// redactKey hides key's secret in s, for failure messages.
func redactKey(s, key string) string {
	if i := strings.LastIndexByte(key, '_'); i > 0 {
		return strings.ReplaceAll(s, key[i+1:], "<secret>")
	}
	return s
}

// TestSecurityScopes: each RPC and each command kind needs its scope; a
// key without it gets PERMISSION_DENIED with reason PERMISSION_DENIED, and
// the same call works with the scope.
func TestSecurityScopes(t *testing.T) {
	t.Parallel()
	g := harness.Start(t)
	adminConn := g.Conn()
	ctx := harness.Context(t, 2*step)
	keyConn := func(name string, scopes ...string) *grpc.ClientConn {
		return g.Dial(t, createKey(t, g, keyspec{name: name, scopes: scopes}).raw)
	}
	denied := func(t *testing.T, what string, err error) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s: allowed, want PERMISSION_DENIED", what)
		}
		wantCode(t, err, codes.PermissionDenied, mxgatewayv1.ReasonPermissionDenied)
	}

	t.Run("per RPC", func(t *testing.T) {
		// open-only: may open and list, nothing else.
		openOnlyConn := keyConn("open only", scSessionOpen)
		openOnly := mxgatewayv1grpc.NewGatewayClient(openOnlyConn)
		s := openSession(t, openOnly, "open-only")
		if _, err := openOnly.ListSessions(ctx, &mxgatewayv1.ListSessionsRequest{}); err != nil {
			t.Fatalf("ListSessions with session:open: %v", err)
		}
		denied(t, "StreamEvents without events:read", streamErr(ctx, openOnly, s.id))
		_, err := openOnly.CloseSession(ctx, &mxgatewayv1.CloseSessionRequest{SessionId: s.id})
		denied(t, "CloseSession without session:close", err)
		_, err = openOnly.Invoke(ctx, &mxgatewayv1.InvokeRequest{SessionId: s.id, Command: registerCmd()})
		denied(t, "Register without invoke:read", err)
		_, err = mxgatewayv1grpc.NewAdminClient(openOnlyConn).ListApiKeys(ctx, &mxgatewayv1.ListApiKeysRequest{})
		denied(t, "Admin.ListApiKeys without admin", err)

		// close-only: may close (its own sessions), not open or list.
		closeOnly := mxgatewayv1grpc.NewGatewayClient(keyConn("close only", scSessionClose, scEventsRead))
		_, err = closeOnly.OpenSession(ctx, &mxgatewayv1.OpenSessionRequest{ClientName: "x"})
		denied(t, "OpenSession without session:open", err)
		_, err = closeOnly.ListSessions(ctx, &mxgatewayv1.ListSessionsRequest{})
		denied(t, "ListSessions without session:open", err)

		// The admin closes what the open-only key cannot.
		if _, err := mxgatewayv1grpc.NewGatewayClient(adminConn).CloseSession(ctx, &mxgatewayv1.CloseSessionRequest{SessionId: s.id}); err != nil {
			t.Fatalf("admin CloseSession: %v", err)
		}
	})

	t.Run("per command kind", func(t *testing.T) {
		reader := mxgatewayv1grpc.NewGatewayClient(keyConn("reader", scSessionOpen, scSessionClose, scEventsRead, scInvokeRead))
		writer := mxgatewayv1grpc.NewGatewayClient(keyConn("writer", scSessionOpen, scSessionClose, scInvokeRead, scInvokeWrite))
		secure := mxgatewayv1grpc.NewGatewayClient(keyConn("secure", scSessionOpen, scSessionClose, scInvokeRead, scInvokeSecure))
		noRead := mxgatewayv1grpc.NewGatewayClient(keyConn("no read", scSessionOpen, scSessionClose, scInvokeWrite, scInvokeSecure))

		// reader: read-side commands work, writes and secure ones do not.
		r := openSession(t, reader, "reader")
		hlmx := r.register()
		h := r.subscribe("TIC101.SP")
		read := r.invoke(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_ReadBulk{ReadBulk: &mxgatewayv1.ReadBulkCommand{ServerHandle: hlmx, ItemDefinitions: []string{"Tank1.Material"}}}})
		if e := read.GetReadBulk().GetEntries(); len(e) != 1 || e[0].GetValue().GetStringValue() != "Ethanol" {
			t.Fatalf("ReadBulk with invoke:read = %v", read)
		}
		writeKinds := map[string]*mxgatewayv1.Command{
			"write":      writeCmd(hlmx, h, doubleValue(1)),
			"write2":     {Kind: &mxgatewayv1.Command_Write2{Write2: &mxgatewayv1.Write2Command{ServerHandle: hlmx, ItemHandle: h, Value: doubleValue(1)}}},
			"write_bulk": {Kind: &mxgatewayv1.Command_WriteBulk{WriteBulk: &mxgatewayv1.WriteBulkCommand{ServerHandle: hlmx, Entries: []*mxgatewayv1.WriteCommand{{ServerHandle: hlmx, ItemHandle: h, Value: doubleValue(1)}}}}},
		}
		secureKinds := map[string]*mxgatewayv1.Command{
			"authenticate_user":    authUserCmd(hlmx, demoUser, demoPassword),
			"archestra_user_to_id": {Kind: &mxgatewayv1.Command_ArchestraUserToId{ArchestraUserToId: &mxgatewayv1.ArchestrAUserToIdCommand{ServerHandle: hlmx, UserIdentity: demoUser}}},
			"write_secured":        {Kind: &mxgatewayv1.Command_WriteSecured{WriteSecured: &mxgatewayv1.WriteSecuredCommand{ServerHandle: hlmx, ItemHandle: h, CurrentUserId: 1, VerifierUserId: 1, Value: doubleValue(1)}}},
		}
		for name, cmd := range writeKinds {
			_, err := r.invokeErr(cmd)
			denied(t, "reader: "+name, err)
		}
		for name, cmd := range secureKinds {
			_, err := r.invokeErr(cmd)
			denied(t, "reader: "+name, err)
		}
		r.close()

		// writer: writes work, secure commands do not.
		w := openSession(t, writer, "writer")
		hlmx = w.register()
		h = w.subscribe("TIC101.SP")
		w.write(h, doubleValue(71))
		_, err := w.invokeErr(authUserCmd(hlmx, demoUser, demoPassword))
		denied(t, "writer: authenticate_user", err)
		w.close()

		// secure: AuthenticateUser works (and returns a user id), Write does not.
		s := openSession(t, secure, "secure")
		hlmx = s.register()
		au := s.invoke(authUserCmd(hlmx, demoUser, demoPassword))
		if au.GetUserId().GetUserId() == 0 {
			t.Fatalf("AuthenticateUser %s with invoke:secure = %v, want a user id", demoUser, au)
		}
		h = s.subscribe("TIC101.SP")
		_, err = s.invokeErr(writeCmd(hlmx, h, doubleValue(1)))
		denied(t, "secure: write", err)
		s.close()

		// no invoke:read: not even Register.
		n := openSession(t, noRead, "no-read")
		_, err = n.invokeErr(registerCmd())
		denied(t, "no invoke:read: register", err)
		n.close()
	})
}

func authUserCmd(hlmx int32, user, password string) *mxgatewayv1.Command {
	return &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_AuthenticateUser{AuthenticateUser: &mxgatewayv1.AuthenticateUserCommand{
		ServerHandle: hlmx, UserName: user, Password: password,
	}}}
}

// entryDenied fails unless e carries a REFERENCE_NOT_ALLOWED denial.
func entryDenied(t *testing.T, what string, d *mxgatewayv1.EntryDenial) {
	t.Helper()
	if d.GetReason() != mxgatewayv1.ReasonReferenceForbidden || d.GetMessage() == "" {
		t.Fatalf("%s: denial %v, want reason %s with a message", what, d, mxgatewayv1.ReasonReferenceForbidden)
	}
}

// TestSecurityConstraints: a key's reference patterns deny single commands
// as a whole and bulk entries one by one, while the other entries run.
func TestSecurityConstraints(t *testing.T) {
	t.Parallel()
	g := harness.Start(t)
	k := createKey(t, g, keyspec{
		name:       "tank1 only",
		scopes:     []string{scSessionOpen, scSessionClose, scEventsRead, scInvokeRead, scInvokeWrite},
		allowRead:  []string{"Tank1.*"},
		allowWrite: []string{"Tank1.Volume"},
	})
	c := mxgatewayv1grpc.NewGatewayClient(g.Dial(t, k.raw))
	s := openSession(t, c, "constrained")
	hlmx := s.register()

	// SubscribeBulk: the entry outside allow_read is denied, the others run.
	refs := []string{"Tank1.Level", "TIC101.PV", "Tank1.Volume", "Tank1.Material"}
	sub := s.invoke(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_SubscribeBulk{SubscribeBulk: &mxgatewayv1.SubscribeBulkCommand{
		ServerHandle: hlmx, ItemDefinitions: refs,
	}}}).GetBulk().GetEntries()
	if len(sub) != len(refs) {
		t.Fatalf("SubscribeBulk: %d entries for %d references", len(sub), len(refs))
	}
	entryDenied(t, "SubscribeBulk TIC101.PV", sub[1].GetDenial())
	if sub[1].GetItemHandle() != 0 || sub[1].GetStatus() == mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK {
		t.Fatalf("the denied entry looks like it ran: %v", sub[1])
	}
	handles := map[string]int32{}
	for _, i := range []int{0, 2, 3} {
		e := sub[i]
		if e.GetDenial() != nil || e.GetStatus() != mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK || e.GetItemHandle() <= 0 {
			t.Fatalf("SubscribeBulk entry %d (%s) = %v, want it subscribed", i, refs[i], e)
		}
		handles[refs[i]] = e.GetItemHandle()
	}

	// Single-item commands outside the patterns fail as a whole.
	_, err := s.invokeErr(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_AddItem{AddItem: &mxgatewayv1.AddItemCommand{ServerHandle: hlmx, ItemDefinition: "TIC101.SP"}}})
	wantCode(t, err, codes.PermissionDenied, mxgatewayv1.ReasonReferenceForbidden)
	_, err = s.invokeErr(writeCmd(hlmx, handles["Tank1.Material"], stringValue("Water")))
	wantCode(t, err, codes.PermissionDenied, mxgatewayv1.ReasonReferenceForbidden)

	// ReadBulk: per entry too.
	read := s.invoke(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_ReadBulk{ReadBulk: &mxgatewayv1.ReadBulkCommand{
		ServerHandle: hlmx, ItemDefinitions: []string{"Pump1.StartCount", "Tank1.Material"},
	}}}).GetReadBulk().GetEntries()
	if len(read) != 2 {
		t.Fatalf("ReadBulk: %d entries", len(read))
	}
	entryDenied(t, "ReadBulk Pump1.StartCount", read[0].GetDenial())
	if read[0].GetValue().GetInt32Value() == 17 {
		t.Fatalf("the denied ReadBulk entry carries the value: %v", read[0])
	}
	if read[1].GetDenial() != nil || read[1].GetValue().GetStringValue() != "Ethanol" {
		t.Fatalf("ReadBulk Tank1.Material = %v", read[1])
	}

	// WriteBulk: allow_write checks the reference behind each handle.
	wb := s.invoke(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_WriteBulk{WriteBulk: &mxgatewayv1.WriteBulkCommand{
		ServerHandle: hlmx, Entries: []*mxgatewayv1.WriteCommand{
			{ServerHandle: hlmx, ItemHandle: handles["Tank1.Material"], Value: stringValue("Water")},
			{ServerHandle: hlmx, ItemHandle: handles["Tank1.Volume"], Value: floatValue(12000)},
			{ServerHandle: hlmx, ItemHandle: 9999, Value: floatValue(1)},
		},
	}}}).GetBulk().GetEntries()
	if len(wb) != 3 {
		t.Fatalf("WriteBulk: %d entries", len(wb))
	}
	entryDenied(t, "WriteBulk Tank1.Material", wb[0].GetDenial())
	entryDenied(t, "WriteBulk of an unknown handle", wb[2].GetDenial())
	if wb[1].GetDenial() != nil || wb[1].GetStatus() != mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK {
		t.Fatalf("WriteBulk Tank1.Volume = %v, want it written", wb[1])
	}
	// The denied write never reached MXAccess; the allowed one did.
	read = s.invoke(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_ReadBulk{ReadBulk: &mxgatewayv1.ReadBulkCommand{
		ServerHandle: hlmx, ItemDefinitions: []string{"Tank1.Material", "Tank1.Volume"},
	}}}).GetReadBulk().GetEntries()
	if len(read) != 2 || read[0].GetValue().GetStringValue() != "Ethanol" {
		t.Fatalf("Tank1.Material after a denied write = %v, want Ethanol", read)
	}
	eventually(t, "Tank1.Volume written", func() error {
		r, err := s.invokeErr(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_ReadBulk{ReadBulk: &mxgatewayv1.ReadBulkCommand{
			ServerHandle: hlmx, ItemDefinitions: []string{"Tank1.Volume"},
		}}})
		if err != nil {
			return err
		}
		if v := r.GetReadBulk().GetEntries()[0].GetValue().GetFloatValue(); v != 12000 {
			return fmt.Errorf("Tank1.Volume = %v", v)
		}
		return nil
	})
	s.close()
}

func stringValue(v string) *mxgatewayv1.MxValue {
	return &mxgatewayv1.MxValue{DataType: mxgatewayv1.MxDataType_MX_DATA_TYPE_STRING, Kind: &mxgatewayv1.MxValue_StringValue{StringValue: v}}
}

func floatValue(v float32) *mxgatewayv1.MxValue {
	return &mxgatewayv1.MxValue{DataType: mxgatewayv1.MxDataType_MX_DATA_TYPE_FLOAT, Kind: &mxgatewayv1.MxValue_FloatValue{FloatValue: v}}
}

// TestSecuritySessionOwnership: a session belongs to the key that opened
// it; another key can neither use, stream, close nor list it; an admin can.
func TestSecuritySessionOwnership(t *testing.T) {
	t.Parallel()
	g := harness.Start(t)
	adminConn := g.Conn()
	full := []string{scSessionOpen, scSessionClose, scEventsRead, scInvokeRead, scInvokeWrite}
	a := mxgatewayv1grpc.NewGatewayClient(g.Dial(t, createKey(t, g, keyspec{name: "A", scopes: full}).raw))
	b := mxgatewayv1grpc.NewGatewayClient(g.Dial(t, createKey(t, g, keyspec{name: "B", scopes: full}).raw))
	admin := mxgatewayv1grpc.NewGatewayClient(adminConn)
	ctx := harness.Context(t, step)

	sa := openSession(t, a, "owned by A")
	sa.register()
	sb := openSession(t, b, "owned by B")

	_, err := b.Invoke(ctx, &mxgatewayv1.InvokeRequest{SessionId: sa.id, Command: registerCmd()})
	wantCode(t, err, codes.PermissionDenied, mxgatewayv1.ReasonNotSessionOwner)
	wantCode(t, streamErr(ctx, b, sa.id), codes.PermissionDenied, mxgatewayv1.ReasonNotSessionOwner)
	_, err = b.CloseSession(ctx, &mxgatewayv1.CloseSessionRequest{SessionId: sa.id})
	wantCode(t, err, codes.PermissionDenied, mxgatewayv1.ReasonNotSessionOwner)

	ids := func(c mxgatewayv1grpc.GatewayClient) []string {
		t.Helper()
		resp, err := c.ListSessions(ctx, &mxgatewayv1.ListSessionsRequest{})
		if err != nil {
			t.Fatalf("ListSessions: %v", err)
		}
		var out []string
		for _, s := range resp.GetSessions() {
			out = append(out, s.GetSessionId())
		}
		slices.Sort(out)
		return out
	}
	if got := ids(a); !slices.Equal(got, []string{sa.id}) {
		t.Fatalf("A lists %v, want only its own %s", got, sa.id)
	}
	if got := ids(b); !slices.Equal(got, []string{sb.id}) {
		t.Fatalf("B lists %v, want only its own %s", got, sb.id)
	}
	want := []string{sa.id, sb.id}
	slices.Sort(want)
	if got := ids(admin); !slices.Equal(got, want) {
		t.Fatalf("admin lists %v, want %v", got, want)
	}

	// A's session is unharmed by B's attempts.
	sa.subscribe("Tank1.Level")

	// The admin may use, stream and close anybody's session.
	if _, err := admin.Invoke(ctx, &mxgatewayv1.InvokeRequest{SessionId: sa.id, Command: registerCmd()}); err != nil {
		t.Fatalf("admin Invoke on A's session: %v", err)
	}
	ev := openStream(t, admin, sa.id, &mxgatewayv1.StreamEventsRequest{})
	ev.next()
	if resp, err := admin.CloseSession(ctx, &mxgatewayv1.CloseSessionRequest{SessionId: sa.id}); err != nil || resp.GetState() != mxgatewayv1.SessionState_SESSION_STATE_CLOSED {
		t.Fatalf("admin CloseSession of A's session = %v, %v", resp, err)
	}
	sb.close()
}

// TestSecurityTLS: with --tls=self-signed a client pinning the generated
// certificate connects; plaintext and unpinned clients fail; the
// certificate survives a restart.
func TestSecurityTLS(t *testing.T) {
	t.Parallel()
	g := harness.Start(t, "--tls=self-signed")
	admin := g.AdminKey
	caFile := g.CAFile
	if want := filepath.Join(g.DataDir, "tls-cert.pem"); caFile != want {
		t.Fatalf("the gateway names CA file %q, want %q", caFile, want)
	}
	keyInfo, err := os.Stat(filepath.Join(g.DataDir, "tls-key.pem"))
	if err != nil {
		t.Fatalf("no TLS key in the data directory: %v", err)
	}
	if runtime.GOOS != "windows" && keyInfo.Mode().Perm() != 0o600 {
		t.Fatalf("tls-key.pem has mode %v, want 0600", keyInfo.Mode().Perm())
	}
	cert1, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := tlsutil.ClientConfig(caFile, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx := harness.Context(t, step)
	pinned := mxgatewayv1grpc.NewGatewayClient(g.Dial(t, admin, grpc.WithTransportCredentials(credentials.NewTLS(cfg))))
	if _, err := pinned.ListSessions(ctx, &mxgatewayv1.ListSessionsRequest{}); err != nil {
		t.Fatalf("ListSessions over TLS with the pinned CA: %v", err)
	}
	s := openSession(t, pinned, "tls")
	s.register()
	s.close()
	// With the name "localhost" too (a SAN of the certificate).
	cfgLocal, _ := tlsutil.ClientConfig(caFile, "localhost")
	if _, err := mxgatewayv1grpc.NewGatewayClient(g.Dial(t, admin, grpc.WithTransportCredentials(credentials.NewTLS(cfgLocal)))).ListSessions(ctx, &mxgatewayv1.ListSessionsRequest{}); err != nil {
		t.Fatalf("TLS with server name localhost: %v", err)
	}

	plain := mxgatewayv1grpc.NewGatewayClient(g.Dial(t, admin, grpc.WithTransportCredentials(insecure.NewCredentials())))
	_, err = plain.ListSessions(ctx, &mxgatewayv1.ListSessionsRequest{})
	wantCode(t, err, codes.Unavailable, "")

	// System roots only: the self-signed certificate is not trusted.
	unpinned := mxgatewayv1grpc.NewGatewayClient(g.Dial(t, admin, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12}))))
	_, err = unpinned.ListSessions(ctx, &mxgatewayv1.ListSessionsRequest{})
	wantCode(t, err, codes.Unavailable, "")

	// Restart: the same certificate is reused.
	if err := g.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	g2 := g.Restart(t)
	cert2, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(cert1, cert2) {
		t.Fatal("the self-signed certificate was regenerated on restart")
	}
	again := mxgatewayv1grpc.NewGatewayClient(g2.Dial(t, admin, grpc.WithTransportCredentials(credentials.NewTLS(cfg))))
	if _, err := again.ListSessions(ctx, &mxgatewayv1.ListSessionsRequest{}); err != nil {
		t.Fatalf("TLS after restart with the old CA file: %v", err)
	}
}

// TestSecurityNoSecretsAtRestOrInLogs creates, uses, rotates and revokes
// keys, authenticates an MXAccess user and fails some logins, with debug
// logging, then checks that no file in the data directory (but admin.key)
// and no line of the gateway's output holds a key secret or the password.
func TestSecurityNoSecretsAtRestOrInLogs(t *testing.T) {
	t.Parallel()
	g := harness.Start(t, "--log-level=debug")
	admin := g.AdminKey
	adminConn := g.Conn()
	ctx := harness.Context(t, 2*step)
	wrongPassword := "Wr0ng-" + keySecret(t, fakeKey(""))[:16]

	var keys []string // every full key used in this test
	k1 := createKey(t, g, keyspec{name: "app", scopes: []string{scSessionOpen, scSessionClose, scEventsRead, scInvokeRead, scInvokeSecure}})
	keys = append(keys, admin, k1.raw)
	rot, err := mxgatewayv1grpc.NewAdminClient(adminConn).RotateApiKey(ctx, &mxgatewayv1.RotateApiKeyRequest{Id: k1.id})
	if err != nil {
		t.Fatalf("RotateApiKey: %v", err)
	}
	keys = append(keys, rot.GetRawKey())
	k2 := createKey(t, g, keyspec{name: "revoked", scopes: []string{scSessionOpen}})
	keys = append(keys, k2.raw)
	if _, err := mxgatewayv1grpc.NewAdminClient(adminConn).RevokeApiKey(ctx, &mxgatewayv1.RevokeApiKeyRequest{Id: k2.id}); err != nil {
		t.Fatalf("RevokeApiKey: %v", err)
	}
	code, out, errOut := runBinary(t, nil, "apikey", "create", "--data-dir", g.DataDir, "--name", "cli", "--scopes", scSessionOpen)
	if code != 0 {
		t.Fatalf("apikey create: %d %s", code, errOut)
	}
	keys = append(keys, strings.TrimSpace(out))

	// Denied attempts with real-looking keys: wrong secret, revoked, rotated.
	anon := mxgatewayv1grpc.NewGatewayClient(g.Dial(t, ""))
	wrong := fakeKey(k1.id)
	keys = append(keys, wrong)
	for _, k := range []string{wrong, k2.raw, k1.raw, fakeKey("")} {
		_, err := anon.ListSessions(withKey(ctx, k), &mxgatewayv1.ListSessionsRequest{})
		wantCode(t, err, codes.Unauthenticated, mxgatewayv1.ReasonUnauthenticated)
	}
	// A malformed key of the right length must not be echoed either.
	mal := k1.raw[:len(k1.raw)-1] + "!"
	_, err = anon.ListSessions(withKey(ctx, mal), &mxgatewayv1.ListSessionsRequest{})
	wantCode(t, err, codes.Unauthenticated, mxgatewayv1.ReasonUnauthenticated)

	// Use the rotated key, with MXAccess credentials.
	app := mxgatewayv1grpc.NewGatewayClient(g.Dial(t, rot.GetRawKey()))
	s := openSession(t, app, "secrets")
	hlmx := s.register()
	if r := s.invoke(authUserCmd(hlmx, demoUser, demoPassword)); r.GetUserId().GetUserId() == 0 {
		t.Fatalf("AuthenticateUser with the demo password: %v", r)
	}
	if r, err := s.invokeErr(authUserCmd(hlmx, demoUser, wrongPassword)); err != nil || r.GetUserId().GetUserId() != 0 {
		t.Fatalf("AuthenticateUser with a wrong password = %v, %v (want user id 0)", r, err)
	}
	s.subscribe("Tank1.Level")
	s.close()

	secrets := map[string]string{"demo password": demoPassword, "wrong password": wrongPassword, "malformed key": mal[len(mal)-43:]}
	for i, k := range keys {
		sec := keySecret(t, k)
		secrets[fmt.Sprintf("secret of key %d (text)", i)] = sec
		if b, err := base64.RawURLEncoding.DecodeString(sec); err == nil {
			secrets[fmt.Sprintf("secret of key %d (bytes)", i)] = string(b)
		}
	}

	// At rest, while the gateway runs (WAL in use) and after it stopped.
	if files := checkDataDir(t, g.DataDir, secrets); !slices.Contains(files, "mxgateway.db-wal") {
		t.Errorf("no write-ahead log among %v while the gateway runs: is the store in WAL mode?", files)
	}
	if err := g.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	checkDataDir(t, g.DataDir, secrets)

	// Logs: all output. Standard error is a pipe, so not even the
	// first-run banner shows the key (it names the key's file).
	stdout, stderr := g.Stdout.String(), g.Stderr.String()
	for what, sec := range secrets {
		if strings.Contains(stderr, sec) {
			t.Errorf("the gateway log (stderr) contains the %s", what)
		}
		if strings.Contains(stdout, sec) {
			t.Errorf("the gateway's standard output contains the %s", what)
		}
	}
	// Keys show up by id only, and denials are logged.
	if !strings.Contains(stderr, k1.id) {
		t.Errorf("the log never names key id %s", k1.id)
	}
}

// checkDataDir fails if any file under dir except admin.key contains one
// of the secrets, and returns the names of the files it read.
func checkDataDir(t *testing.T, dir string, secrets map[string]string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !d.Type().IsRegular() || d.Name() == "admin.key" {
			return err
		}
		files = append(files, d.Name())
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for what, sec := range secrets {
			if bytes.Contains(b, []byte(sec)) {
				t.Errorf("%s contains the %s", filepath.Base(path), what)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(files, "mxgateway.db") {
		t.Fatalf("no database file among %v: the grep checked nothing", files)
	}
	return files
}

// TestSecurityNoAuth: --auth=none is refused on a non-loopback address
// (non-zero exit, clear message) and accepted on loopback with a warning;
// plaintext is refused on a non-loopback address too.
func TestSecurityNoAuth(t *testing.T) {
	t.Parallel()
	t.Run("non-loopback refused", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		code, out, errOut := runBinary(t, []string{"TMPDIR=" + dir}, "serve", "--auth=none", "--listen=0.0.0.0:0",
			"--http-listen=127.0.0.1:0", "--nats-listen=127.0.0.1:0", "--data-dir="+filepath.Join(dir, "data"), "--sim-profile=test")
		if code == 0 {
			t.Fatalf("serve --auth=none on 0.0.0.0 exited 0\nstdout:\n%s\nstderr:\n%s", out, errOut)
		}
		if strings.Contains(out, "listening on") {
			t.Fatalf("serve listened before refusing:\n%s", out)
		}
		msg := strings.ToLower(errOut)
		if !strings.Contains(msg, "auth") || !strings.Contains(msg, "loopback") {
			t.Fatalf("the refusal does not explain itself (want auth and loopback):\n%s", errOut)
		}
	})
	t.Run("plaintext off loopback refused", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		code, out, errOut := runBinary(t, []string{"TMPDIR=" + dir}, "serve", "--listen=0.0.0.0:0",
			"--http-listen=127.0.0.1:0", "--nats-listen=127.0.0.1:0", "--data-dir="+filepath.Join(dir, "data"), "--sim-profile=test")
		if code == 0 || strings.Contains(out, "listening on") {
			t.Fatalf("serve on 0.0.0.0 without TLS = exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
		if msg := strings.ToLower(errOut); !strings.Contains(msg, "tls") || !strings.Contains(msg, "loopback") {
			t.Fatalf("the refusal does not explain itself (want tls and loopback):\n%s", errOut)
		}
	})
	t.Run("loopback accepted with a warning", func(t *testing.T) {
		t.Parallel()
		g := harness.Start(t, "--auth=none")
		c := g.Client()
		s := openSession(t, c, "anonymous")
		s.register()
		s.close()
		eventually(t, "a warning about auth=none in the log", func() error {
			for _, line := range strings.Split(g.Stderr.String(), "\n") {
				var rec struct{ Level, Msg string }
				if json.Unmarshal([]byte(line), &rec) != nil {
					continue
				}
				if rec.Level == "WARN" && strings.Contains(strings.ToLower(line), "auth") {
					return nil
				}
			}
			return errors.New("no WARN record mentioning auth")
		})
	})
}
