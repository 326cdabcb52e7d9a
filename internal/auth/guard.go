package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/catalog"
	mxgatewayv1grpc "github.com/mxgateway/mxgateway/api/mxgateway/v1/mxgatewayv1grpc"
	"github.com/mxgateway/mxgateway/internal/logging"
	"github.com/mxgateway/mxgateway/internal/store"
)

// Mode selects how callers are authenticated.
type Mode string

// Modes.
const (
	// ModeAPIKey requires an API key on every call except health checks.
	ModeAPIKey Mode = "apikey"
	// ModeNone disables authentication: every caller is an anonymous admin.
	// Accepted only when every listener is on loopback (config.Validate).
	ModeNone Mode = "none"
)

// ParseMode parses an --auth value: "apikey" (also "" and "api-key") or
// "none".
func ParseMode(s string) (Mode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "apikey", "api-key", "api_key":
		return ModeAPIKey, nil
	case "none":
		return ModeNone, nil
	}
	return "", fmt.Errorf("auth: unknown auth mode %q (want apikey or none)", s)
}

// Metadata keys that carry the key. "authorization: Bearer mxgw_..." is the
// standard form; "x-api-key: mxgw_..." is accepted too.
const (
	MDAuthorization = "authorization"
	MDAPIKey        = "x-api-key"
)

// Audit rate defaults: per source (key id, else remote IP) and global.
const (
	DefaultAuditRate        = 0.1 // denials per second per source, sustained
	DefaultAuditBurst       = 10
	DefaultGlobalAuditRate  = 0.5 // denials per second overall, sustained
	DefaultGlobalAuditBurst = 100
)

// GuardConfig configures NewGuard.
type GuardConfig struct {
	// Mode is ModeAPIKey (the default) or ModeNone.
	Mode Mode
	// Manager verifies keys and owns the audit log; required for
	// ModeAPIKey, optional for ModeNone (then denials are logged only).
	Manager *Manager
	// Logger receives denials (rate-limited like the audit) and warnings.
	Logger *slog.Logger
	// OnDenied is called once for every denial with its reason (an
	// mxgatewayv1.Reason* constant), unthrottled, for metrics. May be nil.
	OnDenied func(reason string)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// AuditRate and AuditBurst limit audited denials per source; zero
	// values use the defaults.
	AuditRate  float64
	AuditBurst int
	// GlobalAuditRate and GlobalAuditBurst limit audited denials overall.
	GlobalAuditRate  float64
	GlobalAuditBurst int

	// MaxStreamsPerKey caps the concurrent streams of one key
	// (RESOURCE_EXHAUSTED KEY_STREAM_LIMIT); 0 means no cap. Admin keys
	// (and ModeNone's anonymous admin) are not capped.
	MaxStreamsPerKey int
	// OnLimit is called for every call refused by a limit, with the
	// refusal's ErrorInfo reason. May be nil.
	OnLimit func(limit string)
	// Credentials configures the throttle of failed MXAccess credential
	// checks (see CredentialThrottle).
	Credentials CredentialConfig
}

// Guard authenticates and authorises gRPC calls. Use UnaryInterceptor and
// StreamInterceptor on the server, and CheckCommand / CheckSession from the
// handlers. It starts no goroutines.
type Guard struct {
	mode     Mode
	mgr      *Manager
	log      *slog.Logger
	onDenied func(string)
	now      func() time.Time
	limiter  *auditLimiter
	anon     *Principal

	maxStreams int
	onLimit    func(string)
	streamsMu  sync.Mutex
	streams    map[string]int // open streams by key id
	creds      *credentialThrottle
}

