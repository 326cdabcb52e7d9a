package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	mxgatewayv1grpc "github.com/mxgateway/mxgateway/api/mxgateway/v1/mxgatewayv1grpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
)

// DefaultPort is the gateway's default gRPC port, used when addr has none.
const DefaultPort = "5000"

// Client is a connection to one gateway. It is safe for concurrent use.
// Close it to release the connection, the sessions it opened and every
// goroutine it started.
type Client struct {
	conn   *grpc.ClientConn
	gw     mxgatewayv1grpc.GatewayClient
	health healthpb.HealthClient
	opts   options
	addr   string

	mu       sync.Mutex
	closed   bool
	sessions map[*Session]struct{}
}

// Dial connects to the gateway at addr ("host:port"; the port defaults to
// 5000) and checks that it answers, so an unreachable address, a TLS mismatch
// or a refused connection is reported here rather than on the first call.
// ctx bounds only that check.
func Dial(ctx context.Context, addr string, opts ...Option) (*Client, error) {
	o := defaultOptions()
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	target, host, err := splitAddr(addr)
	if err != nil {
		return nil, err
	}
	loopback := isLoopback(host)
	useTLS := false
	switch o.transport {
	case transportTLS:
		useTLS = true
	case transportInsecure:
		if !loopback && !o.anyHost {
			return nil, fmt.Errorf("%w %s: use TLS, or WithInsecureAnyHost on a trusted network", ErrInsecureRemote, addr)
		}
	case transportAuto:
		useTLS = !loopback
		if useTLS {
			_ = WithTLS()(&o)
		}
	}
	dial := []grpc.DialOption{
		grpc.WithUserAgent(o.userAgent),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time: o.keepaliveTime, Timeout: o.keepaliveWait, PermitWithoutStream: true,
		}),
	}
	if useTLS {
		dial = append(dial, grpc.WithTransportCredentials(credentials.NewTLS(o.tlsConfig)))
	} else {
		dial = append(dial, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	if o.apiKey != "" {
		dial = append(dial, grpc.WithPerRPCCredentials(apiKeyCreds{key: o.apiKey, requireTLS: useTLS}))
	}
	dial = append(dial, o.dialOpts...)
	conn, err := grpc.NewClient(target, dial...)
	if err != nil {
		return nil, fmt.Errorf("client: dial %s: %w", addr, err)
	}
	c := &Client{
		conn: conn, gw: mxgatewayv1grpc.NewGatewayClient(conn), health: healthpb.NewHealthClient(conn),
		opts: o, addr: addr, sessions: map[*Session]struct{}{},
	}
	if err := c.probe(ctx); err != nil {
		_ = conn.Close()
		return nil, err
	}
	return c, nil
}

// probe makes one cheap call; anything but a transport failure proves the
// gateway is there.
func (c *Client) probe(ctx context.Context) error {
	cctx, cancel := c.callCtx(ctx)
	defer cancel()
	_, err := c.health.Check(cctx, &healthpb.HealthCheckRequest{})
	if err == nil {
		return nil
	}
	ge := fromRPC(ctx, err)
	var gerr *GatewayError
	if errors.As(ge, &gerr) {
		switch gerr.Code {
		case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled:
			return fmt.Errorf("client: cannot reach gateway at %s: %w", c.addr, ge)
		}
		return nil // reachable: NOT_FOUND, UNIMPLEMENTED, ... are answers
	}
	return fmt.Errorf("client: cannot reach gateway at %s: %w", c.addr, ge)
}

func splitAddr(addr string) (target, host string, err error) {
	if addr == "" {
		return "", "", errors.New("client: empty gateway address")
	}
	if strings.Contains(addr, "://") {
		rest := addr[strings.Index(addr, "://")+3:]
		rest = strings.TrimPrefix(rest, "/")
		h, _, err := net.SplitHostPort(rest)
		if err != nil {
			h = rest
		}
		return addr, h, nil
	}
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		// No port: append the default one.
		h, p = strings.Trim(addr, "[]"), DefaultPort
	}
	if p == "" {
		p = DefaultPort
	}
	return net.JoinHostPort(h, p), h, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// IsLoopbackAddr reports whether a "host:port" gateway address names this
// machine (127.0.0.0/8, ::1 or localhost).
func IsLoopbackAddr(addr string) bool {
	_, h, err := splitAddr(addr)
	return err == nil && isLoopback(h)
}

type apiKeyCreds struct {
	key        string
	requireTLS bool
}

func (k apiKeyCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + k.key}, nil
}

