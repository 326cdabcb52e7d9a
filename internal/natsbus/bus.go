package natsbus

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/mxgatewayv1grpc"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/subject"
	"github.com/mxgateway/mxgateway/internal/auth"
	"github.com/mxgateway/mxgateway/internal/logging"
	"github.com/mxgateway/mxgateway/internal/session"
)

// Modes of a Bus.
const (
	ModeEmbedded = "embedded"
	ModeExternal = "external"
)

// Bounds of one request.
const (
	// MaxLeaseReferences caps the references of one lease request.
	MaxLeaseReferences = 1000
	// MaxConsumerLen caps a consumer id.
	MaxConsumerLen = 64
	// HeaderAuthorization carries "Bearer <API key>" on a request; it is
	// required in external mode, where the NATS system (not the gateway)
	// decides who may publish on a key's subjects.
	HeaderAuthorization = "Authorization"
	// OwnerKeyID owns the gateway's shared session in session listings.
	OwnerKeyID = "mxgateway:nats"
	// ClientName is the shared session's client name.
	ClientName = "mxgateway shared subscriptions (NATS)"
)

// Options configure a Bus.
type Options struct {
	// Mode is ModeEmbedded or ModeExternal.
	Mode string
	// Listen is the embedded server's client address (port 0: any).
	Listen string
	// StoreDir is the embedded server's JetStream directory.
	StoreDir string
	// TLS, when set, is the embedded server's certificate (the gateway's).
	TLS *tls.Config
	// LeafListen and LeafRemotes join the embedded server to others.
	LeafListen  string
	LeafRemotes []string
	// URL and CredsFile reach an external NATS system.
	URL       string
	CredsFile string
	// Galaxy is the <galaxy> subject token.
	Galaxy string
	// JSON publishes values in protobuf's JSON mapping instead of binary.
	JSON bool
	// Lease is the default lease, LeaseMax the longest granted.
	Lease, LeaseMax time.Duration
	// MaxReferences caps the advised references; MaxLeasesPerKey the
	// leases of one key.
	MaxReferences, MaxLeasesPerKey int
	// AuthNone makes every NATS client the anonymous admin (auth=none).
	AuthNone bool
	// Authenticator verifies API keys (required unless AuthNone).
	Authenticator Authenticator
	// KeyActive returns an error when the key id is revoked or gone; asked
	// on every request of a key that authenticated at connect time.
	KeyActive func(ctx context.Context, keyID string) error
	// WatchRevocation (auth.Manager.WatchRevocation) returns a context
	// cancelled with an auth.ErrKeyRevoked cause when the key is revoked;
	// the embedded server then closes the key's connections (optional).
	WatchRevocation func(ctx context.Context, keyID string) (context.Context, context.CancelFunc)
	// Denied records refusals (optional).
	Denied Denied
	// Sessions opens the gateway-owned session.
	Sessions *session.Manager
	// Logger (default slog.Default()).
	Logger *slog.Logger
}

// ref is one shared reference. Fields are guarded by Bus.mu.
type ref struct {
	name, subject, kvKey string
	leases               map[string]leaseEntry // lease id → lease
	item                 int32                 // 0 while not advised
	seq                  uint64                // the last published sequence
	last                 *mxgatewayv1.SharedValue
	published            time.Time          // when the last value was published (at_least_every)
	forward              string             // the owner gateway this one forwards its consumers' interest to ("": none)
	follower             *nats.Subscription // follows the owner's values while forwarding

	settleMu sync.Mutex // serialises settle (held before Bus.cmdMu and Bus.mu)
}

// leaseEntry is one lease: a consumer's (keyID its key) or, with peer, another
// gateway's (keyID its id).
type leaseEntry struct {
	keyID   string
	peer    bool
	expires time.Time
	filter  filter
}

// filter is what one lease asks of a reference's publication.
type filter struct {
	deadband float64       // 0: every change
	every    time.Duration // 0: no republication
}

// MinAtLeastEvery is the shortest at_least_every a lease may ask for.
const MinAtLeastEvery = 100 * time.Millisecond

// effectiveLocked is the filter of r: the smallest deadband and the
// shortest at_least_every of its leases, so every consumer gets at least
// what it asked for. Bus.mu must be held.
func (r *ref) effectiveLocked() filter {
	f, first := filter{}, true
	for _, l := range r.leases {
		if first || l.filter.deadband < f.deadband {
			f.deadband = l.filter.deadband
		}
		if l.filter.every > 0 && (f.every == 0 || l.filter.every < f.every) {
			f.every = l.filter.every
		}
		first = false
	}
	return f
}

// numeric returns v as a float64 when it is a number.
func numeric(v *mxgatewayv1.MxValue) (float64, bool) {
	switch k := v.GetKind().(type) {
	case *mxgatewayv1.MxValue_DoubleValue:
		return k.DoubleValue, true
	case *mxgatewayv1.MxValue_FloatValue:
		return float64(k.FloatValue), true
	case *mxgatewayv1.MxValue_Int32Value:
		return float64(k.Int32Value), true
	case *mxgatewayv1.MxValue_Int64Value:
		return float64(k.Int64Value), true
	}
	return 0, false
}

