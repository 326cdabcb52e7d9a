package ui

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/peer"

	"github.com/mxgateway/mxgateway/api/mxgateway/v1/mxgatewayv1grpc"
	"github.com/mxgateway/mxgateway/internal/auth"
	"github.com/mxgateway/mxgateway/internal/logging"
	"github.com/mxgateway/mxgateway/internal/session"
)

// Prefix is where the dashboard is mounted.
const Prefix = "/ui/"

// Cookie names.
const (
	// SessionCookie names the login.
	SessionCookie = "mxgw_ui"
	// loginCookie carries the login form's CSRF token (double submit).
	loginCookie = "mxgw_ui_login"
)

// Form fields and headers.
const (
	// FieldAPIKey is the login form's key field.
	FieldAPIKey = "api_key"
	// FieldCSRF is the CSRF token of every form.
	FieldCSRF = "csrf"
	// HeaderCSRF carries the CSRF token of a script's request.
	HeaderCSRF = "X-CSRF-Token"
)

// ContentSecurityPolicy is sent with every response: scripts and styles
// only from the dashboard's own static files, nothing inline, no frames.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// Audit actions of the dashboard.
const (
	ActionLogin       = "dashboard.login"
	ActionLogout      = "dashboard.logout"
	ActionSessionKill = "dashboard.session.close"
	ActionWorkerKill  = "dashboard.worker.kill"
)