func (k apiKeyCreds) RequireTransportSecurity() bool { return k.requireTLS }

// callCtx applies the default per-call timeout when ctx has no deadline.
func (c *Client) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok || c.opts.timeout == 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, c.opts.timeout)
}

// Conn returns the underlying gRPC connection, for services the SDK does not
// wrap. It is closed by Close.
func (c *Client) Conn() *grpc.ClientConn { return c.conn }

// Gateway returns the generated Gateway client on the connection, for raw
// access to the RPCs.
func (c *Client) Gateway() mxgatewayv1grpc.GatewayClient { return c.gw }

// HealthStatus is the gateway's grpc.health.v1 answer.
type HealthStatus struct {
	// Serving is true when the gateway accepts work.
	Serving bool
	// Status is the raw status name, for example "SERVING" or "NOT_SERVING".
	Status string
}

// Health asks the standard gRPC health service for the overall status. Pass
// a service name to ask about one service (for example
// "mxgateway.v1.Gateway").
func (c *Client) Health(ctx context.Context, service ...string) (HealthStatus, error) {
	if err := c.checkOpen(); err != nil {
		return HealthStatus{}, err
	}
	ctx, cancel := c.callCtx(ctx)
	defer cancel()
	req := &healthpb.HealthCheckRequest{}
	if len(service) > 0 {
		req.Service = service[0]
	}
	resp, err := c.health.Check(ctx, req)
	if err != nil {
		return HealthStatus{}, fromRPC(ctx, err)
	}
	return HealthStatus{
		Serving: resp.GetStatus() == healthpb.HealthCheckResponse_SERVING,
		Status:  resp.GetStatus().String(),
	}, nil
}

// ListSessions lists sessions: every session for an admin key, otherwise the
// caller's own.
func (c *Client) ListSessions(ctx context.Context) ([]*mxgatewayv1.SessionInfo, error) {
	if err := c.checkOpen(); err != nil {
		return nil, err
	}
	ctx, cancel := c.callCtx(ctx)
	defer cancel()
	resp, err := c.gw.ListSessions(ctx, &mxgatewayv1.ListSessionsRequest{})
	if err != nil {
		return nil, fromRPC(ctx, err)
	}
	return resp.GetSessions(), nil
}

// OpenSession starts a session (one worker process) named clientName for logs
// and ListSessions, and waits until it is ready. Recovering makes it survive
// the loss of the gateway session.
func (c *Client) OpenSession(ctx context.Context, clientName string, opts ...SessionOption) (*Session, error) {
	var so sessionOptions
	for _, o := range opts {
		o(&so)
	}
	if err := c.checkOpen(); err != nil {
		return nil, err
	}
	cctx, cancel := c.callCtx(ctx)
	defer cancel()
	resp, err := c.gw.OpenSession(cctx, &mxgatewayv1.OpenSessionRequest{ClientName: clientName})
	if err != nil {
		return nil, fromRPC(cctx, err)
	}
	s := newSession(c, clientName, resp)
	if so.recovering {
		s.rec = newRecovery()
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		_ = s.Close()
		return nil, ErrClosed
	}
	c.sessions[s] = struct{}{}
	c.mu.Unlock()
	return s, nil
}

// AttachSession returns a Session for an existing session id (for example one
// opened by another process). Close on it closes the gateway session.
func (c *Client) AttachSession(sessionID string) (*Session, error) {
	if err := c.checkOpen(); err != nil {
		return nil, err
	}
	if sessionID == "" {
		return nil, errors.New("client: empty session id")
	}
	s := newSession(c, "", &mxgatewayv1.OpenSessionResponse{SessionId: sessionID})
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	c.sessions[s] = struct{}{}
	return s, nil
}

func (c *Client) forget(s *Session) {
	c.mu.Lock()
	delete(c.sessions, s)
	c.mu.Unlock()
}

func (c *Client) checkOpen() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	return nil
}

// Close closes every session this client opened (unless
// WithoutSessionCleanup), stops their goroutines and closes the connection.
// It is safe to call more than once; later calls return nil.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	sessions := make([]*Session, 0, len(c.sessions))
	for s := range c.sessions {
		sessions = append(sessions, s)
	}
	c.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range sessions {
		wg.Go(func() {
			if c.opts.disableCleanup {
				s.detach()
				return
			}
			_ = s.Close()
		})
	}
	wg.Wait()
	return c.conn.Close()
}

// closeTimeout bounds CloseSession calls made by Close.
const closeTimeout = 10 * time.Second
