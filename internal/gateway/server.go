package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	mxgatewayv1grpc "github.com/mxgateway/mxgateway/api/mxgateway/v1/mxgatewayv1grpc"
	"github.com/mxgateway/mxgateway/internal/logging"
	"github.com/mxgateway/mxgateway/internal/metrics"
	"github.com/mxgateway/mxgateway/internal/session"
)

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("gateway: server closed")

// Defaults of Options.
const (
	DefaultMaxMessageBytes      = 16 << 20
	DefaultMaxConcurrentStreams = 128
	DefaultKeepaliveTime        = 30 * time.Second
	DefaultKeepaliveTimeout     = 10 * time.Second
	DefaultKeepaliveMinTime     = 10 * time.Second

	// Bounds before authentication (docs/security.md).
	DefaultMaxHeaderListBytes = 16 << 10
	DefaultMaxHealthWatches   = 64
	DefaultMaxConnectionIdle  = 5 * time.Minute
)

// handshakeTimeout bounds a new connection's TLS and HTTP/2 handshake, so
// that sockets that never speak do not hold connection slots.
const handshakeTimeout = 10 * time.Second

// Options configure a Server. Zero fields take the documented defaults.
type Options struct {
	// Sessions is the session manager. Required. The Server's Shutdown and
	// Close also shut it down.
	Sessions *session.Manager
	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger
	// MaxMessageBytes bounds received and sent messages. Default 16 MiB.
	MaxMessageBytes int
	// MaxConcurrentStreams bounds streams per client connection. Default 128.
	MaxConcurrentStreams uint32
	// KeepaliveTime is how long a connection may be idle before the server
	// pings it, so dead clients free their workers. Default 30s.
	KeepaliveTime time.Duration
	// KeepaliveTimeout is how long the server waits for a ping's answer.
	// Default 10s.
	KeepaliveTimeout time.Duration
	// KeepaliveMinTime is the shortest client ping interval tolerated
	// (pings without streams are allowed). Default 10s.
	KeepaliveMinTime time.Duration
	// MaxBulkEntries bounds the list of a bulk command. Default 10000.
	MaxBulkEntries int
	// UnaryInterceptors run after the built-in recover interceptor, in
	// order (request log, metrics, auth, scope).
	UnaryInterceptors []grpc.UnaryServerInterceptor
	// StreamInterceptors run after the built-in recover interceptor.
	StreamInterceptors []grpc.StreamServerInterceptor
	// ServerOptions are appended to the built-in ones (for example TLS
	// credentials).
	ServerOptions []grpc.ServerOption
	// Identity returns the id of the API key behind ctx; sessions record it
	// as their owner. Nil records "".
	Identity func(ctx context.Context) string
	// Access decides whether the caller behind ctx may use (invoke on,
	// stream, close) the session sessionID owned by ownerKeyID; it returns
	// an error that is a gRPC status (PERMISSION_DENIED) to refuse. Nil
	// allows everything.
	Access func(ctx context.Context, sessionID, ownerKeyID string) error
	// Visible decides whether ListSessions shows the caller a session owned
	// by ownerKeyID (no denial is recorded). Nil falls back to Access.
	Visible func(ctx context.Context, ownerKeyID string) bool
	// Constraints applies the caller's reference constraints before a
	// command reaches the worker, and audits what the worker's item guard
	// refuses (auth.Guard). Nil checks nothing.
	Constraints Constraints
	// Metrics counts events sent and stream ends; nil counts nothing.
	Metrics *metrics.Metrics

	// StreamWriteTimeout ends an event stream whose send stays blocked this
	// long. Default DefaultStreamWriteTimeout.
	StreamWriteTimeout time.Duration
	// Credentials throttles failed MXAccess credential checks (auth.Guard);
	// nil throttles nothing.
	Credentials Credentials
	// QuotaExempt reports whether the caller behind ctx may open sessions
	// past the per-key quota (admin keys). Nil exempts nobody.
	QuotaExempt func(ctx context.Context) bool
	// MaxHeaderListBytes bounds a request's header block, which is parsed
	// before the key is checked. Default DefaultMaxHeaderListBytes.
	MaxHeaderListBytes int
	// MaxHealthWatches bounds the open grpc.health.v1 Watch streams, which
	// need no key (RESOURCE_EXHAUSTED HEALTH_WATCH_LIMIT). Default
	// DefaultMaxHealthWatches.
	MaxHealthWatches int
	// MaxConnectionIdle closes a connection without calls for this long.
	// Default DefaultMaxConnectionIdle.
	MaxConnectionIdle time.Duration
}

