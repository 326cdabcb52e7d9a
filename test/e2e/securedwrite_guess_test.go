package e2e

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	sdk "github.com/mxgateway/mxgateway/client"
	"github.com/mxgateway/mxgateway/test/e2e/harness"
)

// securedModel writes the demo Galaxy with Galaxy security on (secured and
// verified writes are checked) and returns its path.
func securedModel(t *testing.T) string {
	t.Helper()
	model, err := os.ReadFile("../../internal/backend/sim/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "secured.yaml")
	model = append(model, "\nknobs:\n  securityMode: galaxy\n"...)
	if err := os.WriteFile(path, model, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// wantSecurityRefusal checks that a secured write came back refused in
// its OnWriteComplete (MxCategorySecurityError): the client got the event.
func wantSecurityRefusal(t *testing.T, what string, err error) {
	t.Helper()
	var me *sdk.MxAccessError
	if !errors.As(err, &me) || me.Method != "OnWriteComplete" ||
		me.Statuses.FirstFailure().GetCategory() != mxgatewayv1.MxStatusCategory_MX_STATUS_CATEGORY_SECURITY_ERROR {
		t.Fatalf("%s: %v, want an OnWriteComplete with MxCategorySecurityError", what, err)
	}
}

// TestHardeningSecuredWriteCredentials: the credentials of secured and
// verified writes are judged in OnWriteComplete. Through the Go SDK, a
// refused one still reaches the client as its completion, and is treated
// exactly like a failed AuthenticateUser: counted under its command kind,
// audited with the user name (never a password), and it grows the back-off,
// so that the next secured write is refused CREDENTIAL_THROTTLED without
// reaching MXAccess. An accepted secured write counts nothing.
func TestHardeningSecuredWriteCredentials(t *testing.T) {
	t.Parallel()
	g := harness.Start(t, "--sim-model="+securedModel(t), "--credential-backoff=1h", "--credential-backoff-max=2h")
	key := createKey(t, g, keyspec{name: "secured writer",
		scopes: []string{scSessionOpen, scSessionClose, scEventsRead, scInvokeRead, scInvokeWrite, scInvokeSecure}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	opts := []sdk.Option{sdk.WithAPIKey(key.raw)}
	if g.CAFile != "" {
		opts = append(opts, sdk.WithCAFile(g.CAFile))
	}
	c, err := sdk.Dial(ctx, g.GRPCAddr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := c.OpenSession(ctx, "secured guessing")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	const guessPassword = "guess-0xbad"
	// 1: a wrong password (AuthenticateUser, counted as before).
	if _, err := s.Authenticate(ctx, demoUser, guessPassword); !errors.Is(err, sdk.ErrAuthenticationFailed) {
		t.Fatalf("Authenticate with a wrong password: %v", err)
	}
	// 2: what a careless client does next: a secured write with user id 0.
	_, err = s.WriteValue(ctx, "Pump1.StartCmd", true, sdk.Secured(0, 0))
	wantSecurityRefusal(t, "secured write without a user", err)
	// 3: a verified write verified by the writer itself.
	id, err := s.Authenticate(ctx, demoUser, demoPassword)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.WriteValue(ctx, "Valve1.Cmd", 1, sdk.Secured(id, id))
	wantSecurityRefusal(t, "verified write without a verifier", err)
	// An accepted secured write is no failure.
	if _, err := s.WriteValue(ctx, "Pump1.StartCmd", true, sdk.Secured(id, id)); err != nil {
		t.Fatalf("secured write of %s: %v", demoUser, err)
	}
	// 4: the failure past the free ones starts the back-off.
	_, err = s.WriteValue(ctx, "Valve1.Cmd", 2, sdk.Secured(id, id))
	wantSecurityRefusal(t, "verified write without a verifier, again", err)

	// Throttled now, with AuthenticateUser's code and reason: the secured
	// write is refused before MXAccess sees it, and so is a login.
	_, err = s.WriteValue(ctx, "Pump1.StartCmd", false, sdk.Secured(id, id))
	var ge *sdk.GatewayError
	if !errors.As(err, &ge) || ge.Code != codes.ResourceExhausted || ge.Reason != mxgatewayv1.ReasonCredentialThrottled {
		t.Fatalf("secured write in the back-off: %v, want RESOURCE_EXHAUSTED %s", err, mxgatewayv1.ReasonCredentialThrottled)
	}
	if _, err := s.Authenticate(ctx, demoUser, demoPassword); !errors.As(err, &ge) || ge.Reason != mxgatewayv1.ReasonCredentialThrottled {
		t.Fatalf("AuthenticateUser in the back-off: %v, want %s", err, mxgatewayv1.ReasonCredentialThrottled)
	}

	resp, err := g.Admin().ListAuditEvents(harness.Context(t, step), &mxgatewayv1.ListAuditEventsRequest{Action: "mxaccess.credential_failed"})
	if err != nil {
		t.Fatalf("ListAuditEvents: %v", err)
	}
	var commands []string
	for _, ev := range resp.GetEvents() {
		if ev.GetActorKeyId() != key.id || ev.GetOutcome() != "denied" || strings.Contains(ev.GetDetail(), guessPassword) ||
			strings.Contains(ev.GetDetail(), demoPassword) {
			t.Fatalf("audit row %v", ev)
		}
		cmd, _, _ := strings.Cut(ev.GetDetail(), ":")
		commands = append(commands, cmd)
		if cmd == "write_secured" && !strings.Contains(ev.GetDetail(), "user id 0") && !strings.Contains(ev.GetDetail(), `"`+demoUser+`"`) {
			t.Fatalf("secured write audit row names no user: %v", ev)
		}
	}
	if got := strings.Join(commands, ","); strings.Count(got, "write_secured") != 3 || strings.Count(got, "authenticate_user") != 1 {
		t.Fatalf("audit rows for %s, want 3 write_secured and 1 authenticate_user", got)
	}
	m := scrape(t, g)
	if m[`mxgateway_credential_failures_total{command="write_secured"}`] != 3 ||
		m[`mxgateway_credential_failures_total{command="authenticate_user"}`] != 1 ||
		m[`mxgateway_limit_refusals_total{limit="credential_throttled"}`] != 2 {
		t.Errorf("credential metrics: write_secured %v, authenticate_user %v, throttled %v; want 3, 1, 2",
			m[`mxgateway_credential_failures_total{command="write_secured"}`],
			m[`mxgateway_credential_failures_total{command="authenticate_user"}`],
			m[`mxgateway_limit_refusals_total{limit="credential_throttled"}`])
	}
}
