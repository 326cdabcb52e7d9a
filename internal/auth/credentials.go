package auth

import (
	"context"
	"fmt"
	"sync"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/catalog"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/mxgatewayv1grpc"
	"github.com/mxgateway/mxgateway/internal/logging"
	"github.com/mxgateway/mxgateway/internal/store"
)

// Defaults of CredentialConfig.
const (
	// DefaultCredentialBackoff is the first wait after the free failures.
	DefaultCredentialBackoff = time.Second
	// DefaultCredentialBackoffMax bounds the wait; a source without a
	// failure for this long starts again from zero.
	DefaultCredentialBackoffMax = 5 * time.Minute
	// CredentialFreeFailures is how many failed credential checks a key or
	// session may make before the back-off starts.
	CredentialFreeFailures = 3
	// maxCredentialSources bounds the back-off table (keys plus sessions).
	maxCredentialSources = 8192
)

// ActionCredentialFailed is the audit action of a failed MXAccess
// credential check.
const ActionCredentialFailed = "mxaccess.credential_failed"

// CredentialConfig configures the throttle of failed MXAccess credential
// checks (AuthenticateUser, WriteSecured, WriteSecured2 and their bulk
// forms). Zero fields take the defaults.
type CredentialConfig struct {
	// Backoff is the wait after the first failure past
	// CredentialFreeFailures; it doubles with every further failure.
	Backoff time.Duration
	// BackoffMax bounds the wait.
	BackoffMax time.Duration
	// OnFailure is called for every failed check with the command kind's
	// name, for metrics. May be nil.
	OnFailure func(command string)
}

// IsCredentialCommand reports whether cmd presents MXAccess credentials:
// a user name and password (AuthenticateUser) or user ids (secured and
// verified writes).
func IsCredentialCommand(cmd *mxgatewayv1.Command) bool {
	switch cmd.GetKind().(type) {
	case *mxgatewayv1.Command_AuthenticateUser, *mxgatewayv1.Command_WriteSecured, *mxgatewayv1.Command_WriteSecured2,
		*mxgatewayv1.Command_WriteSecuredBulk, *mxgatewayv1.Command_WriteSecured2Bulk:
		return true
	}
	return false
}

// credentialFailed reports whether MXAccess refused the password of an
// AuthenticateUser: it returned no user id, or failed (OS-user security).
// Secured writes are not judged here: MXAccess gives their security
// verdict later, in OnWriteComplete (the session matches it to the write
// and reports it to SecuredWriteRefused), and a synchronous refusal of one
// is about its handle or value.
func credentialFailed(cmd *mxgatewayv1.Command, reply *mxgatewayv1.Reply) bool {
	if reply == nil || cmd.GetAuthenticateUser() == nil {
		return false // a gateway failure (timeout, worker gone) checked nothing
	}
	return reply.GetStatus() == mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_MXACCESS_FAILURE ||
		reply.GetUserId().GetUserId() == 0
}

// backoff is the failure record of one source (a key or a session).
type backoff struct {
	failures int
	last     time.Time // of the last failure
	until    time.Time // checks are refused before this
}

// credentialThrottle refuses credential commands of a key or session that
// failed too often, with a wait that doubles per failure.
type credentialThrottle struct {
	base, max time.Duration
	onFailure func(string)

	mu      sync.Mutex
	sources map[string]*backoff // "key:<id>" and "session:<id>"
}

func newCredentialThrottle(cfg CredentialConfig) *credentialThrottle {
	t := &credentialThrottle{base: cfg.Backoff, max: cfg.BackoffMax, onFailure: cfg.OnFailure, sources: make(map[string]*backoff)}
	if t.base <= 0 {
		t.base = DefaultCredentialBackoff
	}
	if t.max <= 0 {
		t.max = DefaultCredentialBackoffMax
	}
	t.max = max(t.max, t.base)
	return t
}

// wait returns how long source must still wait (0: it may try now).
func (t *credentialThrottle) waitLocked(source string, now time.Time) time.Duration {
	b := t.sources[source]
	if b == nil {
		return 0
	}
	if now.Sub(b.last) >= t.max { // quiet long enough: forgiven
		delete(t.sources, source)
		return 0
	}
	return max(0, b.until.Sub(now))
}

// fail records a failure of source.
func (t *credentialThrottle) failLocked(source string, now time.Time) {
	b := t.sources[source]
	if b == nil || now.Sub(b.last) >= t.max {
		if len(t.sources) >= maxCredentialSources {
			t.pruneLocked(now)
		}
		b = &backoff{}
		t.sources[source] = b
	}
	b.failures++
	b.last = now
	if n := b.failures - CredentialFreeFailures; n > 0 {
		d := t.max
		if n <= 30 {
			d = min(t.max, t.base<<(n-1))
		}
		b.until = now.Add(d)
	}
}