// NewGuard validates cfg and returns a Guard.
func NewGuard(cfg GuardConfig) (*Guard, error) {
	g := &Guard{mode: cfg.Mode, mgr: cfg.Manager, log: cfg.Logger, onDenied: cfg.OnDenied, now: cfg.Now,
		maxStreams: cfg.MaxStreamsPerKey, onLimit: cfg.OnLimit, streams: make(map[string]int)}
	if g.maxStreams < 0 {
		return nil, errors.New("auth: negative MaxStreamsPerKey")
	}
	if g.mode == "" {
		g.mode = ModeAPIKey
	}
	switch g.mode {
	case ModeAPIKey:
		if g.mgr == nil {
			return nil, errors.New("auth: guard in apikey mode needs a manager")
		}
	case ModeNone:
		g.anon = anonymousPrincipal()
	default:
		return nil, fmt.Errorf("auth: unknown mode %q", g.mode)
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if g.now == nil {
		g.now = time.Now
	}
	rate, burst := cfg.AuditRate, cfg.AuditBurst
	if rate <= 0 {
		rate = DefaultAuditRate
	}
	if burst <= 0 {
		burst = DefaultAuditBurst
	}
	grate, gburst := cfg.GlobalAuditRate, cfg.GlobalAuditBurst
	if grate <= 0 {
		grate = DefaultGlobalAuditRate
	}
	if gburst <= 0 {
		gburst = DefaultGlobalAuditBurst
	}
	g.limiter = newAuditLimiter(rate, burst, grate, gburst)
	g.creds = newCredentialThrottle(cfg.Credentials)
	return g, nil
}

// Mode returns the guard's mode.
func (g *Guard) Mode() Mode { return g.mode }

// UnaryInterceptor authenticates, checks the method's scope (for Invoke, the
// command kind's scope) and puts the Principal on the handler's context.
func (g *Guard) UnaryInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, err := g.Authorize(ctx, info.FullMethod, req)
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// StreamInterceptor is UnaryInterceptor for streams; the handler's
// ServerStream.Context() carries the Principal.
func (g *Guard) StreamInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, err := g.Authorize(ss.Context(), info.FullMethod, nil)
		if err != nil {
			return err
		}
		p, ok := FromContext(ctx)
		if !ok || p.Anonymous || g.mgr == nil {
			return handler(srv, &principalStream{ServerStream: ss, ctx: ctx})
		}
		if !p.IsAdmin() { // admin keys are above the per-key quota
			if err := g.acquireStream(p.KeyID); err != nil {
				return err
			}
			defer g.releaseStream(p.KeyID)
		}
		// A stream outlives the check above: it ends when its key is
		// revoked (UNAUTHENTICATED, API_KEY_REVOKED).
		wctx, stop := g.mgr.WatchRevocation(ctx, p.KeyID)
		defer stop()
		err = handler(srv, &principalStream{ServerStream: ss, ctx: wctx})
		var rev *RevokedError
		if errors.As(context.Cause(wctx), &rev) {
			g.log.Info("auth: stream ended: its API key was revoked", logging.KeyMethod, info.FullMethod, logging.KeyKeyID, p.KeyID)
			return rev
		}
		return err
	}
}

// acquireStream counts a stream of key id, refusing it past
// MaxStreamsPerKey.
func (g *Guard) acquireStream(id string) error {
	g.streamsMu.Lock()
	defer g.streamsMu.Unlock()
	if g.maxStreams > 0 && g.streams[id] >= g.maxStreams {
		g.limited(mxgatewayv1.ReasonKeyStreamLimit)
		return quotaStatus(mxgatewayv1.ReasonKeyStreamLimit,
			fmt.Sprintf("this API key already has %d streams open (max_streams_per_key)", g.maxStreams)).Err()
	}
	g.streams[id]++
	return nil
}

func (g *Guard) releaseStream(id string) {
	g.streamsMu.Lock()
	defer g.streamsMu.Unlock()
	if g.streams[id]--; g.streams[id] <= 0 {
		delete(g.streams, id)
	}
}

// limited reports a refusal by limit to OnLimit.
func (g *Guard) limited(limit string) {
	if g.onLimit != nil {
		g.onLimit(limit)
	}
}

// quotaStatus is RESOURCE_EXHAUSTED with an ErrorInfo and a QuotaFailure.
func quotaStatus(reason, msg string) *status.Status {
	st := status.New(codes.ResourceExhausted, msg)
	if d, err := st.WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: mxgatewayv1.ErrorDomain},
		&errdetails.QuotaFailure{Violations: []*errdetails.QuotaFailure_Violation{{Subject: reason, Description: msg}}}); err == nil {
		return d
	}
	return st
}

type principalStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *principalStream) Context() context.Context { return s.ctx }

