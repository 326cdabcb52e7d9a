package client

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc"
)

// Option configures Dial.
type Option func(*options) error

type transport int

const (
	transportAuto transport = iota
	transportTLS
	transportInsecure
)

type options struct {
	apiKey         string
	transport      transport
	anyHost        bool
	tlsConfig      *tls.Config
	timeout        time.Duration
	keepaliveTime  time.Duration
	keepaliveWait  time.Duration
	userAgent      string
	dialOpts       []grpc.DialOption
	eventBackoff   Backoff
	writeTimeout   time.Duration
	disableCleanup bool
	eventBatch     batching
}

// Defaults of the Dial options.
const (
	DefaultTimeout          = 30 * time.Second
	DefaultKeepaliveTime    = 30 * time.Second
	DefaultKeepaliveTimeout = 10 * time.Second
	DefaultWriteTimeout     = 30 * time.Second
)

func defaultOptions() options {
	return options{
		timeout:       DefaultTimeout,
		keepaliveTime: DefaultKeepaliveTime,
		keepaliveWait: DefaultKeepaliveTimeout,
		userAgent:     "mxgateway-go-client",
		eventBackoff:  DefaultBackoff,
		writeTimeout:  DefaultWriteTimeout,
	}
}

// WithAPIKey sends the key ("mxgw_<id>_<secret>") as
// "authorization: Bearer <key>" on every call. An empty key sends nothing.
func WithAPIKey(key string) Option {
	return func(o *options) error { o.apiKey = key; return nil }
}

// WithTLS uses TLS, verifying the gateway against the system roots.
func WithTLS() Option {
	return func(o *options) error {
		o.transport = transportTLS
		if o.tlsConfig == nil {
			o.tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		return nil
	}
}

// WithCAFile uses TLS, verifying the gateway against the PEM certificates in
// path instead of the system roots.
func WithCAFile(path string) Option {
	return func(o *options) error {
		pem, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("client: read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("client: CA file %s holds no PEM certificate", path)
		}
		o.transport = transportTLS
		o.tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
		return nil
	}
}

// WithTLSConfig uses TLS with the given configuration (client certificates,
// server name override, ...). The config is cloned.
func WithTLSConfig(cfg *tls.Config) Option {
	return func(o *options) error {
		o.transport = transportTLS
		o.tlsConfig = cfg.Clone()
		return nil
	}
}

// WithInsecure uses plaintext (h2c). Dial refuses it for an address that is
// not loopback (127.0.0.0/8, ::1, localhost), because the API key would
// travel in clear; WithInsecureAnyHost lifts that.
//
// Without WithTLS, WithCAFile, WithTLSConfig or WithInsecure, Dial uses
// plaintext for a loopback address and TLS with the system roots for any
// other.
func WithInsecure() Option {
	return func(o *options) error { o.transport = transportInsecure; return nil }
}

// WithInsecureAnyHost uses plaintext even to a non-loopback address. Only for
// trusted networks: the API key travels in clear.
func WithInsecureAnyHost() Option {
	return func(o *options) error { o.transport = transportInsecure; o.anyHost = true; return nil }
}

// WithTimeout sets the timeout of each unary call whose context has no
// deadline (default 30 s, sized for MXAccess's first-bind latency). Zero
// disables it.
func WithTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return fmt.Errorf("client: negative timeout %v", d)
		}
		o.timeout = d
		return nil
	}
}

// WithWriteTimeout sets how long WriteValue waits for the first value and for
// OnWriteComplete when its context has no deadline (default 30 s). A missing
// completion is a failure, never a success.
func WithWriteTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("client: write timeout must be positive, got %v", d)
		}
		o.writeTimeout = d
		return nil
	}
}

// WithKeepalive sets the HTTP/2 keepalive ping interval and how long to wait
// for its answer (defaults 30 s and 10 s); pings are sent even without active
// calls, so a dead connection is noticed while a stream is idle. The gateway
// accepts pings no more often than its enforcement policy allows.
func WithKeepalive(interval, timeout time.Duration) Option {
	return func(o *options) error {
		if interval < 10*time.Second || timeout <= 0 {
			return fmt.Errorf("client: keepalive interval must be >= 10s and timeout > 0")
		}
		o.keepaliveTime, o.keepaliveWait = interval, timeout
		return nil
	}
}

// WithUserAgent sets the user agent prefix sent to the gateway.
func WithUserAgent(ua string) Option {
	return func(o *options) error { o.userAgent = ua; return nil }
}

// WithDialOptions appends raw grpc.DialOptions (interceptors, stats handlers,
// a custom dialer), applied after the client's own.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(o *options) error { o.dialOpts = append(o.dialOpts, opts...); return nil }
}

// WithEventBackoff sets the reconnect backoff of Session.Events (default
// DefaultBackoff).
func WithEventBackoff(b Backoff) Option {
	return func(o *options) error {
		if err := b.validate(); err != nil {
			return err
		}
		o.eventBackoff = b
		return nil
	}
}

// WithoutSessionCleanup makes Client.Close leave the sessions it opened on
// the gateway (they end by lease expiry), for tools that hand a session id to
// another process.
func WithoutSessionCleanup() Option {
	return func(o *options) error { o.disableCleanup = true; return nil }
}

// WithEventBatch makes every Events iterator of the client ask for batches
// (see Batch; an Events call's own Batch option overrides it). Batching is
// off by default: one event per message.
func WithEventBatch(maxEvents int, maxDelay time.Duration) Option {
	return func(o *options) error {
		o.eventBatch = newBatching(maxEvents, maxDelay)
		return nil
	}
}
