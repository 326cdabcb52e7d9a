package natsbus

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/subject"
	"github.com/mxgateway/mxgateway/internal/auth"
	"github.com/mxgateway/mxgateway/internal/logging"
)

// ErrListen is an embedded server that could not listen on its address (for
// example another gateway or a NATS server holds 4222).
var ErrListen = errors.New("natsbus: cannot listen")

// readyTimeout bounds the embedded server's start-up.
const readyTimeout = 10 * time.Second

// Authenticator verifies an API key (auth.Manager).
type Authenticator interface {
	Authenticate(ctx context.Context, raw string) (*auth.Principal, error)
}

// Denied records a refused NATS connection or request, rate-limited and
// audited like the gRPC API's denials (auth.Guard.Deny).
type Denied func(ctx context.Context, p *auth.Principal, reason, action, target, detail, remote string)

// permissions are the subject permissions of principal p: what its scopes
// and reference constraints allow, and its own inbox for replies.
func permissions(s subject.Subjects, p *auth.Principal) *server.Permissions {
	pub, sub := []string{}, []string{subject.Inbox(p.KeyID) + ".>"}
	if p.Has(auth.ScopeInvokeRead) && p.Has(auth.ScopeEventsRead) {
		pub = append(pub, s.Subscribe(p.KeyID))
		sub = append(sub, readSubjects(s, p.Constraints.AllowRead)...)
		sub = append(sub, s.Deploy())
	}
	if p.Has(auth.ScopeAlarmsRead) {
		sub = append(sub, alarmSubjects(s, p.Constraints.AllowRead)...)
	}
	if p.Has(auth.ScopeInvokeWrite) {
		pub = append(pub, s.Prefix+"write."+p.KeyID+".>")
	}
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: pub},
		Subscribe: &server.SubjectPermission{Allow: sub},
	}
}

// authHook is the embedded server's custom authentication: the gateway's
// own connection by its per-run token, every other client by an API key
// given as the connect token or password (auth=none: everyone is the
// anonymous admin).
type authHook struct {
	internal string // the gateway's own token, random per run
	none     bool   // auth=none
	authn    Authenticator
	subj     subject.Subjects
	denied   Denied
	log      *slog.Logger

	// watch watches a key for revocation (nil: connections are not cut).
	watch func(ctx context.Context, keyID string) (context.Context, context.CancelFunc)

	mu         sync.Mutex
	who        map[string]*auth.Principal // key id → principal at its last connect
	ns         *server.Server             // set once the server runs (revoke.go)
	watches    map[string]*keyWatch       // key id → revocation watch
	base       context.Context            // the watches' parent, ended by stopWatches
	cancelBase context.CancelFunc
	wg         sync.WaitGroup
}

func newToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// Check implements server.Authentication.
func (h *authHook) Check(c server.ClientAuthentication) bool {
	o := c.GetOpts()
	secret := o.Token
	if secret == "" {
		secret = o.Password
	}
	if h.internal != "" && secret == h.internal {
		c.RegisterUser(&server.User{Username: "mxgateway"})
		return true
	}
	var p *auth.Principal
	if h.none {
		p = auth.NewPrincipal(auth.AnonymousKeyID, "anonymous (auth=none)", []auth.Scope{auth.ScopeAdmin}, auth.Constraints{})
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var err error
		if p, err = h.authn.Authenticate(ctx, secret); err != nil {
			remote := ""
			if a := c.RemoteAddress(); a != nil {
				remote = a.String()
			}
			if !errors.Is(err, auth.ErrInvalidKey) && !errors.Is(err, auth.ErrMalformedKey) && !errors.Is(err, auth.ErrKeyRevoked) && !errors.Is(err, auth.ErrNoKey) {
				h.log.Error("nats: key verification failed", slog.Any(logging.KeyErr, err))
			}
			if h.denied != nil {
				h.denied(ctx, nil, mxgatewayv1.ReasonUnauthenticated, "nats.connect", "", authDetail(secret, err), remote)
			}
			return false
		}
	}
	if c.Kind() == server.LEAF {
		// Another NATS server joining as a leaf node is a full peer: it
		// needs an admin key (in its nats-leaf:// URL).
		if !p.IsAdmin() {
			if h.denied != nil {
				h.denied(context.Background(), p, mxgatewayv1.ReasonPermissionDenied, "nats.leaf", "", "a leaf node needs an admin key", "")
			}
			return false
		}
		c.RegisterUser(&server.User{Username: p.KeyID})
		return true
	}
	h.mu.Lock()
	h.who[p.KeyID] = p
	h.mu.Unlock()
	if !p.Anonymous {
		h.watchKey(p.KeyID)
	}
	c.RegisterUser(&server.User{Username: p.KeyID, Permissions: permissions(h.subj, p)})
	return true
}

