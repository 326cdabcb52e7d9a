package e2e

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	mxgatewayv1grpc "github.com/mxgateway/mxgateway/api/mxgateway/v1/mxgatewayv1grpc"
	"github.com/mxgateway/mxgateway/test/e2e/harness"
)

// These tests cover the hardening limits of docs/security.md: revocation,
// per-key quotas, bounds before authentication, credential guessing and
// small leaks.

// sessionListed returns the admin's view of session id, or nil when it is
// no longer listed.
func sessionListed(t *testing.T, admin mxgatewayv1grpc.GatewayClient, id string) *mxgatewayv1.SessionInfo {
	t.Helper()
	resp, err := admin.ListSessions(harness.Context(t, step), &mxgatewayv1.ListSessionsRequest{})
	if err != nil {
		t.Fatalf("ListSessions: %v", err)
	}
	for _, s := range resp.GetSessions() {
		if s.GetSessionId() == id {
			return s
		}
	}
	return nil
}

// TestHardeningRevocationEndsStreams: a key revoked through the Admin
// service loses its open event stream at once, one revoked by the offline
// command within the key cache TTL, both with UNAUTHENTICATED /
// API_KEY_REVOKED; the sessions are then no longer kept alive by them.
func TestHardeningRevocationEndsStreams(t *testing.T) {
	t.Parallel()
	g := harness.Start(t, "--lease=1s", "--detach-grace=1s")
	admin := mxgatewayv1grpc.NewGatewayClient(g.Conn())
	full := []string{scSessionOpen, scSessionClose, scEventsRead, scInvokeRead, scInvokeWrite}

	revokers := map[string]func(t *testing.T, id string){
		"admin api": func(t *testing.T, id string) {
			if _, err := g.Admin().RevokeApiKey(harness.Context(t, step), &mxgatewayv1.RevokeApiKeyRequest{Id: id}); err != nil {
				t.Fatalf("RevokeApiKey: %v", err)
			}
		},
		"offline command": func(t *testing.T, id string) {
			if code, _, errOut := runBinary(t, nil, "apikey", "revoke", id, "--data-dir", g.DataDir); code != 0 {
				t.Fatalf("apikey revoke exited %d: %s", code, errOut)
			}
		},
	}
	for name, revoke := range revokers {
		t.Run(name, func(t *testing.T) {
			k := createKey(t, g, keyspec{name: "revoked by " + name, scopes: full})
			s := openSession(t, mxgatewayv1grpc.NewGatewayClient(g.Dial(t, k.raw)), "revocation")
			s.register()
			s.subscribe("Tank1.Level")
			ev := s.streamEvents(&mxgatewayv1.StreamEventsRequest{})
			ev.next()
			revoke(t, k.id)
			_, err := ev.end()
			wantCode(t, err, codes.Unauthenticated, mxgatewayv1.ReasonAPIKeyRevoked)
			// Nothing keeps the session alive any more: its lease runs out.
			eventually(t, "the revoked key's session to expire", func() error {
				if info := sessionListed(t, admin, s.id); info != nil {
					return fmt.Errorf("still listed with %d subscribers", info.GetSubscribers())
				}
				return nil
			})
		})
	}
	if scrape(t, g)[`mxgateway_stream_disconnects_total{reason="key_revoked"}`] < 2 {
		t.Error("stream_disconnects_total{reason=key_revoked} did not count both streams")
	}
}

// wantFaultedAndGone checks that a faulted session left the table at once
// (no longer listed, no longer counted against max_sessions) and that its
// owner still learns it faulted: commands fail SESSION_FAULTED, a close
// reports it already closed as FAULTED.
func (s *client) wantFaultedAndGone() {
	s.t.Helper()
	eventually(s.t, "the faulted session to leave the table", func() error {
		if in := s.info(); in != nil {
			return fmt.Errorf("still listed: %v", in)
		}
		return nil
	})
	_, err := s.invokeErr(registerCmd())
	wantCode(s.t, err, codes.FailedPrecondition, mxgatewayv1.ReasonSessionFaulted)
	resp, err := s.c.CloseSession(harness.Context(s.t, step), &mxgatewayv1.CloseSessionRequest{SessionId: s.id})
	if err != nil || !resp.GetAlreadyClosed() || resp.GetState() != mxgatewayv1.SessionState_SESSION_STATE_FAULTED {
		s.t.Fatalf("CloseSession of the faulted session = %v, %v", resp, err)
	}
}

