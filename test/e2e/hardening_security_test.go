package e2e

import (
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/test/e2e/harness"
)

// These tests cover the hardening limits of docs/security.md: revocation,
// per-key quotas, bounds before authentication, credential guessing and
// small leaks.

// sessionListed returns the admin's view of session id, or nil when it is
// no longer listed.
func sessionListed(t *testing.T, admin mxgatewayv1.GatewayClient, id string) *mxgatewayv1.SessionInfo {
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
	admin := mxgatewayv1.NewGatewayClient(g.Conn())
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
			s := openSession(t, mxgatewayv1.NewGatewayClient(g.Dial(t, k.raw)), "revocation")
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