// Defaults of Options.
const (
	DefaultSessionIdle = 30 * time.Minute
	DefaultSessionMax  = 12 * time.Hour
	DefaultMaxLogins   = 64
	// DefaultLiveInterval is how often live pages get a fresh snapshot.
	DefaultLiveInterval = time.Second
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Check is one readiness check as the overview shows it.
type Check struct {
	Name string `json:"name"`
	Err  string `json:"err"` // "" when it passed
}

// Health is the gateway's readiness.
type Health struct {
	Ready  bool
	Checks []Check
}

// WorkerInfo describes one session worker.
type WorkerInfo struct {
	PID           int
	Backend       string
	State         string
	LastHeartbeat time.Time
}

// Workers is what the Workers page needs of the gateway's worker tracking.
type Workers interface {
	// Workers lists the running session workers.
	Workers() []WorkerInfo
	// Spares is how many pre-started workers wait for a session.
	Spares() int
	// Kill ends a session worker at once; false when pid is not one.
	Kill(pid int) bool
}

// Options configure a Server.
type Options struct {
	// Mode is the gateway's authentication mode. With auth.ModeNone the
	// login form takes any input and every login is the anonymous admin.
	Mode auth.Mode
	// Keys verifies logins and keeps the audit log (required with
	// auth.ModeAPIKey).
	Keys *auth.Manager
	// Admin serves the API-key and audit pages, called as the logged-in
	// key (required).
	Admin mxgatewayv1grpc.AdminServer
	// Galaxy serves the Galaxy and Browse pages, called as the logged-in
	// key (its read constraints apply); nil: no Galaxy on this gateway.
	Galaxy mxgatewayv1grpc.GalaxyServer
	// Alarms serves the Alarms page, called as the logged-in key (its
	// read and write constraints apply); nil: no alarm monitor.
	Alarms mxgatewayv1grpc.AlarmsServer
	// Sessions are the gateway's sessions (required).
	Sessions *session.Manager
	// Workers, when set, feeds the Workers page.
	Workers Workers
	// Events is the live tail's source, fed by the session hook
	// EventPublished; nil: no live tail.
	Events *EventTap
	// Health reports readiness (nil: the overview shows none).
	Health func() Health
	// NATS, when set, is read for the overview's NATS summary (nil: the
	// gateway runs without NATS and the overview shows none).
	NATS func() NATSSummary
	// Gatherer is read for the overview's counters (nil: none).
	Gatherer prometheus.Gatherer
	// Version is the build's version line.
	Version string
	// Started is when the gateway started.
	Started time.Time
	// SessionIdle and SessionMax end a login unused this long, and this
	// long after it began; MaxLogins bounds the logins held.
	SessionIdle, SessionMax time.Duration
	MaxLogins               int
	// LiveInterval is the period of live snapshots (default 1s).
	LiveInterval time.Duration
	// Logger receives the dashboard's logs (discarded when nil).
	Logger *slog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Server is the dashboard. It starts one sweeper goroutine, stopped by
// Close.
type Server struct {
	opts   Options
	log    *slog.Logger
	logins *logins
	pages  map[string]*template.Template
	mux    *http.ServeMux
	limit  *loginLimiter

	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
	streams  sync.WaitGroup // live streams and watch pumps
}

// New validates opts and returns a dashboard.
func New(opts Options) (*Server, error) {
	if opts.Sessions == nil || opts.Admin == nil {
		return nil, errors.New("ui: sessions and admin are required")
	}
	if opts.Mode == auth.ModeAPIKey && opts.Keys == nil {
		return nil, errors.New("ui: a key manager is required with API-key authentication")
	}
	if opts.SessionIdle <= 0 {
		opts.SessionIdle = DefaultSessionIdle
	}
	if opts.SessionMax <= 0 {
		opts.SessionMax = DefaultSessionMax
	}
	if opts.MaxLogins <= 0 {
		opts.MaxLogins = DefaultMaxLogins
	}
	if opts.LiveInterval <= 0 {
		opts.LiveInterval = DefaultLiveInterval
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Started.IsZero() {
		opts.Started = opts.Now()
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	s := &Server{
		opts:   opts,
		log:    log.With(logging.KeyComponent, "ui"),
		logins: newLogins(opts.SessionIdle, opts.SessionMax, opts.MaxLogins, opts.Now),
		pages:  pages,
		limit:  newLoginLimiter(opts.Now),
		stop:   make(chan struct{}),
	}
	s.routes()
	s.wg.Go(s.sweeper)
	return s, nil
}

// Handler serves the dashboard under Prefix (and redirects "/ui" there).
func (s *Server) Handler() http.Handler { return s.mux }

// Close ends every login (and its watch session) and stops the sweeper
// and every live stream.
func (s *Server) Close() {
	s.stopOnce.Do(func() { close(s.stop) })
	s.wg.Wait()
	for _, lg := range s.logins.all() {
		s.ended(lg)
	}
	s.streams.Wait()
}

// Logins is how many logins are held (for tests and metrics).
func (s *Server) Logins() int { return s.logins.len() }

func (s *Server) sweeper() {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			for _, lg := range s.logins.sweep() {
				s.ended(lg)
			}
		}
	}
}

// ended releases what a login held.
func (s *Server) ended(lg *login) {
	if lg == nil {
		return
	}
	lg.mu.Lock()
	wt := lg.watch
	lg.mu.Unlock()
	if wt != nil {
		wt.close()
	}
}

func parsePages() (map[string]*template.Template, error) {
	base, err := template.New("base").Funcs(funcs).ParseFS(templateFS, "templates/base.html")
	if err != nil {
		return nil, fmt.Errorf("ui: templates: %w", err)
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := make(map[string]*template.Template)
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "base" {
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(templateFS, n)
		if err != nil {
			return nil, fmt.Errorf("ui: template %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// routes builds the mux. Each handler states what it needs: public
// (login, static), page (a login with dashboard:read), or action (POST,
// a login with admin, a CSRF token).
func (s *Server) routes() {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix(Prefix+"static/", http.FileServer(http.FS(static)))
	mux.Handle("GET "+Prefix+"static/", s.secure(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r) // no directory listings
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})))
	mux.Handle("GET /ui", http.RedirectHandler(Prefix, http.StatusMovedPermanently))
	mux.Handle("GET "+Prefix+"login", s.secure(http.HandlerFunc(s.loginForm)))
	mux.Handle("POST "+Prefix+"login", s.secure(http.HandlerFunc(s.loginSubmit)))
	mux.Handle("POST "+Prefix+"logout", s.secure(s.authed(s.csrf(s.logout))))

	page := func(pattern string, h authedHandler) {
		mux.Handle(pattern, s.secure(s.authed(s.need(auth.ScopeDashboard, h))))
	}
	adminPage := func(pattern string, h authedHandler) {
		mux.Handle(pattern, s.secure(s.authed(s.need(auth.ScopeAdmin, h))))
	}
	action := func(pattern string, h authedHandler) {
		mux.Handle(pattern, s.secure(s.authed(s.csrf(s.need(auth.ScopeAdmin, h)))))
	}
	page("GET "+Prefix+"{$}", s.overview)
	page("GET "+Prefix+"sessions", s.sessionsPage)
	page("GET "+Prefix+"sessions/{id}", s.sessionPage)
	adminPage("GET "+Prefix+"sessions/{id}/close", s.sessionCloseConfirm)
	action("POST "+Prefix+"sessions/{id}/close", s.sessionClose)
	page("GET "+Prefix+"workers", s.workersPage)
	adminPage("GET "+Prefix+"workers/{pid}/kill", s.workerKillConfirm)
	action("POST "+Prefix+"workers/{pid}/kill", s.workerKill)
	page("GET "+Prefix+"events", s.eventsPage)
	page("GET "+Prefix+"galaxy", s.galaxyPage)
	page("GET "+Prefix+"browse", s.browsePage)
	page("GET "+Prefix+"browse/children", s.browseChildren)
	page("GET "+Prefix+"browse/object", s.browseObject)
	mux.Handle("POST "+Prefix+"browse/watch", s.secure(s.authed(s.csrf(s.need(auth.ScopeDashboard, s.watchAdd)))))
	mux.Handle("POST "+Prefix+"browse/unwatch", s.secure(s.authed(s.csrf(s.need(auth.ScopeDashboard, s.watchRemove)))))
	adminPage("GET "+Prefix+"keys", s.keysPage)
	action("POST "+Prefix+"keys", s.keyCreate)
	adminPage("GET "+Prefix+"keys/{id}/{op}", s.keyConfirm)
	action("POST "+Prefix+"keys/{id}/rotate", s.keyRotate)
	action("POST "+Prefix+"keys/{id}/revoke", s.keyRevoke)
	adminPage("GET "+Prefix+"audit", s.auditPage)
	page("GET "+Prefix+"alarms", s.alarmsPage)
	mux.Handle("POST "+Prefix+"alarms/ack", s.secure(s.authed(s.csrf(s.need(auth.ScopeAlarmsAck, s.alarmAck)))))

	page("GET "+Prefix+"live/overview", s.liveOverview)
	page("GET "+Prefix+"live/sessions", s.liveSessions)
	page("GET "+Prefix+"live/events", s.liveEvents)
	page("GET "+Prefix+"live/watch", s.liveWatch)
	s.mux = mux
}

// secure sets the headers every response carries.
func (s *Server) secure(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", ContentSecurityPolicy)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		// same-origin, not no-referrer: with no-referrer browsers send
		// "Origin: null" on form posts, which sameOrigin must refuse.
		hd.Set("Referrer-Policy", "same-origin")
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		if hd.Get("Cache-Control") == "" {
			hd.Set("Cache-Control", "no-store")
		}
		h.ServeHTTP(w, r)
	})
}

// request is one authenticated request.
type request struct {
	*http.Request
	login *login
	p     *auth.Principal
}

type authedHandler func(w http.ResponseWriter, r *request)

// authed resolves the login of the request's cookie and verifies its key
// again: a revoked or rotated key ends the login at once. Without a live
// login, a page is redirected to the login form and anything else is 401.
func (s *Server) authed(h authedHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var tok string
		if c, err := r.Cookie(SessionCookie); err == nil {
			tok = c.Value
		}
		lg, expired := s.logins.get(tok)
		s.ended(expired)
		var p *auth.Principal
		if lg != nil {
			var err error
			if p, err = s.principal(r.Context(), lg); err != nil {
				s.log.Info("dashboard login ended: its key no longer verifies", logging.KeyKeyID, lg.keyID, logging.KeyErr, err)
				s.ended(s.logins.remove(lg))
				lg = nil
			}
		}
		if lg == nil {
			clearCookie(w, r, SessionCookie)
			if r.Method == http.MethodGet && r.Header.Get("Accept") != "text/event-stream" && r.Header.Get("X-Requested-With") == "" {
				http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
				return
			}
			http.Error(w, "not logged in", http.StatusUnauthorized)
			return
		}
		h(w, &request{Request: r, login: lg, p: p})
	})
}