// Bus is the NATS side of shared subscriptions. Start returns a running
// Bus; Close stops it.
type Bus struct {
	opts Options
	log  *slog.Logger
	subj subject.Subjects
	id   string // this gateway among its peers (peers.go)
	// alarms is set while PublishAlarms runs (announced to the peers).
	alarms atomic.Bool
	hook   *authHook
	ns     *server.Server // nil in external mode
	nc     *nats.Conn
	kv     jetstream.KeyValue

	cmdMu  sync.Mutex // serialises commands on the shared session (held before mu)
	pubMu  sync.Mutex // orders publications (held before mu)
	sess   *session.Session
	server int32

	mu     sync.Mutex
	refs   map[string]*ref
	byItem map[int32]*ref
	perKey map[string]int
	dirty  map[string][]byte   // kv key → last encoded value not yet put
	peers  map[string]peerInfo // peer gateway id → what is known of it
	closed bool

	rebalance chan struct{}

	kvWake  chan struct{}
	resync  chan struct{}
	stop    chan struct{}
	stopCtx context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	subs    []*nats.Subscription
}

// Start starts the embedded server (or connects to the external system),
// creates the last-value bucket and begins serving lease and write
// requests. The shared session is opened with the first lease.
func Start(ctx context.Context, o Options) (*Bus, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	subj, err := subject.NewSubjects(o.Galaxy)
	if err != nil {
		return nil, err
	}
	if o.Sessions == nil || (!o.AuthNone && o.Authenticator == nil) {
		return nil, errors.New("natsbus: Sessions and an Authenticator are required")
	}
	if o.Lease <= 0 || o.LeaseMax < o.Lease || o.MaxReferences <= 0 || o.MaxLeasesPerKey <= 0 {
		return nil, errors.New("natsbus: Lease, LeaseMax, MaxReferences and MaxLeasesPerKey must be positive (LeaseMax >= Lease)")
	}
	log := o.Logger.With(logging.KeyComponent, "nats")
	b := &Bus{
		opts: o, log: log, subj: subj,
		refs: map[string]*ref{}, byItem: map[int32]*ref{}, perKey: map[string]int{}, dirty: map[string][]byte{},
		peers:  map[string]peerInfo{},
		kvWake: make(chan struct{}, 1), resync: make(chan struct{}, 1), rebalance: make(chan struct{}, 1), stop: make(chan struct{}),
	}
	id, err := newToken()
	if err != nil {
		return nil, err
	}
	b.id = id[:16]
	b.stopCtx, b.cancel = context.WithCancel(context.Background())
	ok := false
	defer func() {
		if !ok {
			b.shutdownNATS()
		}
	}()

	var copts []nats.Option
	copts = append(copts, nats.Name("mxgateway"), nats.MaxReconnects(-1),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			log.Warn("nats connection error", slog.Any(logging.KeyErr, err))
		}))
	switch o.Mode {
	case ModeEmbedded:
		token, err := newToken()
		if err != nil {
			return nil, err
		}
		b.hook = &authHook{internal: token, none: o.AuthNone, authn: o.Authenticator, subj: subj,
			denied: o.Denied, log: log, who: map[string]*auth.Principal{},
			watch: o.WatchRevocation, watches: map[string]*keyWatch{}}
		b.hook.base, b.hook.cancelBase = context.WithCancel(context.Background())
		if err := os.MkdirAll(o.StoreDir, 0o700); err != nil {
			return nil, fmt.Errorf("natsbus: store directory: %w", err)
		}
		b.ns, err = startEmbedded(embeddedOptions{Listen: o.Listen, StoreDir: o.StoreDir, TLS: o.TLS,
			LeafListen: o.LeafListen, LeafRemotes: o.LeafRemotes, Auth: b.hook, Log: log})
		if err != nil {
			return nil, err
		}
		b.hook.mu.Lock()
		b.hook.ns = b.ns
		b.hook.mu.Unlock()
		copts = append(copts, nats.InProcessServer(b.ns), nats.Token(token))
		b.nc, err = nats.Connect("", copts...)
	case ModeExternal:
		if o.CredsFile != "" {
			copts = append(copts, nats.UserCredentials(o.CredsFile))
		}
		b.nc, err = nats.Connect(o.URL, copts...)
	default:
		return nil, fmt.Errorf("natsbus: unknown mode %q", o.Mode)
	}
	if err != nil {
		return nil, fmt.Errorf("natsbus: connect: %w", err)
	}
	js, err := jetstream.New(b.nc)
	if err != nil {
		return nil, fmt.Errorf("natsbus: jetstream: %w", err)
	}
	kctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	b.kv, err = js.CreateOrUpdateKeyValue(kctx, jetstream.KeyValueConfig{
		Bucket: subj.Bucket(), History: 1, Storage: jetstream.FileStorage,
		Description: "mxgateway: the last value of every shared reference (docs/nats.md)",
	})
	if err != nil {
		return nil, fmt.Errorf("natsbus: last-value bucket %s: %w", subj.Bucket(), err)
	}
	for _, s := range []struct {
		subject string
		h       nats.MsgHandler
	}{{subj.SubscribeAll(), b.handleLease}, {subj.WriteAll(), b.handleWrite}} {
		// A queue group: when gateways' servers are joined (leaf nodes),
		// one gateway answers each request, the local one first.
		sub, err := b.nc.QueueSubscribe(s.subject, "mxgw."+o.Galaxy, s.h)
		if err != nil {
			return nil, fmt.Errorf("natsbus: subscribe %s: %w", s.subject, err)
		}
		// Requests are bounded by NATS's own pending limits; a flood is
		// cut there as a slow consumer of ours, never queued without end.
		b.subs = append(b.subs, sub)
	}
	if err := b.startPeers(); err != nil {
		return nil, err
	}
	if err := b.nc.Flush(); err != nil {
		return nil, fmt.Errorf("natsbus: %w", err)
	}
	b.wg.Go(b.beating)
	b.wg.Go(b.peering)
	if b.hook != nil {
		b.wg.Go(b.pruner)
	}
	b.wg.Go(b.sweeper)
	b.wg.Go(b.kvWriter)
	b.wg.Go(b.resyncer)
	b.wg.Go(b.republisher)
	ok = true
	return b, nil
}