// Authorize is the interceptors' logic: it returns ctx with the Principal,
// or a gRPC status error (UNAUTHENTICATED, PERMISSION_DENIED, or
// INVALID_ARGUMENT for an Invoke without a command). req is the request
// message for unary calls (needed for Invoke) and nil for streams. Exempt
// methods (health) pass without a principal.
func (g *Guard) Authorize(ctx context.Context, fullMethod string, req any) (context.Context, error) {
	scope, exempt, listed := MethodScope(fullMethod)
	if exempt {
		return ctx, nil
	}
	p, err := g.authenticate(ctx)
	if err != nil {
		st := authStatus(err)
		if st.Code() == codes.Internal {
			g.log.Error("auth: key verification failed", logging.KeyMethod, fullMethod, logging.KeyErr, err)
			return nil, st.Err()
		}
		g.deny(ctx, nil, mxgatewayv1.ReasonUnauthenticated, fullMethod, "", denyDetail(err))
		return nil, st.Err()
	}
	if !listed {
		return nil, g.denyScope(ctx, p, fullMethod, "", "method not in the scope table")
	}
	if scope == "" { // Invoke: the scope depends on the command kind
		ir, _ := req.(*mxgatewayv1.InvokeRequest)
		kind := catalog.Of(ir.GetCommand())
		if kind == nil {
			return nil, statusWithInfo(codes.InvalidArgument, mxgatewayv1.ReasonInvalidRequest,
				"invoke: command kind not set or unknown to this gateway", nil).Err()
		}
		var ok bool
		if scope, ok = CommandScope(kind); !ok {
			return nil, g.denyScope(ctx, p, fullMethod, kind.Name(), "command kind without a scope")
		}
		if !p.Has(scope) {
			return nil, g.denyScope(ctx, p, fullMethod, kind.Name(), "missing scope "+string(scope))
		}
		return NewContext(ctx, p), nil
	}
	if !p.Has(scope) {
		return nil, g.denyScope(ctx, p, fullMethod, "", "missing scope "+string(scope))
	}
	return NewContext(ctx, p), nil
}

func (g *Guard) denyScope(ctx context.Context, p *Principal, method, kind, why string) error {
	target := ""
	if kind != "" {
		target = "command " + kind
	}
	g.deny(ctx, p, mxgatewayv1.ReasonPermissionDenied, method, target, why)
	msg := "API key not allowed to call " + method
	if kind != "" {
		msg = "API key not allowed to run command " + kind
	}
	if strings.HasPrefix(why, "missing scope ") {
		msg += ": " + why
	}
	return statusWithInfo(codes.PermissionDenied, mxgatewayv1.ReasonPermissionDenied, msg, nil).Err()
}

// denyDetail says which authentication step failed, for the audit log only.
func denyDetail(err error) string {
	switch {
	case errors.Is(err, ErrNoKey):
		return "no key"
	case errors.Is(err, ErrMalformedKey):
		return "malformed key"
	case errors.Is(err, ErrKeyRevoked):
		return "revoked key"
	}
	return "unknown key id or wrong secret"
}

// authenticate returns the caller's principal.
func (g *Guard) authenticate(ctx context.Context) (*Principal, error) {
	if g.mode == ModeNone {
		return g.anon, nil
	}
	raw, err := keyFromMetadata(ctx)
	if err != nil {
		return nil, err
	}
	return g.mgr.Authenticate(ctx, raw)
}

// keyFromMetadata extracts the raw key; more than one key is malformed.
func keyFromMetadata(ctx context.Context) (string, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	var keys []string
	for _, v := range md.Get(MDAuthorization) {
		scheme, tok, ok := strings.Cut(strings.TrimSpace(v), " ")
		if !ok || !strings.EqualFold(scheme, "bearer") {
			return "", ErrMalformedKey
		}
		keys = append(keys, strings.TrimSpace(tok))
	}
	for _, v := range md.Get(MDAPIKey) {
		keys = append(keys, strings.TrimSpace(v))
	}
	switch {
	case len(keys) == 0:
		return "", ErrNoKey
	case len(keys) > 1:
		for _, k := range keys[1:] {
			if k != keys[0] {
				return "", ErrMalformedKey
			}
		}
	}
	return keys[0], nil
}

// remoteAddr returns the peer's address, or "".
func remoteAddr(ctx context.Context) string {
	if pr, ok := peer.FromContext(ctx); ok && pr.Addr != nil {
		return pr.Addr.String()
	}
	return ""
}