// pruneLocked forgets forgiven sources, then (still full) the oldest.
func (t *credentialThrottle) pruneLocked(now time.Time) {
	var oldest string
	for k, b := range t.sources {
		if now.Sub(b.last) >= t.max {
			delete(t.sources, k)
		} else if oldest == "" || b.last.Before(t.sources[oldest].last) {
			oldest = k
		}
	}
	if len(t.sources) >= maxCredentialSources && oldest != "" {
		delete(t.sources, oldest)
	}
}

// CheckCredentials refuses a credential command (IsCredentialCommand) of
// the caller behind ctx on session sessionID while the caller's key or the
// session is in its back-off: RESOURCE_EXHAUSTED, reason
// CREDENTIAL_THROTTLED, with a RetryInfo. Other commands pass.
func (g *Guard) CheckCredentials(ctx context.Context, sessionID string, cmd *mxgatewayv1.Command) error {
	if !IsCredentialCommand(cmd) {
		return nil
	}
	p, _ := FromContext(ctx)
	t := g.creds
	now := g.now()
	t.mu.Lock()
	wait := t.waitLocked("session:"+sessionID, now)
	if p != nil {
		wait = max(wait, t.waitLocked("key:"+p.KeyID, now))
	}
	t.mu.Unlock()
	if wait <= 0 {
		return nil
	}
	g.limited(mxgatewayv1.ReasonCredentialThrottled)
	msg := fmt.Sprintf("too many failed credential checks: retry in %v", wait.Round(time.Millisecond))
	st := status.New(codes.ResourceExhausted, msg)
	if d, err := st.WithDetails(&errdetails.ErrorInfo{Reason: mxgatewayv1.ReasonCredentialThrottled, Domain: mxgatewayv1.ErrorDomain},
		&errdetails.RetryInfo{RetryDelay: durationpb.New(wait)}); err == nil {
		st = d
	}
	return st.Err()
}

// CredentialsChecked records the outcome of a credential command that
// reached the worker on a live registration: a failed AuthenticateUser
// extends the back-off of the caller's key and of the session, is counted
// (OnFailure) and audited with the user name, never the password.
func (g *Guard) CredentialsChecked(ctx context.Context, sessionID string, cmd *mxgatewayv1.Command, reply *mxgatewayv1.Reply) {
	if !IsCredentialCommand(cmd) || !credentialFailed(cmd, reply) {
		return
	}
	detail := "MXAccess refused the credentials"
	if u := cmd.GetAuthenticateUser(); u != nil {
		detail = fmt.Sprintf("MXAccess refused the credentials of user %q", u.GetUserName())
	}
	g.credentialFailure(ctx, sessionID, catalog.Of(cmd).Name(), invokeAction(cmd), detail)
}

// SecuredWriteRefused records a secured or verified write whose
// OnWriteComplete said MxCategorySecurityError (MXACCESS.md §5.6) exactly
// like a failed AuthenticateUser: the back-off of the caller behind ctx
// (the context of the Invoke that made the write) and of the session grows,
// the failure is counted under command (the write's command kind name) and
// audited with users (the user names and ids the write presented; a
// write carries no password).
func (g *Guard) SecuredWriteRefused(ctx context.Context, sessionID, command, users string) {
	g.credentialFailure(ctx, sessionID, command, mxgatewayv1grpc.Gateway_Invoke_FullMethodName+"#"+command, "MXAccess refused the credentials of "+users)
}

// credentialFailure is one failed credential check of command kind
// (its metric label) made through method (its log name).
func (g *Guard) credentialFailure(ctx context.Context, sessionID, kind, method, detail string) {
	p, _ := FromContext(ctx)
	t := g.creds
	now := g.now()
	t.mu.Lock()
	t.failLocked("session:"+sessionID, now)
	actor := ""
	if p != nil {
		actor = p.KeyID
		t.failLocked("key:"+actor, now)
	}
	t.mu.Unlock()
	if t.onFailure != nil {
		t.onFailure(kind)
	}
	remote := remoteAddr(ctx)
	g.log.Warn("auth: MXAccess credential check failed", logging.KeyMethod, method, logging.KeyKeyID, actor,
		logging.KeySession, sessionID, "remote", remote)
	if g.mgr == nil {
		return
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := g.mgr.store.AppendAudit(actx, store.AuditEvent{
		Time: now, ActorKeyID: actor, Action: ActionCredentialFailed, Target: "session " + sessionID,
		Outcome: store.OutcomeDenied, Detail: kind + ": " + detail, RemoteAddr: remote,
	}); err != nil {
		g.log.Warn("auth: audit write failed", logging.KeyErr, err)
	}
}