// principal verifies a login's key (cached by the key manager).
func (s *Server) principal(ctx context.Context, lg *login) (*auth.Principal, error) {
	if s.opts.Mode == auth.ModeNone {
		return anonymous, nil
	}
	return s.opts.Keys.AuthenticateCredential(ctx, lg.cred)
}

// anonymous is every login's principal with auth=none.
var anonymous = func() *auth.Principal {
	p := auth.NewPrincipal(auth.AnonymousKeyID, "anonymous (auth=none)", []auth.Scope{auth.ScopeAdmin}, auth.Constraints{})
	p.Anonymous = true
	return p
}()

// need refuses a principal without scope sc (admin holds every scope).
func (s *Server) need(sc auth.Scope, h authedHandler) authedHandler {
	return func(w http.ResponseWriter, r *request) {
		if !r.p.Has(sc) {
			s.render(w, r, http.StatusForbidden, "error", errorData{Title: "Not allowed",
				Message: fmt.Sprintf("This needs an API key with scope %s; yours has %s.", sc, scopeList(r.p.Scopes))})
			return
		}
		h(w, r)
	}
}

// csrf refuses a state-changing request whose token (form field or
// header) is not its login's, or that comes from another site.
func (s *Server) csrf(h authedHandler) authedHandler {
	return func(w http.ResponseWriter, r *request) {
		if !sameOrigin(r.Request) {
			http.Error(w, "cross-site request refused", http.StatusForbidden)
			return
		}
		tok := r.Header.Get(HeaderCSRF)
		if tok == "" {
			r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
			tok = r.PostFormValue(FieldCSRF)
		}
		if !tokenEqual(tok, r.login.csrf) {
			http.Error(w, "invalid or missing CSRF token", http.StatusForbidden)
			return
		}
		h(w, r)
	}
}

