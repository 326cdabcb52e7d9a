package opshttp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mxgateway/mxgateway/internal/logging"
)

// Defaults of Options.
const (
	DefaultRefreshInterval = 10 * time.Second
	DefaultCheckTimeout    = 5 * time.Second
)

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("opshttp: server closed")

var errNoAddr = errors.New("opshttp: no listen address")

// Check is one readiness check. Func returns nil when the gateway is ready
// as far as this check knows. It runs in the background, never per
// request, with a context bounded by Options.CheckTimeout.
type Check struct {
	Name string
	Func func(ctx context.Context) error
}

// CheckStatus is the latest result of one check.
type CheckStatus struct {
	Name    string
	Err     error     // nil when the check passed
	Checked time.Time // zero before the first run
}

// Options configure a Server.
type Options struct {
	// Listener, when set, is served instead of binding Addr (the caller
	// bound it early, to fail fast on a busy port before doing anything
	// else). Addr still names it in messages.
	Listener net.Listener
	// Addr is the listen address (host:port; port 0 picks a free port).
	Addr string
	// Gatherer is served at /metrics (prometheus.DefaultGatherer when nil).
	Gatherer prometheus.Gatherer
	// Checks decide /readyz. With none, the server is ready once serving.
	Checks []Check
	// RefreshInterval is how often the checks run (default 10s).
	RefreshInterval time.Duration
	// CheckTimeout bounds one run of one check (default 5s).
	CheckTimeout time.Duration
	// OnReadyChange, when set, is called from the refresh goroutine each
	// time overall readiness changes (for example to set the gRPC health
	// status). It must not block for long.
	OnReadyChange func(ready bool)
	// Logger receives lifecycle and check-transition logs (discarded when nil).
	Logger *slog.Logger
	// UI, when set, is served under /ui/ (the dashboard, internal/ui). Its
	// live streams lift the listener's write timeout for themselves.
	UI http.Handler
}

// Server is the HTTP side listener: /metrics, /healthz and /readyz. It
// follows the usual lifecycle: New (validates, starts nothing), Listen
// (optional, binds early so Addr is known), Serve (blocks), Shutdown or
// Close.
type Server struct {
	opts   Options
	log    *slog.Logger
	http   *http.Server
	closed atomic.Bool

	mu       sync.Mutex
	ln       net.Listener
	statuses []CheckStatus
	ran      bool // the checks ran at least once
	ready    bool // the last computed overall readiness
	draining bool

	stopRefresh chan struct{}
	stopOnce    sync.Once
}

// NewHTTPServer is the gateway's HTTP server for h, with the one set of
// timeouts and header bound every HTTP listener of the gateway uses (the
// ops listener and the dashboard's own), its errors logged at WARN.
func NewHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// New validates opts and returns a server that is not yet listening.
func New(opts Options) (*Server, error) {
	if opts.Addr == "" {
		return nil, errNoAddr
	}
	if opts.Gatherer == nil {
		opts.Gatherer = prometheus.DefaultGatherer
	}
	if opts.RefreshInterval <= 0 {
		opts.RefreshInterval = DefaultRefreshInterval
	}
	if opts.CheckTimeout <= 0 {
		opts.CheckTimeout = DefaultCheckTimeout
	}
	seen := make(map[string]bool)
	for _, c := range opts.Checks {
		if c.Name == "" || c.Func == nil {
			return nil, errors.New("opshttp: a check needs a name and a func")
		}
		if seen[c.Name] {
			return nil, fmt.Errorf("opshttp: check %q registered twice", c.Name)
		}
		seen[c.Name] = true
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{opts: opts, log: log.With(logging.KeyComponent, "opshttp"), stopRefresh: make(chan struct{})}
	s.statuses = make([]CheckStatus, len(opts.Checks))
	for i, c := range opts.Checks {
		s.statuses[i] = CheckStatus{Name: c.Name, Err: errors.New("not checked yet")}
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	if opts.UI != nil {
		mux.Handle("/ui/", opts.UI)
		mux.Handle("/ui", opts.UI)
	}
	s.http = NewHTTPServer(mux, s.log)
	return s, nil
}

// Listen binds the listen address, if Serve has not yet done so. Call it
// to fail fast on a busy port or to learn the port chosen for port 0.
func (s *Server) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return ErrServerClosed
	}
	if s.ln != nil {
		return nil
	}
	if s.opts.Listener != nil {
		s.ln = s.opts.Listener
		return nil
	}
	ln, err := net.Listen("tcp", s.opts.Addr)
	if err != nil {
		return fmt.Errorf("opshttp: listen: %w", err)
	}
	s.ln = ln
	return nil
}