func authDetail(secret string, err error) string {
	switch {
	case secret == "":
		return "no key"
	case errors.Is(err, auth.ErrMalformedKey):
		return "malformed key"
	case errors.Is(err, auth.ErrKeyRevoked):
		return "revoked key"
	}
	return "unknown key id or wrong secret"
}

// principal returns the principal keyID last connected with.
func (h *authHook) principal(keyID string) (*auth.Principal, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p, ok := h.who[keyID]
	return p, ok
}

// slogLogger is the embedded server's logger. Fatalf never exits.
type slogLogger struct{ log *slog.Logger }

func (l slogLogger) Noticef(f string, v ...any) { l.log.Debug(fmt.Sprintf(f, v...)) }
func (l slogLogger) Warnf(f string, v ...any)   { l.log.Warn(fmt.Sprintf(f, v...)) }
func (l slogLogger) Fatalf(f string, v ...any)  { l.log.Error(fmt.Sprintf(f, v...)) }
func (l slogLogger) Errorf(f string, v ...any)  { l.log.Error(fmt.Sprintf(f, v...)) }
func (l slogLogger) Debugf(f string, v ...any)  {}
func (l slogLogger) Tracef(f string, v ...any)  {}

// hostPort splits a listen address; port 0 becomes NATS's RANDOM_PORT.
func hostPort(addr string) (string, int, error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, err
	}
	if n == 0 {
		n = server.RANDOM_PORT
	}
	return h, n, nil
}

// probeListen fails with ErrListen when addr cannot be bound now (port 0
// always can). NATS itself would only log the failure and never become
// ready.
func probeListen(what, addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		cause := err.Error()
		var se *os.SyscallError
		if errors.As(err, &se) {
			cause = se.Err.Error()
		}
		return fmt.Errorf("%w for %s on %s: %s", ErrListen, what, addr, cause)
	}
	return l.Close()
}

// embeddedOptions are the nats-server options of an embedded server.
type embeddedOptions struct {
	Listen      string
	StoreDir    string
	TLS         *tls.Config
	LeafListen  string
	LeafRemotes []string
	Auth        *authHook
	Log         *slog.Logger
}

// startEmbedded starts the embedded server and waits until it is ready.
func startEmbedded(o embeddedOptions) (*server.Server, error) {
	host, port, err := hostPort(o.Listen)
	if err != nil {
		return nil, fmt.Errorf("natsbus: nats_listen %q: %w", o.Listen, err)
	}
	if port != server.RANDOM_PORT {
		if err := probeListen("NATS", o.Listen); err != nil {
			return nil, err
		}
	}
	opts := &server.Options{
		ServerName:                 "mxgateway",
		Host:                       host,
		Port:                       port,
		NoSigs:                     true,
		JetStream:                  true,
		StoreDir:                   o.StoreDir,
		CustomClientAuthentication: o.Auth,
		// The HTTP monitoring port stays closed; Varz and friends are
		// in-process.
		HTTPPort: 0,
	}
	if o.TLS != nil {
		opts.TLSConfig = o.TLS.Clone()
		opts.TLSConfig.NextProtos = nil // the gRPC listener's h2
		opts.TLS = true
		opts.TLSTimeout = 2
	}
	if o.LeafListen != "" {
		lh, lp, err := hostPort(o.LeafListen)
		if err != nil {
			return nil, fmt.Errorf("natsbus: nats_leaf_listen %q: %w", o.LeafListen, err)
		}
		if lp != server.RANDOM_PORT {
			if err := probeListen("NATS leaf nodes", o.LeafListen); err != nil {
				return nil, err
			}
		}
		opts.LeafNode.Host, opts.LeafNode.Port = lh, lp
		if o.TLS != nil {
			opts.LeafNode.TLSConfig = o.TLS.Clone()
			opts.LeafNode.TLSConfig.NextProtos = nil
		}
	}
	for _, r := range o.LeafRemotes {
		u, err := url.Parse(r)
		if err != nil {
			return nil, fmt.Errorf("natsbus: nats_leaf_remotes %q: %w", r, err)
		}
		opts.LeafNode.Remotes = append(opts.LeafNode.Remotes, &server.RemoteLeafOpts{URLs: []*url.URL{u}})
	}
	if len(o.LeafRemotes) > 0 || o.LeafListen != "" {
		// Each gateway keeps its own JetStream (its last-value bucket)
		// when servers are joined by leaf nodes.
		h := fnv.New32a()
		h.Write([]byte(o.StoreDir))
		opts.JetStreamDomain = fmt.Sprintf("mxgw-%08x", h.Sum32())
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("natsbus: %w", err)
	}
	ns.SetLoggerV2(slogLogger{log: o.Log}, false, false, false)
	ns.Start()
	if !ns.ReadyForConnections(readyTimeout) {
		ns.Shutdown()
		return nil, fmt.Errorf("%w: the embedded NATS server on %s was not ready within %v", ErrListen, o.Listen, readyTimeout)
	}
	return ns, nil
}