// Addr is the embedded server's client address ("" in external mode).
func (b *Bus) Addr() string {
	if b.ns == nil || b.ns.Addr() == nil {
		return ""
	}
	return b.ns.Addr().String()
}

// LeafAddr is the embedded server's leaf-node address, when it listens.
func (b *Bus) LeafAddr() string {
	if b.ns == nil || b.opts.LeafListen == "" {
		return ""
	}
	v, err := b.ns.Varz(nil)
	if err != nil || v.LeafNode.Port <= 0 {
		return ""
	}
	return net.JoinHostPort(v.LeafNode.Host, strconv.Itoa(v.LeafNode.Port))
}

// Subjects returns the bus's subject names.
func (b *Bus) Subjects() subject.Subjects { return b.subj }

// Server is the embedded NATS server (nil in external mode), for
// in-process monitoring (Varz, Connz, NumSlowConsumers).
func (b *Bus) Server() *server.Server { return b.ns }

// Advised is the number of references the shared session advises.
func (b *Bus) Advised() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.byItem)
}

// Close releases every advise, closes the shared session and stops NATS.
func (b *Bus) Close(ctx context.Context) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.closed = true
	b.mu.Unlock()
	// The peers settle without this gateway at once (its leases lapse).
	_ = b.nc.Publish(b.peerBye(), []byte(b.id))
	for _, s := range b.subs {
		_ = s.Unsubscribe()
	}
	close(b.stop)
	b.cancel()
	b.cmdMu.Lock()
	if b.sess != nil {
		b.sess.Close(ctx)
		b.sess = nil
	}
	b.cmdMu.Unlock()
	b.wg.Wait()
	b.flushKV(ctx)
	b.shutdownNATS()
}

func (b *Bus) shutdownNATS() {
	if b.hook != nil {
		b.hook.stopWatches()
	}
	if b.nc != nil {
		_ = b.nc.FlushTimeout(time.Second)
		b.nc.Close()
	}
	if b.ns != nil {
		b.ns.Shutdown()
		b.ns.WaitForShutdown()
	}
}

// ---- requests ----

// requester is the principal of a request on a subject of keyID: the key
// in the request's Authorization header, or (embedded mode, where the
// server's permissions let only keyID publish there) the key keyID
// connected with, if it is still active.
func (b *Bus) requester(ctx context.Context, keyID string, h nats.Header) (*auth.Principal, string, string) {
	if raw := h.Get(HeaderAuthorization); raw != "" {
		scheme, tok, _ := strings.Cut(raw, " ")
		if b.opts.AuthNone {
			p, _ := b.hook.principal(auth.AnonymousKeyID)
			if p == nil {
				p = auth.NewPrincipal(auth.AnonymousKeyID, "anonymous (auth=none)", []auth.Scope{auth.ScopeAdmin}, auth.Constraints{})
			}
			return p, "", ""
		}
		if !strings.EqualFold(scheme, "bearer") {
			return nil, mxgatewayv1.ReasonUnauthenticated, "Authorization must be \"Bearer <API key>\""
		}
		p, err := b.opts.Authenticator.Authenticate(ctx, strings.TrimSpace(tok))
		if err != nil {
			return nil, mxgatewayv1.ReasonUnauthenticated, "API key not accepted: " + authDetail(tok, err)
		}
		if p.KeyID != keyID {
			return nil, mxgatewayv1.ReasonPermissionDenied, "the subject names key " + keyID + ", the Authorization header another"
		}
		return p, "", ""
	}
	if b.hook == nil {
		return nil, mxgatewayv1.ReasonUnauthenticated, "requests need an Authorization header (\"Bearer <API key>\") on an external NATS system"
	}
	p, ok := b.hook.principal(keyID)
	if !ok {
		return nil, mxgatewayv1.ReasonUnauthenticated, "key " + keyID + " has not connected to this gateway's NATS server"
	}
	if !p.Anonymous && b.opts.KeyActive != nil {
		if err := b.opts.KeyActive(ctx, keyID); err != nil {
			return nil, mxgatewayv1.ReasonUnauthenticated, "API key " + keyID + " is no longer valid: " + err.Error()
		}
	}
	return p, "", ""
}