// Credentials throttles the MXAccess credential checks a caller makes
// through Invoke (AuthenticateUser, secured and verified writes).
type Credentials interface {
	// CheckCredentials refuses a credential command while the caller or
	// the session is in its back-off (a status error).
	CheckCredentials(ctx context.Context, sessionID string, cmd *mxgatewayv1.Command) error
	// CredentialsChecked records the worker's reply to such a command.
	CredentialsChecked(ctx context.Context, sessionID string, cmd *mxgatewayv1.Command, reply *mxgatewayv1.Reply)
}

// Server is the gRPC server: the Gateway service, grpc.health.v1 and server
// reflection, with keepalive enforcement, size limits and a recover
// interceptor in front of the configured ones.
type Server struct {
	opts    Options
	log     *slog.Logger
	grpc    *grpc.Server
	health  *health.Server
	service *Service
	codec   *decodeCodec

	stopCtx  context.Context
	stopping context.CancelFunc

	shutdownOnce sync.Once
	shutdownErr  error
	done         chan struct{} // closed when Shutdown finished
}

// New validates opts and builds the server. It starts nothing.
func New(opts Options) (*Server, error) {
	if opts.Sessions == nil {
		return nil, errors.New("gateway: Options.Sessions is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.MaxMessageBytes < 0 || opts.MaxBulkEntries < 0 || opts.KeepaliveTime < 0 || opts.KeepaliveTimeout < 0 || opts.KeepaliveMinTime < 0 {
		return nil, errors.New("gateway: negative limit in Options")
	}
	if opts.MaxMessageBytes == 0 {
		opts.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if opts.MaxConcurrentStreams == 0 {
		opts.MaxConcurrentStreams = DefaultMaxConcurrentStreams
	}
	if opts.KeepaliveTime == 0 {
		opts.KeepaliveTime = DefaultKeepaliveTime
	}
	if opts.KeepaliveTimeout == 0 {
		opts.KeepaliveTimeout = DefaultKeepaliveTimeout
	}
	if opts.KeepaliveMinTime == 0 {
		opts.KeepaliveMinTime = DefaultKeepaliveMinTime
	}
	if opts.MaxBulkEntries == 0 {
		opts.MaxBulkEntries = DefaultMaxBulkEntries
	}
	if opts.StreamWriteTimeout <= 0 {
		opts.StreamWriteTimeout = DefaultStreamWriteTimeout
	}
	if opts.MaxHeaderListBytes <= 0 {
		opts.MaxHeaderListBytes = DefaultMaxHeaderListBytes
	}
	if opts.MaxHealthWatches <= 0 {
		opts.MaxHealthWatches = DefaultMaxHealthWatches
	}
	if opts.MaxConnectionIdle <= 0 {
		opts.MaxConnectionIdle = DefaultMaxConnectionIdle
	}
	log := opts.Logger.With(logging.KeyComponent, "gateway")
	s := &Server{opts: opts, log: log, health: health.NewServer(), done: make(chan struct{}), codec: newDecodeCodec()}
	s.stopCtx, s.stopping = context.WithCancel(context.Background())
	s.service = &Service{
		sessions:    opts.Sessions,
		log:         log,
		maxBulk:     opts.MaxBulkEntries,
		identity:    opts.Identity,
		access:      opts.Access,
		visible:     opts.Visible,
		constraints: opts.Constraints,
		metrics:     opts.Metrics,
		stopping:    s.stopCtx,

		writeTimeout: opts.StreamWriteTimeout,
		credentials:  opts.Credentials,
		quotaExempt:  opts.QuotaExempt,
	}

	unary := append([]grpc.UnaryServerInterceptor{s.recoverUnary}, opts.UnaryInterceptors...)
	stream := append([]grpc.StreamServerInterceptor{s.recoverStream}, opts.StreamInterceptors...)
	sopts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(opts.MaxMessageBytes),
		grpc.MaxSendMsgSize(opts.MaxMessageBytes),
		grpc.MaxConcurrentStreams(opts.MaxConcurrentStreams),
		grpc.MaxHeaderListSize(uint32(opts.MaxHeaderListBytes)),
		grpc.ForceServerCodecV2(s.codec),
		grpc.ConnectionTimeout(handshakeTimeout),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: opts.KeepaliveTime, Timeout: opts.KeepaliveTimeout,
			MaxConnectionIdle: opts.MaxConnectionIdle}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: opts.KeepaliveMinTime, PermitWithoutStream: true}),
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
	}
	s.grpc = grpc.NewServer(append(sopts, opts.ServerOptions...)...)
	mxgatewayv1grpc.RegisterGatewayServer(s.grpc, s.service)
	healthpb.RegisterHealthServer(s.grpc, &healthService{Server: s.health, stop: s.stopCtx,
		max: int64(opts.MaxHealthWatches), metrics: opts.Metrics})
	reflection.Register(s.grpc)
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	s.health.SetServingStatus(mxgatewayv1grpc.Gateway_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	return s, nil
}