// TestHardeningKeyQuotas: one key cannot take every session slot or open
// streams without bound: its sessions past max_sessions_per_key and its
// streams past max_streams_per_key are refused with their own reasons
// (counted), while another key still gets a session.
func TestHardeningKeyQuotas(t *testing.T) {
	t.Parallel()
	g := harness.Start(t, "--max-sessions=4", "--max-sessions-per-key=2", "--max-streams-per-key=2")
	full := []string{scSessionOpen, scSessionClose, scEventsRead, scInvokeRead, scInvokeWrite}
	a := mxgatewayv1grpc.NewGatewayClient(g.Dial(t, createKey(t, g, keyspec{name: "greedy", scopes: full}).raw))
	b := mxgatewayv1grpc.NewGatewayClient(g.Dial(t, createKey(t, g, keyspec{name: "other", scopes: full}).raw))
	ctx := harness.Context(t, step)

	sa := openSession(t, a, "a1")
	openSession(t, a, "a2")
	_, err := a.OpenSession(ctx, &mxgatewayv1.OpenSessionRequest{ClientName: "a3"})
	wantCode(t, err, codes.ResourceExhausted, mxgatewayv1.ReasonKeySessionLimit)
	openSession(t, b, "b1") // room is left for others

	sa.streamEvents(&mxgatewayv1.StreamEventsRequest{})
	sa.streamEvents(&mxgatewayv1.StreamEventsRequest{})
	wantCode(t, streamErr(ctx, a, sa.id), codes.ResourceExhausted, mxgatewayv1.ReasonKeyStreamLimit)

	m := scrape(t, g)
	if m[`mxgateway_limit_refusals_total{limit="key_session_limit"}`] != 1 || m[`mxgateway_limit_refusals_total{limit="key_stream_limit"}`] != 1 {
		t.Errorf("limit_refusals_total did not count the refusals")
	}
}

// TestHardeningCredentialThrottle: failed AuthenticateUser calls past the
// free ones are refused with CREDENTIAL_THROTTLED, each failure is audited
// with the user name and never the password, and counted.
func TestHardeningCredentialThrottle(t *testing.T) {
	t.Parallel()
	g := harness.Start(t, "--credential-backoff=1h", "--credential-backoff-max=2h")
	s := openSession(t, g.Client(), "guessing")
	s.register()
	const password = "guess-0x5eed"
	for range 4 { // three free failures, then the one that starts the back-off
		r := s.invoke(authUserCmd(s.hlmx, "operator", password))
		if r.GetUserId().GetUserId() != 0 {
			t.Fatalf("a wrong password authenticated: %v", r)
		}
	}
	_, err := s.invokeErr(authUserCmd(s.hlmx, "operator", "operator1"))
	wantCode(t, err, codes.ResourceExhausted, mxgatewayv1.ReasonCredentialThrottled)

	resp, err := g.Admin().ListAuditEvents(harness.Context(t, step), &mxgatewayv1.ListAuditEventsRequest{Action: "mxaccess.credential_failed"})
	if err != nil {
		t.Fatalf("ListAuditEvents: %v", err)
	}
	if len(resp.GetEvents()) != 4 {
		t.Fatalf("%d audit rows, want 4", len(resp.GetEvents()))
	}
	for _, ev := range resp.GetEvents() {
		if !strings.Contains(ev.GetDetail(), "operator") || strings.Contains(ev.GetDetail(), password) || ev.GetOutcome() != "denied" {
			t.Fatalf("audit row %v", ev)
		}
	}
	m := scrape(t, g)
	if m[`mxgateway_credential_failures_total{command="authenticate_user"}`] != 4 || m[`mxgateway_limit_refusals_total{limit="credential_throttled"}`] != 1 {
		t.Errorf("credential metrics did not count the failures and the refusal")
	}
}

// rawCodec sends *[]byte as they are: requests that are no valid message.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*(v.(*[]byte)) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