// maxFormBytes bounds a form body.
const maxFormBytes = 64 << 10

// sameOrigin reports whether a request may change state: a browser that
// says it is cross-site (Sec-Fetch-Site, Origin) is refused.
func sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return false
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return false
		}
	}
	return true
}

func clearCookie(w http.ResponseWriter, r *http.Request, name string) {
	if _, err := r.Cookie(name); err != nil {
		return
	}
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: Prefix, MaxAge: -1, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
}

// ctxFor is the context a service is called with on behalf of r: its
// principal, and its address for the audit log.
func ctxFor(r *request) context.Context {
	ctx := auth.NewContext(r.Context(), r.p)
	if ap, err := net.ResolveTCPAddr("tcp", r.RemoteAddr); err == nil {
		ctx = peer.NewContext(ctx, &peer.Peer{Addr: ap})
	}
	return ctx
}

func actor(r *request) auth.Actor {
	return auth.Actor{KeyID: r.p.KeyID, RemoteAddr: r.RemoteAddr}
}

// audit records a dashboard action (nothing with auth=none).
func (s *Server) audit(r *http.Request, keyID, action, target, outcome, detail string) {
	if s.opts.Keys == nil {
		return
	}
	s.opts.Keys.Audit(r.Context(), auth.Actor{KeyID: keyID, RemoteAddr: r.RemoteAddr}, action, target, outcome, detail)
}