// GRPCServer returns the underlying grpc.Server (for registering more
// services before Serve).
func (s *Server) GRPCServer() *grpc.Server { return s.grpc }

// Health returns the health service, so callers can report per-service
// status.
func (s *Server) Health() *health.Server { return s.health }

// Stopping returns a context that ends when Shutdown begins: long-lived
// streams of other services (GalaxyService.StopWith) end with it.
func (s *Server) Stopping() context.Context { return s.stopCtx }

// Service returns the Gateway service implementation.
func (s *Server) Service() *Service { return s.service }

// Serve accepts connections on lis until Shutdown or Close, then returns
// ErrServerClosed; any other error ends it early.
func (s *Server) Serve(lis net.Listener) error {
	if s.stopCtx.Err() != nil {
		lis.Close()
		return ErrServerClosed
	}
	err := s.grpc.Serve(lis)
	if err == nil || errors.Is(err, grpc.ErrServerStopped) || s.stopCtx.Err() != nil {
		return ErrServerClosed
	}
	return fmt.Errorf("gateway: serve: %w", err)
}

// Shutdown stops the server in order: health goes NOT_SERVING, new sessions
// are refused, event streams end (UNAVAILABLE SHUTTING_DOWN), in-flight
// calls finish (GracefulStop, falling back to Stop when the drain deadline
// passes: ctx's deadline less the sessions' close timeout, at most half of
// it), then every session closes in parallel (graceful worker shutdown,
// killed when ctx ends). It returns ctx's error when the deadline forced anything.
// Later calls wait for the first.
func (s *Server) Shutdown(ctx context.Context) error {
	first := false
	s.shutdownOnce.Do(func() {
		first = true
		s.shutdownErr = s.shutdown(ctx)
		close(s.done)
	})
	if !first {
		select {
		case <-s.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return s.shutdownErr
}

func (s *Server) shutdown(ctx context.Context) error {
	s.log.Info("shutting down")
	s.health.Shutdown()
	s.opts.Sessions.StopAccepting()
	s.stopping()
	// The drain may not use up the whole deadline: what one stuck client
	// holds (a stream whose data it never reads keeps its connection busy)
	// must not cost every other session its MXAccess teardown. The drain
	// ends in time to leave the sessions their close timeout (at most half
	// of what is left).
	drain, cancelDrain := drainContext(ctx, s.opts.Sessions.Options().CloseTimeout)
	defer cancelDrain()
	stop := context.AfterFunc(drain, func() {
		s.log.Warn("shutdown: calls still running at the drain deadline; stopping the gRPC server hard")
		s.grpc.Stop()
	})
	s.grpc.GracefulStop()
	stop()
	err := s.opts.Sessions.Shutdown(ctx)
	if err != nil {
		s.log.Warn("sessions closed past the deadline; workers killed", slog.Any(logging.KeyErr, err))
	}
	s.log.Info("shut down")
	return err
}

// drainContext returns the part of ctx that the gRPC drain may use: ctx
// ends reserve (at most half of the time left) before its deadline.
func drainContext(ctx context.Context, reserve time.Duration) (context.Context, context.CancelFunc) {
	dl, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	reserve = min(reserve, time.Until(dl)/2)
	return context.WithDeadline(ctx, dl.Add(-reserve))
}

// Close stops at once: connections are closed and workers killed. Safe to
// call twice.
func (s *Server) Close() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := s.Shutdown(ctx)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// recoverUnary turns a handler panic into INTERNAL and logs the stack.
func (s *Server) recoverUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = s.panicked(info.FullMethod, r)
		}
	}()
	if err := s.codec.takeFailure(req); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