// TestHardeningBoundsBeforeAuth: what a caller can make the gateway hold
// before its key is checked is bounded: connections per listener, header
// blocks, health watches; undecodable requests are INVALID_ARGUMENT.
func TestHardeningBoundsBeforeAuth(t *testing.T) {
	t.Parallel()
	g := harness.Start(t, "--max-connections=8", "--max-health-watches=2", "--max-header-list-bytes=8KiB")
	ctx := harness.Context(t, step)
	c := g.Client()
	if _, err := c.ListSessions(ctx, &mxgatewayv1.ListSessionsRequest{}); err != nil {
		t.Fatal(err)
	}

	t.Run("undecodable request", func(t *testing.T) {
		body, out := []byte{0x0a, 0x02, 0xff, 0xfe}, []byte(nil) // client_name: invalid UTF-8
		err := g.Conn().Invoke(ctx, mxgatewayv1grpc.Gateway_OpenSession_FullMethodName, &body, &out, grpc.ForceCodec(rawCodec{}))
		wantCode(t, err, codes.InvalidArgument, mxgatewayv1.ReasonInvalidRequest)
	})
	t.Run("header block", func(t *testing.T) {
		big := metadata.AppendToOutgoingContext(ctx, "x-padding", strings.Repeat("p", 64<<10))
		if _, err := c.ListSessions(big, &mxgatewayv1.ListSessionsRequest{}); status.Code(err) == codes.OK {
			t.Fatal("a 64 KiB header block was accepted")
		}
		if _, err := c.ListSessions(ctx, &mxgatewayv1.ListSessionsRequest{}); err != nil {
			t.Fatalf("after the refused call: %v", err)
		}
	})
	t.Run("health watches", func(t *testing.T) {
		anon := g.Dial(t, "")
		hc := healthpb.NewHealthClient(anon)
		wctx, stop := context.WithCancel(ctx)
		defer stop()
		watch := func(ctx context.Context) error {
			w, err := hc.Watch(ctx, &healthpb.HealthCheckRequest{})
			if err == nil {
				_, err = w.Recv()
			}
			return err
		}
		for range 2 {
			if err := watch(wctx); err != nil {
				t.Fatal(err)
			}
		}
		wantCode(t, watch(ctx), codes.ResourceExhausted, mxgatewayv1.ReasonWatchLimit)
	})
	t.Run("connections per listener", func(t *testing.T) {
		var socks []net.Conn
		for range 8 { // sockets that never speak fill every slot
			conn, err := net.Dial("tcp", g.GRPCAddr)
			if err != nil {
				t.Fatal(err)
			}
			socks = append(socks, conn)
		}
		late := mxgatewayv1grpc.NewGatewayClient(g.Dial(t, g.AdminKey))
		short, cancel := context.WithTimeout(ctx, time.Second)
		_, err := late.ListSessions(short, &mxgatewayv1.ListSessionsRequest{})
		cancel()
		if code := status.Code(err); code != codes.DeadlineExceeded && code != codes.Unavailable {
			t.Fatalf("a connection past max_connections was served: %v", err)
		}
		if n := scrape(t, g)[`mxgateway_connections_open{listener="grpc"}`]; n != 8 {
			t.Errorf("connections_open{listener=grpc} = %v, want the limit 8", n)
		}
		for _, s := range socks {
			s.Close()
		}
		eventually(t, "a slot to free up", func() error {
			short, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			_, err := late.ListSessions(short, &mxgatewayv1.ListSessionsRequest{})
			return err
		})
	})
	if scrape(t, g)[`mxgateway_limit_refusals_total{limit="health_watch_limit"}`] != 1 {
		t.Error("limit_refusals_total did not count the health watch")
	}
}

// TestHardeningClosedLooksUnknown: to a key that does not own a session,
// a closed session id and an id that never existed get the same answer
// (NOT_FOUND, same reason and message) from every session call; the owner
// still learns that its own session was closed.
func TestHardeningClosedLooksUnknown(t *testing.T) {
	t.Parallel()
	g := harness.Start(t)
	full := []string{scSessionOpen, scSessionClose, scEventsRead, scInvokeRead, scInvokeWrite}
	a := mxgatewayv1grpc.NewGatewayClient(g.Dial(t, createKey(t, g, keyspec{name: "owner", scopes: full}).raw))
	b := mxgatewayv1grpc.NewGatewayClient(g.Dial(t, createKey(t, g, keyspec{name: "prober", scopes: full}).raw))
	ctx := harness.Context(t, step)

	s := openSession(t, a, "closed soon")
	s.close()
	unknown := "0123456789abcdef0123456789abcdef"
	answers := func(id string) []*status.Status {
		_, errClose := b.CloseSession(ctx, &mxgatewayv1.CloseSessionRequest{SessionId: id})
		_, errInvoke := b.Invoke(ctx, &mxgatewayv1.InvokeRequest{SessionId: id, Command: registerCmd()})
		return []*status.Status{status.Convert(errClose), status.Convert(errInvoke), status.Convert(streamErr(ctx, b, id))}
	}
	closed, never := answers(s.id), answers(unknown)
	for i := range closed {
		if closed[i].Code() != codes.NotFound || !proto.Equal(closed[i].Proto(), never[i].Proto()) {
			t.Errorf("call %d: closed session %v, unknown session %v: want the same NOT_FOUND", i, closed[i].Proto(), never[i].Proto())
		}
	}
	wantCode(t, closed[0].Err(), codes.NotFound, mxgatewayv1.ReasonSessionNotFound)
	if resp, err := a.CloseSession(ctx, &mxgatewayv1.CloseSessionRequest{SessionId: s.id}); err != nil || !resp.GetAlreadyClosed() {
		t.Fatalf("the owner's second close = %v, %v", resp, err)
	}
}