func (b *Bus) deny(ctx context.Context, p *auth.Principal, reason, action, target, detail string) {
	if b.opts.Denied != nil {
		b.opts.Denied(ctx, p, reason, action, target, detail, "nats")
	}
}

// decode reads a request in protobuf, or in protobuf's JSON mapping when it
// starts with "{" (handy from the nats CLI); the reply uses the same.
func decode(data []byte, m proto.Message) (isJSON bool, err error) {
	if t := strings.TrimSpace(string(data[:min(len(data), 16)])); strings.HasPrefix(t, "{") {
		return true, protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(data, m)
	}
	return false, proto.Unmarshal(data, m)
}

func (b *Bus) respond(msg *nats.Msg, isJSON bool, m proto.Message) {
	if msg.Reply == "" {
		return
	}
	var data []byte
	var err error
	if isJSON {
		data, err = protojson.Marshal(m)
	} else {
		data, err = proto.Marshal(m)
	}
	if err == nil {
		err = msg.Respond(data)
	}
	if err != nil {
		b.log.Warn("nats: reply not sent", slog.Any(logging.KeyErr, err))
	}
}

func validConsumer(c string) bool {
	return c != "" && len(c) <= MaxConsumerLen && subject.EscapeToken(c) == c
}

// requestTimeout bounds the work of one lease or write request (advises,
// the write and its completion).
const requestTimeout = 30 * time.Second

func (b *Bus) handleLease(msg *nats.Msg) {
	ctx, cancel := context.WithTimeout(b.stopCtx, requestTimeout)
	defer cancel()
	keyID := msg.Subject[strings.LastIndexByte(msg.Subject, '.')+1:]
	req := &mxgatewayv1.SharedLeaseRequest{}
	isJSON, err := decode(msg.Data, req)
	reply := &mxgatewayv1.SharedLeaseReply{}
	fail := func(reason, message string) {
		reply.Reason, reply.Message = reason, message
		b.respond(msg, isJSON, reply)
	}
	if err != nil {
		fail(mxgatewayv1.ReasonInvalidRequest, "not a SharedLeaseRequest: "+err.Error())
		return
	}
	p, reason, why := b.requester(ctx, keyID, msg.Header)
	if p == nil {
		b.deny(ctx, nil, reason, "nats.subscribe", "key "+keyID, why)
		fail(reason, why)
		return
	}
	switch {
	case !validConsumer(req.GetConsumer()):
		fail(mxgatewayv1.ReasonInvalidRequest, fmt.Sprintf("consumer must be 1 to %d letters, digits, - or _", MaxConsumerLen))
		return
	case len(req.GetReferences()) == 0 || len(req.GetReferences()) > MaxLeaseReferences:
		fail(mxgatewayv1.ReasonInvalidRequest, fmt.Sprintf("a lease names 1 to %d references", MaxLeaseReferences))
		return
	case !p.Has(auth.ScopeInvokeRead) || !p.Has(auth.ScopeEventsRead):
		b.deny(ctx, p, mxgatewayv1.ReasonPermissionDenied, "nats.subscribe", "", "missing scope invoke:read or events:read")
		fail(mxgatewayv1.ReasonPermissionDenied, "API key not allowed to subscribe: it needs the scopes invoke:read and events:read")
		return
	}
	ttl := b.opts.Lease
	if d := req.GetTtl().AsDuration(); req.GetTtl() != nil && d > 0 {
		ttl = min(d, b.opts.LeaseMax)
	}
	reply.Ttl = durationpb.New(ttl)
	f := filter{deadband: req.GetDeadband(), every: req.GetAtLeastEvery().AsDuration()}
	if !(f.deadband >= 0) || f.every < 0 || (f.every > 0 && f.every < MinAtLeastEvery) {
		fail(mxgatewayv1.ReasonInvalidRequest, fmt.Sprintf("deadband must be >= 0 and at_least_every 0 or at least %v", MinAtLeastEvery))
		return
	}
	leaseID := keyID + "\x00" + req.GetConsumer()
	readSubs := readSubjects(b.subj, p.Constraints.AllowRead)
	denied := 0
	for _, name := range req.GetReferences() {
		e := &mxgatewayv1.SharedLeaseEntry{Reference: name}
		reply.Entries = append(reply.Entries, e)
		sbj, err := b.subj.Tag(name)
		if err != nil {
			e.Reason, e.Message = mxgatewayv1.ReasonInvalidRequest, err.Error()
			continue
		}
		e.Subject = sbj
		if req.GetRelease() {
			b.release(ctx, name, leaseID)
			continue
		}
		if !p.AllowRead(name) || !subject.Covered(readSubs, sbj) {
			e.Reason, e.Message = mxgatewayv1.ReasonReferenceForbidden, "the API key's allow_read does not cover "+name
			denied++
			continue
		}
		last, reason, why := b.acquire(ctx, name, sbj, leaseID, leaseEntry{keyID: keyID, expires: time.Now().Add(ttl), filter: f})
		e.Reason, e.Message, e.Last = reason, why, last
	}
	if denied > 0 {
		b.deny(ctx, p, mxgatewayv1.ReasonReferenceForbidden, "nats.subscribe", "consumer "+req.GetConsumer(),
			fmt.Sprintf("%d references denied by reference constraints", denied))
	}
	b.respond(msg, isJSON, reply)
}

