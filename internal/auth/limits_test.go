package auth

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/internal/store"
	"github.com/mxgateway/mxgateway/internal/testutil"
)

// TestStreamsPerKey: a key's streams past MaxStreamsPerKey are refused
// with RESOURCE_EXHAUSTED / KEY_STREAM_LIMIT (counted), other keys are not
// affected, and an ended stream frees its slot.
func TestStreamsPerKey(t *testing.T) {
	testutil.CheckLeaks(t)
	e := newEnv(t)
	var limited []string
	g, err := NewGuard(GuardConfig{Manager: e.mgr, MaxStreamsPerKey: 2, OnLimit: func(r string) { limited = append(limited, r) }})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := e.mustCreate(t, "a", Constraints{}, ScopeEventsRead)
	b, _ := e.mustCreate(t, "b", Constraints{}, ScopeEventsRead)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	a1, a2 := openStream(t, ctx, g, a), openStream(t, ctx, g, a)
	testutil.Eventually(t, 5*time.Second, func() error {
		if e.mgr.Watched() != 2 {
			return errors.New("streams not open yet")
		}
		return nil
	})
	st := wantCode(t, waitEnd(t, openStream(t, ctx, g, a)), codes.ResourceExhausted, mxgatewayv1.ReasonKeyStreamLimit)
	if len(limited) != 1 || limited[0] != mxgatewayv1.ReasonKeyStreamLimit {
		t.Fatalf("OnLimit calls %q", limited)
	}
	hasQuota := false
	for _, d := range st.Details() {
		_, ok := d.(*errdetails.QuotaFailure)
		hasQuota = hasQuota || ok
	}
	if !hasQuota {
		t.Fatal("no QuotaFailure detail")
	}
	bctx, stopB := context.WithCancel(ctx)
	b1 := openStream(t, bctx, g, b)
	testutil.Eventually(t, 5*time.Second, func() error {
		if e.mgr.Watched() != 3 {
			return errors.New("the other key's stream is not open")
		}
		return nil
	})
	stopB()
	waitEnd(t, b1)
	stop()
	waitEnd(t, a1)
	waitEnd(t, a2)
	// Slots are free again.
	ctx2, stop2 := context.WithCancel(context.Background())
	again := openStream(t, ctx2, g, a)
	testutil.Eventually(t, 5*time.Second, func() error {
		if e.mgr.Watched() != 1 {
			return errors.New("a new stream is not open")
		}
		return nil
	})
	stop2()
	if err := waitEnd(t, again); !errors.Is(err, context.Canceled) {
		t.Fatalf("the stream after the others ended: %v", err)
	}
}

func authUser(user, password string) *mxgatewayv1.Command {
	return &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_AuthenticateUser{AuthenticateUser: &mxgatewayv1.AuthenticateUserCommand{
		ServerHandle: 1, UserName: user, Password: password}}}
}

// TestCredentialThrottle: failed MXAccess credential checks of a key or
// session beyond the free ones are refused for a back-off that doubles
// (RESOURCE_EXHAUSTED / CREDENTIAL_THROTTLED with a RetryInfo); every
// failure is counted and audited with the user name, never the password.
func TestCredentialThrottle(t *testing.T) {
	e := newEnv(t)
	var failures atomic.Int32
	var limited atomic.Int32
	g, err := NewGuard(GuardConfig{Manager: e.mgr, Now: e.clock.now, OnLimit: func(string) { limited.Add(1) },
		Credentials: CredentialConfig{Backoff: time.Second, BackoffMax: time.Minute, OnFailure: func(string) { failures.Add(1) }}})
	if err != nil {
		t.Fatal(err)
	}
	_, ka := e.mustCreate(t, "a", Constraints{}, ScopeInvokeWrite)
	_, kb := e.mustCreate(t, "b", Constraints{}, ScopeInvokeWrite)
	ctxA := NewContext(context.Background(), principalOf(ka))
	ctxB := NewContext(context.Background(), principalOf(kb))
	const password = "hunter2-not-logged"
	cmd := authUser(`GALAXY\operator`, password)
	refused := &mxgatewayv1.Reply{Status: mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK,
		Result: &mxgatewayv1.Reply_UserId{UserId: &mxgatewayv1.UserIdResult{UserId: 0}}}
	accepted := &mxgatewayv1.Reply{Status: mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK,
		Result: &mxgatewayv1.Reply_UserId{UserId: &mxgatewayv1.UserIdResult{UserId: 7}}}
	throttled := func(ctx context.Context, session string, want time.Duration) {
		t.Helper()
		err := g.CheckCredentials(ctx, session, cmd)
		if want == 0 {
			if err != nil {
				t.Fatalf("CheckCredentials = %v, want allowed", err)
			}
			return
		}
		st := wantCode(t, err, codes.ResourceExhausted, mxgatewayv1.ReasonCredentialThrottled)
		for _, d := range st.Details() {
			if ri, ok := d.(*errdetails.RetryInfo); ok {
				if got := ri.GetRetryDelay().AsDuration(); got != want {
					t.Fatalf("retry delay %v, want %v", got, want)
				}
				return
			}
		}
		t.Fatal("no RetryInfo")
	}

	for range CredentialFreeFailures {
		throttled(ctxA, "s1", 0)
		g.CredentialsChecked(ctxA, "s1", cmd, refused)
	}
	throttled(ctxA, "s1", 0)
	g.CredentialsChecked(ctxA, "s1", cmd, refused) // the first failure past the free ones
	throttled(ctxA, "s1", time.Second)
	throttled(ctxA, "s2", time.Second) // the key is throttled on every session
	throttled(ctxB, "s1", time.Second) // and the session for every key
	throttled(ctxB, "s2", 0)
	// Secured writes present credentials too: refused while in back-off.
	secured := &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_WriteSecured{WriteSecured: &mxgatewayv1.WriteSecuredCommand{
		ServerHandle: 1, ItemHandle: 1, CurrentUserId: 7, VerifierUserId: 7}}}
	wantCode(t, g.CheckCredentials(ctxA, "s1", secured), codes.ResourceExhausted, mxgatewayv1.ReasonCredentialThrottled)
	// Other commands pass; a success does not reset the count.
	if err := g.CheckCredentials(ctxA, "s1", &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Register{Register: &mxgatewayv1.RegisterCommand{}}}); err != nil {
		t.Fatalf("Register throttled: %v", err)
	}
	e.clock.t = e.clock.t.Add(time.Second)
	throttled(ctxA, "s1", 0)
	g.CredentialsChecked(ctxA, "s1", cmd, accepted)
	g.CredentialsChecked(ctxA, "s1", cmd, refused)
	throttled(ctxA, "s1", 2*time.Second) // it doubled
	// A quiet key is forgiven after BackoffMax.
	e.clock.t = e.clock.t.Add(time.Minute)
	throttled(ctxA, "s1", 0)

	if n := failures.Load(); n != CredentialFreeFailures+2 {
		t.Fatalf("%d failures counted, want %d", n, CredentialFreeFailures+2)
	}
	if limited.Load() != 5 {
		t.Fatalf("%d refusals counted, want 5", limited.Load())
	}
	rows, err := e.mgr.ListAudit(context.Background(), store.AuditFilter{Action: ActionCredentialFailed})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != CredentialFreeFailures+2 {
		t.Fatalf("%d audit rows, want %d", len(rows), CredentialFreeFailures+2)
	}
	for _, r := range rows {
		if r.ActorKeyID != ka.ID || r.Outcome != store.OutcomeDenied || !strings.Contains(r.Detail, `GALAXY\\operator`) || strings.Contains(r.Detail, password) {
			t.Fatalf("audit row %+v", r)
		}
	}
}