// recoverStream is recoverUnary for streams.
func (s *Server) recoverStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = s.panicked(info.FullMethod, r)
		}
	}()
	return handler(srv, &decodeStream{ServerStream: ss, codec: s.codec})
}

func (s *Server) panicked(method string, r any) error {
	s.log.Error("handler panicked", slog.String(logging.KeyMethod, method),
		slog.Any("panic", r), slog.String("stack", string(debug.Stack())))
	return withDetails(codes.Internal, "internal error (details in the gateway log)", mxgatewayv1.ReasonInternal)
}

// healthService ends Watch streams when the server stops, after they saw
// NOT_SERVING, so that long-lived health watchers do not hold GracefulStop
// until its deadline.
type healthService struct {
	*health.Server
	stop context.Context

	// max bounds the open watches: they need no key.
	max     int64
	open    atomic.Int64
	metrics *metrics.Metrics
}

// Watch implements healthpb.HealthServer.
func (h *healthService) Watch(req *healthpb.HealthCheckRequest, stream healthpb.Health_WatchServer) error {
	if h.open.Add(1) > h.max {
		h.open.Add(-1)
		h.metrics.LimitRefused(mxgatewayv1.ReasonWatchLimit)
		msg := fmt.Sprintf("too many health watches open (max_health_watches %d)", h.max)
		return withDetails(codes.ResourceExhausted, msg, mxgatewayv1.ReasonWatchLimit, &errdetails.QuotaFailure{
			Violations: []*errdetails.QuotaFailure_Violation{{Subject: mxgatewayv1.ReasonWatchLimit, Description: msg}}})
	}
	defer h.open.Add(-1)
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	ws := &watchStream{Health_WatchServer: stream, ctx: ctx, sent: make(chan struct{})}
	// Ending the watch must not race the NOT_SERVING update that Shutdown
	// pushes first: wait until the last status the watcher was sent is not
	// SERVING (bounded, for watchers whose status never changes).
	stop := context.AfterFunc(h.stop, func() {
		t := time.NewTimer(watchEndGrace)
		defer t.Stop()
		for {
			serving, sent := ws.state()
			if !serving {
				break
			}
			select {
			case <-sent:
				continue
			case <-ctx.Done():
			case <-t.C:
			}
			break
		}
		cancel()
	})
	defer stop()
	return h.Server.Watch(req, ws)
}

// watchEndGrace bounds how long a health watch may stay open after the
// server started stopping, waiting for its NOT_SERVING update.
const watchEndGrace = time.Second

type watchStream struct {
	healthpb.Health_WatchServer
	ctx context.Context

	mu      sync.Mutex
	serving bool          // the last status handed to the watcher was SERVING
	sent    chan struct{} // closed and replaced after every Send
}

func (w *watchStream) Context() context.Context { return w.ctx }

// Send records the last status the watcher was sent. It is recorded before
// the message goes out: the watcher may read it (and the server start
// stopping) before the transport's Send returns, and ending the watch then
// must wait for the next status. Ending it while a NOT_SERVING is being
// sent is safe: the Watch goroutine finishes that Send before it sees its
// context end, so the message precedes the stream's end.
func (w *watchStream) Send(m *healthpb.HealthCheckResponse) error {
	w.mu.Lock()
	w.serving = m.GetStatus() == healthpb.HealthCheckResponse_SERVING
	w.mu.Unlock()
	err := w.Health_WatchServer.Send(m)
	w.mu.Lock()
	if err != nil {
		w.serving = false // nothing more reaches this watcher
	}
	close(w.sent)
	w.sent = make(chan struct{})
	w.mu.Unlock()
	return err
}

func (w *watchStream) state() (serving bool, sent <-chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.serving, w.sent
}