// acquire adds or renews a lease and makes sure the reference is advised.
// It returns the last value known, or a reason why the lease is not held.
func (b *Bus) acquire(ctx context.Context, name, sbj, leaseID string, l leaseEntry) (*mxgatewayv1.SharedValue, string, string) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, mxgatewayv1.ReasonShuttingDown, "the gateway is stopping"
	}
	r := b.refs[name]
	fresh := r == nil
	if fresh {
		if len(b.refs) >= b.opts.MaxReferences {
			b.mu.Unlock()
			return nil, mxgatewayv1.ReasonLeaseLimit, fmt.Sprintf("nats_max_references (%d) references are shared", b.opts.MaxReferences)
		}
		kvKey := strings.TrimPrefix(sbj, b.subj.Prefix+"tag.")
		r = &ref{name: name, subject: sbj, kvKey: kvKey, leases: map[string]leaseEntry{}}
		b.refs[name] = r
	}
	if _, had := r.leases[leaseID]; !had && !l.peer {
		if b.perKey[l.keyID] >= b.opts.MaxLeasesPerKey {
			if fresh {
				delete(b.refs, name)
			}
			b.mu.Unlock()
			return nil, mxgatewayv1.ReasonLeaseLimit, fmt.Sprintf("the key holds nats_max_leases_per_key (%d) leases", b.opts.MaxLeasesPerKey)
		}
		b.perKey[l.keyID]++
	}
	r.leases[leaseID] = l
	b.mu.Unlock()

	if fresh {
		b.loadLast(ctx, r)
	}
	if reason, why := b.settle(ctx, r); reason != "" {
		b.release(ctx, name, leaseID)
		return nil, reason, why
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return r.last, "", ""
}

// loadLast seeds a new reference's last value and sequence from the bucket,
// so sequences continue across gateway restarts and a late joiner gets the
// value at once.
func (b *Bus) loadLast(ctx context.Context, r *ref) {
	e, err := b.kv.Get(ctx, r.kvKey)
	if err != nil {
		if !errors.Is(err, jetstream.ErrKeyNotFound) {
			b.log.Warn("nats: last value not read", slog.String("reference", r.name), slog.Any(logging.KeyErr, err))
		}
		return
	}
	v := &mxgatewayv1.SharedValue{}
	if _, err := decode(e.Value(), v); err != nil {
		return
	}
	b.mu.Lock()
	if r.last == nil {
		r.last = v
		r.seq = max(r.seq, v.GetSequence())
	}
	b.mu.Unlock()
}

// release drops one lease; the last one unadvises the reference.
func (b *Bus) release(ctx context.Context, name, leaseID string) {
	b.mu.Lock()
	r := b.refs[name]
	if r == nil {
		b.mu.Unlock()
		return
	}
	l, had := r.leases[leaseID]
	if had {
		delete(r.leases, leaseID)
		b.dropLeaseLocked(l)
	}
	b.mu.Unlock()
	if had {
		b.settle(ctx, r)
	}
}

func (b *Bus) dropLeaseLocked(l leaseEntry) {
	if l.peer {
		return
	}
	keyID := l.keyID
	if b.perKey[keyID]--; b.perKey[keyID] <= 0 {
		delete(b.perKey, keyID)
	}
}

// ---- the shared session ----

func ok(r *mxgatewayv1.Reply) bool {
	return r.GetStatus() == mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK
}

// sessionLocked returns the shared session, opening it (and registering,
// and attaching the event pump) when there is none. b.cmdMu must be held.
func (b *Bus) sessionLocked(ctx context.Context) (*session.Session, error) {
	if b.sess != nil && b.sess.State() == mxgatewayv1.SessionState_SESSION_STATE_READY {
		return b.sess, nil
	}
	if b.sess != nil {
		b.sess.Close(ctx)
		b.sess = nil
	}
	s, err := b.opts.Sessions.Open(ctx, session.OpenRequest{ClientName: ClientName, OwnerKeyID: OwnerKeyID, QuotaExempt: true})
	if err != nil {
		return nil, err
	}
	r, err := s.Invoke(ctx, &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Register{Register: &mxgatewayv1.RegisterCommand{ClientName: ClientName}}}, 0)
	if err == nil && !ok(r) {
		err = fmt.Errorf("Register: HRESULT 0x%08X %s", uint32(r.GetHresult()), r.GetMessage())
	}
	if err != nil {
		s.Close(ctx)
		return nil, err
	}
	sub, err := s.Subscribe(session.SubscribeRequest{LiveOnly: true, Conflate: true})
	if err != nil {
		s.Close(ctx)
		return nil, err
	}
	b.sess, b.server = s, r.GetRegister().GetServerHandle()
	b.log.Info("shared session opened", slog.String(logging.KeySession, s.ID()))
	b.wg.Go(func() { b.pump(s, sub) })
	return s, nil
}