// Addr returns the bound address, or nil before Listen.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Serve listens (unless Listen already did), runs the checks at once and
// then every RefreshInterval, and serves until ctx ends or Shutdown or
// Close is called. It returns ErrServerClosed after Shutdown or Close, the
// context's error when ctx ended, or the error that stopped serving.
func (s *Server) Serve(ctx context.Context) error {
	if err := s.Listen(); err != nil {
		return err
	}
	s.mu.Lock()
	ln := s.ln
	s.mu.Unlock()
	s.log.Info("ops HTTP listening", logging.KeyAddr, ln.Addr().String())

	var wg sync.WaitGroup
	refreshCtx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		wg.Wait()
	}()
	wg.Go(func() { s.refreshLoop(refreshCtx) })
	wg.Go(func() {
		select {
		case <-refreshCtx.Done():
		case <-s.stopRefresh:
		}
		if ctx.Err() != nil {
			_ = s.http.Close()
		}
	})

	err := s.http.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		if ctx.Err() != nil && !s.closed.Load() {
			return ctx.Err()
		}
		return ErrServerClosed
	}
	return fmt.Errorf("opshttp: serve: %w", err)
}

// Shutdown marks the server not ready, stops the checks and waits, within
// ctx, for requests in flight.
func (s *Server) Shutdown(ctx context.Context) error {
	s.SetDraining()
	s.stop()
	err := s.http.Shutdown(ctx)
	s.closeListener()
	return err
}

// Close stops at once. It is safe to call twice.
func (s *Server) Close() error {
	s.stop()
	err := s.http.Close()
	s.closeListener()
	return err
}

// closeListener releases a port bound by Listen but never served (a served
// listener is closed by the http.Server; closing it again is harmless).
func (s *Server) closeListener() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		_ = s.ln.Close()
	}
}

func (s *Server) stop() {
	s.closed.Store(true)
	s.stopOnce.Do(func() { close(s.stopRefresh) })
}

// SetDraining makes /readyz fail from now on ("shutting down"), so load
// balancers stop sending new clients before the gateway stops.
func (s *Server) SetDraining() {
	s.mu.Lock()
	s.draining = true
	changed := s.ready
	s.ready = false
	s.mu.Unlock()
	if changed && s.opts.OnReadyChange != nil {
		s.opts.OnReadyChange(false)
	}
}

// Ready reports the cached overall readiness: every check passed on its
// latest run and the server is not draining.
func (s *Server) Ready() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ready
}

// Statuses returns the latest result of every check, in registration order.
func (s *Server) Statuses() []CheckStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]CheckStatus(nil), s.statuses...)
}

// refreshLoop runs the checks now and then every RefreshInterval until ctx
// ends or the server stops.
func (s *Server) refreshLoop(ctx context.Context) {
	t := time.NewTicker(s.opts.RefreshInterval)
	defer t.Stop()
	for {
		s.runChecks(ctx)
		select {
		case <-ctx.Done():
			return
		case <-s.stopRefresh:
			return
		case <-t.C:
		}
	}
}

// runChecks runs every check in turn, each bounded by CheckTimeout, and
// then publishes the results at once.
func (s *Server) runChecks(ctx context.Context) {
	results := make([]CheckStatus, len(s.opts.Checks))
	for i, c := range s.opts.Checks {
		cctx, cancel := context.WithTimeout(ctx, s.opts.CheckTimeout)
		err := runCheck(cctx, c)
		cancel()
		if ctx.Err() != nil {
			return // stopping: keep the last complete results
		}
		results[i] = CheckStatus{Name: c.Name, Err: err, Checked: time.Now()}
	}

	s.mu.Lock()
	prev := s.statuses
	s.statuses = results
	s.ran = true
	ready := !s.draining
	for _, r := range results {
		if r.Err != nil {
			ready = false
		}
	}
	changed := ready != s.ready
	s.ready = ready
	s.mu.Unlock()

	for i, r := range results {
		wasOK := prev[i].Err == nil && !prev[i].Checked.IsZero()
		switch {
		case r.Err != nil && (wasOK || prev[i].Checked.IsZero()):
			s.log.Warn("readiness check failing", logging.KeyCheck, r.Name, logging.KeyErr, r.Err)
		case r.Err == nil && !wasOK && !prev[i].Checked.IsZero():
			s.log.Info("readiness check recovered", logging.KeyCheck, r.Name)
		}
	}
	if changed && s.opts.OnReadyChange != nil {
		s.opts.OnReadyChange(ready)
	}
}

// runCheck runs one check, turning a panic into a failure.
func runCheck(ctx context.Context, c Check) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("check panicked: %v", r)
		}
	}()
	return c.Func(ctx)
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte("ok\n"))
}

// readyz answers from the cached results: 200 and "ready" when every check
// passed, else 503; the body lists each check with "ok" or "failed: <err>".
func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	ready, draining, ran := s.ready, s.draining, s.ran
	statuses := append([]CheckStatus(nil), s.statuses...)
	s.mu.Unlock()

	var b strings.Builder
	switch {
	case draining:
		b.WriteString("not ready: shutting down\n")
	case !ran:
		b.WriteString("not ready: checks have not run yet\n")
	case ready:
		b.WriteString("ready\n")
	default:
		b.WriteString("not ready\n")
	}
	for _, st := range statuses {
		status := "ok"
		if st.Err != nil {
			status = "failed: " + logging.RedactString(oneLine(st.Err.Error()))
		}
		fmt.Fprintf(&b, "%s: %s\n", st.Name, status)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if !ready {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_, _ = w.Write([]byte(b.String()))
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