func remoteHost(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// deny counts a denial, and audits and logs it unless its source is over
// its rate.
func (g *Guard) deny(ctx context.Context, p *Principal, reason, action, target, detail string) {
	if g.onDenied != nil {
		g.onDenied(reason)
	}
	remote := remoteAddr(ctx)
	source, actor := "ip:"+remoteHost(remote), ""
	if p != nil {
		source, actor = "key:"+p.KeyID, p.KeyID
	}
	ok, suppressed := g.limiter.allow(source, g.now())
	if !ok {
		return
	}
	if suppressed > 0 {
		detail = fmt.Sprintf("%s (%d earlier denials from this source not audited)", detail, suppressed)
	}
	g.log.Warn("auth: call denied", logging.KeyMethod, action, logging.KeyKeyID, actor,
		"reason", reason, "target", target, "detail", detail, "remote", remote)
	if g.mgr == nil {
		return
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	err := g.mgr.store.AppendAudit(actx, store.AuditEvent{
		Time: g.now(), ActorKeyID: actor, Action: action, Target: target,
		Outcome: store.OutcomeDenied, Detail: reason + ": " + detail, RemoteAddr: remote,
	})
	if err != nil {
		g.log.Warn("auth: audit write failed", logging.KeyErr, err)
	}
}

// CheckCommand applies the caller's reference constraints (see the
// package-level CheckCommand) and records any denial: one audit row per
// call, however many entries were denied.
func (g *Guard) CheckCommand(ctx context.Context, sessionID string, cmd *mxgatewayv1.Command, itemRef ItemRefFunc) (Decision, error) {
	p, _ := FromContext(ctx)
	dec, err := CheckCommand(p, cmd, itemRef)
	var de *DeniedError
	switch {
	case errors.As(err, &de):
		g.deny(ctx, p, de.Reason, invokeAction(cmd), "session "+sessionID, de.Message)
	case err != nil:
		return Decision{}, err
	case len(dec.Denials) > 0:
		g.deny(ctx, p, mxgatewayv1.ReasonReferenceForbidden, invokeAction(cmd), "session "+sessionID,
			fmt.Sprintf("%d entries denied by reference constraints", len(dec.Denials)))
	}
	return dec, err
}

// Refused records that the worker's item guard refused a write the
// constraints had approved: a handle no longer named the approved
// reference (a command whose caller stopped waiting changed it). entries is
// the number of refused bulk entries (0 for a single command); detail is
// the worker's explanation, naming the reference its item table holds.
func (g *Guard) Refused(ctx context.Context, sessionID string, cmd *mxgatewayv1.Command, entries int, detail string) {
	p, _ := FromContext(ctx)
	if entries > 0 {
		detail = fmt.Sprintf("%d entries refused by the worker's item guard; first: %s", entries, detail)
	} else {
		detail = "refused by the worker's item guard: " + detail
	}
	g.deny(ctx, p, mxgatewayv1.ReasonReferenceForbidden, invokeAction(cmd), "session "+sessionID, detail)
}

// invokeAction names an Invoke of cmd's kind in the audit log.
func invokeAction(cmd *mxgatewayv1.Command) string {
	return mxgatewayv1grpc.Gateway_Invoke_FullMethodName + "#" + catalog.Of(cmd).Name()
}

// CheckSession returns nil when the caller may use a session opened by
// ownerKeyID (its owner, or an admin), else a *DeniedError
// (PERMISSION_DENIED, NOT_SESSION_OWNER), recording the denial.
func (g *Guard) CheckSession(ctx context.Context, sessionID, ownerKeyID string) error {
	p, _ := FromContext(ctx)
	if err := CheckSessionAccess(p, ownerKeyID); err != nil {
		g.deny(ctx, p, mxgatewayv1.ReasonNotSessionOwner, "session.access", "session "+sessionID, "owner "+ownerKeyID)
		return err
	}
	return nil
}

// Deny records a denial made outside the gRPC API (the NATS bus, docs/nats.md):
// counted, rate-limited per source, logged and audited like the API's own.
// remote is the caller's address as the other transport knows it.
func (g *Guard) Deny(ctx context.Context, p *Principal, reason, action, target, detail, remote string) {
	if remote != "" {
		ctx = peer.NewContext(ctx, &peer.Peer{Addr: textAddr(remote)})
	}
	g.deny(ctx, p, reason, action, target, detail)
}

// textAddr is an address known only as text.
type textAddr string

func (a textAddr) Network() string { return "nats" }
func (a textAddr) String() string  { return string(a) }