// advise adds and advises r on the shared session unless it already is.
func (b *Bus) advise(ctx context.Context, r *ref) (reason, why string) {
	b.cmdMu.Lock()
	defer b.cmdMu.Unlock()
	b.mu.Lock()
	done := r.item != 0 && b.sess != nil
	gone := len(r.leases) == 0
	b.mu.Unlock()
	if done || gone {
		return "", ""
	}
	s, err := b.sessionLocked(ctx)
	if err != nil {
		return mxgatewayv1.ReasonUnavailable, "the shared session could not be opened: " + err.Error()
	}
	rep, err := s.Invoke(ctx, &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_AddItem{AddItem: &mxgatewayv1.AddItemCommand{ServerHandle: b.server, ItemDefinition: r.name}}}, 0)
	if err != nil {
		return mxgatewayv1.ReasonUnavailable, "AddItem: " + err.Error()
	}
	if !ok(rep) {
		return mxgatewayv1.ReasonAdviseFailed, fmt.Sprintf("AddItem %s: HRESULT 0x%08X %s", r.name, uint32(rep.GetHresult()), rep.GetMessage())
	}
	item := rep.GetItemHandle().GetItemHandle()
	// Registered before Advise: the first value may arrive before its reply.
	b.mu.Lock()
	r.item = item
	b.byItem[item] = r
	b.mu.Unlock()
	rep, err = s.Invoke(ctx, &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Advise{Advise: &mxgatewayv1.AdviseCommand{ServerHandle: b.server, ItemHandle: item}}}, 0)
	if err == nil && !ok(rep) {
		reason, why = mxgatewayv1.ReasonAdviseFailed, fmt.Sprintf("Advise %s: HRESULT 0x%08X %s", r.name, uint32(rep.GetHresult()), rep.GetMessage())
	} else if err != nil {
		reason, why = mxgatewayv1.ReasonUnavailable, "Advise: "+err.Error()
	}
	if reason != "" {
		b.removeItemLocked(ctx, s, r)
	}
	return reason, why
}

// unadvise stops and removes r when no lease holds it any more.
func (b *Bus) unadvise(ctx context.Context, r *ref) {
	b.cmdMu.Lock()
	defer b.cmdMu.Unlock()
	b.mu.Lock()
	if len(r.leases) > 0 || b.refs[r.name] != r {
		b.mu.Unlock()
		return
	}
	delete(b.refs, r.name)
	s := b.sess
	b.mu.Unlock()
	if s == nil {
		return
	}
	if _, err := s.Invoke(ctx, &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_UnAdvise{UnAdvise: &mxgatewayv1.UnAdviseCommand{ServerHandle: b.server, ItemHandle: r.item}}}, 0); err != nil {
		b.log.Debug("nats: UnAdvise", slog.String("reference", r.name), slog.Any(logging.KeyErr, err))
	}
	b.removeItemLocked(ctx, s, r)
}

// dropAdvise stops and removes r's advise here (another gateway advises it
// now), keeping r and its leases.
func (b *Bus) dropAdvise(ctx context.Context, r *ref) {
	b.cmdMu.Lock()
	defer b.cmdMu.Unlock()
	b.mu.Lock()
	item, s := r.item, b.sess
	b.mu.Unlock()
	if item == 0 || s == nil {
		return
	}
	if _, err := s.Invoke(ctx, &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_UnAdvise{UnAdvise: &mxgatewayv1.UnAdviseCommand{ServerHandle: b.server, ItemHandle: item}}}, 0); err != nil {
		b.log.Debug("nats: UnAdvise", slog.String("reference", r.name), slog.Any(logging.KeyErr, err))
	}
	b.removeItemLocked(ctx, s, r)
}

// removeItemLocked removes r's item. b.cmdMu must be held.
func (b *Bus) removeItemLocked(ctx context.Context, s *session.Session, r *ref) {
	b.mu.Lock()
	item := r.item
	if item != 0 && b.byItem[item] == r {
		delete(b.byItem, item)
	}
	r.item = 0
	b.mu.Unlock()
	if item == 0 {
		return
	}
	if _, err := s.Invoke(ctx, &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_RemoveItem{RemoveItem: &mxgatewayv1.RemoveItemCommand{ServerHandle: b.server, ItemHandle: item}}}, 0); err != nil {
		b.log.Debug("nats: RemoveItem", slog.String("reference", r.name), slog.Any(logging.KeyErr, err))
	}
}

// pump publishes the shared session's data changes until the session ends;
// then every reference still leased is advised again on a new session.
func (b *Bus) pump(s *session.Session, sub *session.Subscription) {
	defer sub.Close()
	for {
		ev, err := sub.Next(b.stopCtx)
		if err != nil {
			b.mu.Lock()
			closed := b.closed
			b.mu.Unlock()
			if closed {
				return
			}
			b.log.Warn("shared session ended; advising its references again", slog.String(logging.KeySession, s.ID()), slog.Any(logging.KeyErr, err))
			b.cmdMu.Lock()
			if b.sess == s {
				b.sess = nil
			}
			b.cmdMu.Unlock()
			b.mu.Lock()
			for item, r := range b.byItem {
				if r.item == item {
					r.item = 0
				}
			}
			clear(b.byItem)
			b.mu.Unlock()
			signal(b.resync)
			return
		}
		if ev.IsDataChange() {
			if dc := ev.Msg().GetDataChange(); dc != nil {
				b.publish(dc)
			}
		}
	}
}