// TestSecuredWriteRefusedThrottles: a secured write whose OnWriteComplete
// refused its credentials counts exactly like a failed AuthenticateUser:
// it is counted under its command kind, audited with the user names it
// presented, and grows the back-off of the key and the session, so later
// secured writes and AuthenticateUser are refused with the same code and
// reason.
func TestSecuredWriteRefusedThrottles(t *testing.T) {
	e := newEnv(t)
	var mu sync.Mutex
	counted := map[string]int{}
	g, err := NewGuard(GuardConfig{Manager: e.mgr, Now: e.clock.now,
		Credentials: CredentialConfig{Backoff: time.Second, BackoffMax: time.Minute, OnFailure: func(c string) {
			mu.Lock()
			counted[c]++
			mu.Unlock()
		}}})
	if err != nil {
		t.Fatal(err)
	}
	_, ka := e.mustCreate(t, "a", Constraints{}, ScopeInvokeWrite)
	ctx := NewContext(context.Background(), principalOf(ka))
	secured := &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_WriteSecured{WriteSecured: &mxgatewayv1.WriteSecuredCommand{
		ServerHandle: 1, ItemHandle: 1, CurrentUserId: 7, VerifierUserId: 7}}}
	for i := range CredentialFreeFailures + 1 {
		if err := g.CheckCredentials(ctx, "s1", secured); err != nil {
			t.Fatalf("secured write %d refused before the back-off: %v", i, err)
		}
		g.SecuredWriteRefused(ctx, "s1", "write_secured", `user "operator" (id 7)`)
	}
	wantCode(t, g.CheckCredentials(ctx, "s1", secured), codes.ResourceExhausted, mxgatewayv1.ReasonCredentialThrottled)
	wantCode(t, g.CheckCredentials(ctx, "s1", authUser("operator", "x")), codes.ResourceExhausted, mxgatewayv1.ReasonCredentialThrottled)
	ctxOther := NewContext(context.Background(), principalOf(ka))
	wantCode(t, g.CheckCredentials(ctxOther, "s2", secured), codes.ResourceExhausted, mxgatewayv1.ReasonCredentialThrottled) // the key
	if counted["write_secured"] != CredentialFreeFailures+1 || len(counted) != 1 {
		t.Fatalf("counted %v, want %d write_secured", counted, CredentialFreeFailures+1)
	}
	rows, err := e.mgr.ListAudit(context.Background(), store.AuditFilter{Action: ActionCredentialFailed})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != CredentialFreeFailures+1 {
		t.Fatalf("%d audit rows, want %d", len(rows), CredentialFreeFailures+1)
	}
	for _, r := range rows {
		if r.ActorKeyID != ka.ID || r.Target != "session s1" || r.Outcome != store.OutcomeDenied ||
			r.Detail != `write_secured: MXAccess refused the credentials of user "operator" (id 7)` {
			t.Fatalf("audit row %+v", r)
		}
	}
}