// publish sends one value to NATS and queues it for the bucket. It never
// waits for a consumer: Publish only appends to the connection's buffer.
func (b *Bus) publish(dc *mxgatewayv1.OnDataChange) {
	b.mu.Lock()
	r := b.byItem[dc.GetItemHandle()]
	if r == nil || dc.GetServerHandle() != b.server {
		b.mu.Unlock()
		return
	}
	if f := r.effectiveLocked(); f.deadband > 0 && r.last != nil && r.last.GetQuality().GetRaw() == dc.GetQuality().GetRaw() {
		prev, ok1 := numeric(r.last.GetValue())
		cur, ok2 := numeric(dc.GetValue())
		if ok1 && ok2 && math.Abs(cur-prev) < f.deadband {
			b.mu.Unlock()
			return
		}
	}
	b.mu.Unlock()
	b.send(r, &mxgatewayv1.SharedValue{
		Reference: r.name, Value: dc.GetValue(), Quality: dc.GetQuality(), SourceTime: dc.GetTimestamp(),
		Statuses: dc.GetStatuses(),
	}, nil)
}

// send stamps v with r's next sequence, publishes it and queues it for the
// bucket. pubMu keeps each subject's sequences in publication order. A
// republication of again (the value r.last was) is dropped when a newer
// value was published meanwhile.
func (b *Bus) send(r *ref, v, again *mxgatewayv1.SharedValue) {
	b.pubMu.Lock()
	defer b.pubMu.Unlock()
	b.mu.Lock()
	if again != nil && r.last != again {
		b.mu.Unlock()
		return
	}
	r.seq++
	v.Sequence, v.GatewayTime = r.seq, timestamppb.Now()
	r.last, r.published = v, time.Now()
	sbj, kvKey := r.subject, r.kvKey
	b.mu.Unlock()
	data, err := b.encode(v)
	if err != nil {
		b.log.Error("nats: value not encoded", slog.Any(logging.KeyErr, err))
		return
	}
	if err := b.nc.Publish(sbj, data); err != nil {
		b.log.Debug("nats: publish", slog.String("subject", sbj), slog.Any(logging.KeyErr, err))
	}
	b.mu.Lock()
	b.dirty[kvKey] = data
	b.mu.Unlock()
	signal(b.kvWake)
}

func (b *Bus) encode(m proto.Message) ([]byte, error) {
	if b.opts.JSON {
		return protojson.Marshal(m)
	}
	return proto.Marshal(m)
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// kvWriter puts the latest value of each changed reference into the
// bucket, off the event path: a value that changes faster than the bucket
// accepts puts is conflated to its latest.
func (b *Bus) kvWriter() {
	for {
		select {
		case <-b.stop:
			return
		case <-b.kvWake:
			b.flushKV(b.stopCtx)
		}
	}
}

func (b *Bus) flushKV(ctx context.Context) {
	b.mu.Lock()
	batch := b.dirty
	b.dirty = map[string][]byte{}
	b.mu.Unlock()
	for k, data := range batch {
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_, err := b.kv.Put(pctx, k, data)
		cancel()
		if err != nil {
			b.log.Warn("nats: last value not stored", slog.String("key", k), slog.Any(logging.KeyErr, err))
		}
	}
}

// sweeper expires lapsed leases.
func (b *Bus) sweeper() {
	t := time.NewTicker(max(10*time.Millisecond, min(b.opts.Lease/4, time.Second)))
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case now := <-t.C:
			b.expire(now)
		}
	}
}

func (b *Bus) expire(now time.Time) {
	var changed []*ref
	b.mu.Lock()
	for _, r := range b.refs {
		lapsed := false
		for id, l := range r.leases {
			if !now.Before(l.expires) {
				delete(r.leases, id)
				b.dropLeaseLocked(l)
				lapsed = true
			}
		}
		if lapsed {
			changed = append(changed, r)
		}
	}
	b.mu.Unlock()
	for _, r := range changed {
		b.settle(b.stopCtx, r)
	}
}

// resyncer advises every leased reference again after the shared session
// ended, retrying while the gateway cannot open a session.
func (b *Bus) resyncer() {
	backoff := 100 * time.Millisecond
	for {
		select {
		case <-b.stop:
			return
		case <-b.resync:
		}
		b.mu.Lock()
		var todo []*ref
		for _, r := range b.refs {
			if r.item == 0 && r.forward == "" && len(r.leases) > 0 {
				todo = append(todo, r)
			}
		}
		b.mu.Unlock()
		failed := false
		for _, r := range todo {
			if reason, why := b.settle(b.stopCtx, r); reason == mxgatewayv1.ReasonUnavailable {
				b.log.Warn("nats: reference not advised again yet", slog.String("reference", r.name), slog.String("why", why))
				failed = true
				break
			}
		}
		if !failed {
			backoff = 100 * time.Millisecond
			continue
		}
		select {
		case <-b.stop:
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
		signal(b.resync)
	}
}

// ---- writes ----

func (b *Bus) handleWrite(msg *nats.Msg) {
	ctx, cancel := context.WithTimeout(b.stopCtx, requestTimeout)
	defer cancel()
	req := &mxgatewayv1.SharedWriteRequest{}
	isJSON, err := decode(msg.Data, req)
	reply := &mxgatewayv1.SharedWriteReply{}
	fail := func(reason, message string) {
		reply.Reason, reply.Message = reason, message
		b.respond(msg, isJSON, reply)
	}
	keyID, name, perr := b.subj.ParseWrite(msg.Subject)
	if perr != nil {
		fail(mxgatewayv1.ReasonInvalidRequest, perr.Error())
		return
	}
	if err != nil || req.GetValue() == nil {
		fail(mxgatewayv1.ReasonInvalidRequest, "not a SharedWriteRequest with a value")
		return
	}
	p, reason, why := b.requester(ctx, keyID, msg.Header)
	action := mxgatewayv1grpc.Gateway_Invoke_FullMethodName + "#Write (nats)"
	switch {
	case p == nil:
		b.deny(ctx, nil, reason, action, "key "+keyID, why)
		fail(reason, why)
		return
	case !p.Has(auth.ScopeInvokeWrite):
		b.deny(ctx, p, mxgatewayv1.ReasonPermissionDenied, action, "reference "+name, "missing scope invoke:write")
		fail(mxgatewayv1.ReasonPermissionDenied, "API key not allowed to write: missing scope invoke:write")
		return
	case !p.AllowWrite(name):
		b.deny(ctx, p, mxgatewayv1.ReasonReferenceForbidden, action, "reference "+name, "denied by the key's allow_write")
		fail(mxgatewayv1.ReasonReferenceForbidden, "the API key's allow_write does not cover "+name)
		return
	}
	reply.Reply, reply.Reason, reply.Message = b.write(ctx, keyID, name, req, true)
	b.respond(msg, isJSON, reply)
}

// write runs an accepted write of keyID: on this gateway's item when it
// advises name, else (mayForward) on the owner gateway's, to which this
// gateway forwards its interest.
func (b *Bus) write(ctx context.Context, keyID, name string, req *mxgatewayv1.SharedWriteRequest, mayForward bool) (*mxgatewayv1.Reply, string, string) {
	sbj, _ := b.subj.Tag(name)
	// The write holds the reference (an item must be advised to be
	// written) for one default lease, like a consumer would.
	// The write's own lease asks for every change while it holds.
	if _, reason, why := b.acquire(ctx, name, sbj, "write\x00"+keyID, leaseEntry{keyID: keyID, expires: time.Now().Add(b.opts.Lease)}); reason != "" {
		return nil, reason, why
	}
	b.cmdMu.Lock()
	s := b.sess
	b.mu.Lock()
	r := b.refs[name]
	item, owner := r.itemOrZero(), ""
	if r != nil {
		owner = r.forward
	}
	b.mu.Unlock()
	b.cmdMu.Unlock()
	if item == 0 && owner != "" && mayForward {
		rep, err := b.forwardWrite(ctx, owner, keyID, name, req)
		if err != nil {
			return nil, mxgatewayv1.ReasonUnavailable, "the gateway that advises " + name + " did not answer the write: " + err.Error()
		}
		return rep.GetReply(), rep.GetReason(), rep.GetMessage()
	}
	if s == nil || item == 0 {
		return nil, mxgatewayv1.ReasonUnavailable, "the shared session is being reopened; retry"
	}
	rep, err := s.Invoke(ctx, &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Write{Write: &mxgatewayv1.WriteCommand{ServerHandle: b.server, ItemHandle: item, Value: req.GetValue()}}}, 0)
	if err != nil {
		return nil, mxgatewayv1.ReasonUnavailable, "Write: " + err.Error()
	}
	return rep, "", ""
}

func (r *ref) itemOrZero() int32 {
	if r == nil {
		return 0
	}
	return r.item
}

// PublishDeploy publishes a deploy of the Galaxy on mxgw.v1.<galaxy>.deploy.
func (b *Bus) PublishDeploy(deploySeq uint64) error {
	data, err := b.encode(&mxgatewayv1.SharedDeployEvent{DeploySequence: deploySeq, GatewayTime: timestamppb.Now()})
	if err != nil {
		return err
	}
	return b.nc.Publish(b.subj.Deploy(), data)
}

// republisher publishes the last value of each reference again (with a new
// sequence) when nothing was published for its at_least_every.
func (b *Bus) republisher() {
	t := time.NewTicker(MinAtLeastEvery / 2)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case now := <-t.C:
			type due struct {
				r        *ref
				v, again *mxgatewayv1.SharedValue
			}
			var todo []due
			b.mu.Lock()
			for _, r := range b.refs {
				f := r.effectiveLocked()
				if f.every > 0 && r.last != nil && r.item != 0 && now.Sub(r.published) >= f.every {
					v := proto.Clone(r.last).(*mxgatewayv1.SharedValue)
					todo = append(todo, due{r, v, r.last})
				}
			}
			b.mu.Unlock()
			for _, d := range todo {
				b.send(d.r, d.v, d.again)
			}
		}
	}
}
