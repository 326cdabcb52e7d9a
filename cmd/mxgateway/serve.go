package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/term"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/catalog"
	mxgatewayv1grpc "github.com/mxgateway/mxgateway/api/mxgateway/v1/mxgatewayv1grpc"
	"github.com/mxgateway/mxgateway/internal/auth"
	"github.com/mxgateway/mxgateway/internal/buildinfo"
	"github.com/mxgateway/mxgateway/internal/config"
	"github.com/mxgateway/mxgateway/internal/gateway"
	"github.com/mxgateway/mxgateway/internal/logging"
	"github.com/mxgateway/mxgateway/internal/metrics"
	"github.com/mxgateway/mxgateway/internal/opshttp"
	"github.com/mxgateway/mxgateway/internal/session"
	"github.com/mxgateway/mxgateway/internal/store"
	"github.com/mxgateway/mxgateway/internal/supervisor"
	"github.com/mxgateway/mxgateway/internal/tlsutil"
	"github.com/mxgateway/mxgateway/internal/ui"
	"github.com/mxgateway/mxgateway/internal/winsvc"
	"github.com/mxgateway/mxgateway/internal/workerclient"
)

// Timings of serve's own background work.
const (
	// noAuthWarnInterval repeats the auth=none warning.
	noAuthWarnInterval = 10 * time.Minute
	// workerProbeInterval is how long a successful worker_start readiness
	// probe is trusted; a failed one is retried on every readiness round.
	workerProbeInterval = 5 * time.Minute
)

func runServe(args []string) int {
	cfg, code := loadServeConfig(args, os.Stdout, os.Stderr, os.Getenv)
	if cfg == nil {
		return code
	}
	run := func(ctx context.Context) error {
		src, _ := winsvc.NameFromContext(ctx)
		log, closeLog, err := openServeLog(cfg, os.Stderr, src)
		if err != nil {
			return err
		}
		defer closeLog()
		err = serve(ctx, cfg, log, os.Stdout, os.Stderr)
		var se *startupError
		// A failure to start is the one line runServe prints; it goes to
		// the log as well only when the log is not that same stderr.
		if err != nil && (!errors.As(err, &se) || cfg.LogFile != "" || src != "") {
			log.Error("gateway stopped", slog.Any(logging.KeyErr, err))
		}
		return err
	}
	if ok, err := runAsService(run); ok || err != nil {
		if err != nil {
			printServeError(os.Stderr, err)
			return 1
		}
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		printServeError(os.Stderr, err)
		return 1
	}
	return 0
}

// printServeError prints err on one line, prefixed once.
func printServeError(w io.Writer, err error) {
	fmt.Fprintln(w, "mxgateway serve:", strings.TrimPrefix(err.Error(), "serve: "))
}

// startupError is a failure before the gateway served anything.
type startupError struct{ err error }

func (e *startupError) Error() string { return e.err.Error() }
func (e *startupError) Unwrap() error { return e.err }

// listenError is a listener that could not bind, said in one line with
// what to do about it.
type listenError struct {
	what, addr, flag string
	err              error
}

func (e *listenError) Error() string {
	cause := e.err.Error()
	var se *os.SyscallError
	if errors.As(e.err, &se) {
		cause = se.Err.Error()
	}
	return fmt.Sprintf("cannot listen for %s on %s: %s (is another mxgateway running? choose another address with --%s)", e.what, e.addr, cause, e.flag)
}

func (e *listenError) Unwrap() error { return e.err }

// bindListeners binds the gRPC and HTTP addresses. It runs before anything
// else: a port in use then creates nothing (no first-run key the gateway
// could not serve) and starts nothing (no worker, no shutdown to log).
func bindListeners(cfg *config.Config) (grpcLis, httpLis net.Listener, err error) {
	grpcLis, err = net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, nil, &listenError{what: "gRPC", addr: cfg.Listen, flag: "listen", err: err}
	}
	httpLis, err = net.Listen("tcp", cfg.HTTPListen)
	if err != nil {
		grpcLis.Close()
		return nil, nil, &listenError{what: "HTTP", addr: cfg.HTTPListen, flag: "http-listen", err: err}
	}
	return grpcLis, httpLis, nil
}

// workerCommand returns the worker executable and its arguments (the
// supervisor adds --session-id, --endpoint and --protocol-version). With
// worker_exe empty it is the lean mxworker when there is one (simWorker),
// and logs which worker sim sessions run.
func workerCommand(c *config.Config, log *slog.Logger) (string, []string, error) {
	var args []string
	exe := c.WorkerExe
	if exe == "" {
		var how string
		var err error
		if exe, args, how, err = simWorker(log); err != nil {
			return "", nil, err
		}
		log.Info("sim worker: "+how, slog.String("exe", exe))
	}
	args = append(args, "--backend="+string(c.WorkerBackend), "--log-level="+c.LogLevel)
	if c.WorkerMaxProcs > 0 {
		args = append(args, "--max-procs="+strconv.Itoa(c.WorkerMaxProcs))
	}
	switch c.WorkerBackend {
	case config.BackendSim:
		args = append(args, "--sim-profile="+c.SimProfile)
		if c.SimModel != "" {
			model, err := filepath.Abs(c.SimModel)
			if err != nil {
				return "", nil, fmt.Errorf("serve: sim_model: %w", err)
			}
			args = append(args, "--sim-model="+model)
		}
	case config.BackendMXAccess:
		args = append(args, "--prog-id="+c.MXAccessProgID)
	}
	return exe, args, nil
}

// serve runs the gateway until ctx ends, then shuts it down in order. The
// listen lines and the first-run admin key go to stdout and stderr with
// fmt (never through the logger, whose redaction would mask the key).
func serve(ctx context.Context, cfg *config.Config, log *slog.Logger, stdout, stderr io.Writer) (retErr error) {
	served := false
	started := time.Now()
	defer func() {
		if retErr != nil && !served {
			retErr = &startupError{err: retErr}
		}
	}()
	mode, err := auth.ParseMode(string(cfg.Auth))
	if err != nil {
		return err
	}
	grpcLis, httpLis, err := bindListeners(cfg)
	if err != nil {
		return err
	}
	if err := probeNATS(cfg); err != nil {
		grpcLis.Close()
		httpLis.Close()
		return err
	}
	// The worker is chosen (and under go run built) once the addresses are
	// ours: a taken port is reported at once, as the only line.
	exe, wargs, err := workerCommand(cfg, log)
	if err != nil {
		grpcLis.Close()
		httpLis.Close()
		return err
	}

	// Cleanup runs in reverse order of construction, whatever fails.
	// Closing a listener the servers already closed is harmless.
	cleanups := []func(){func() { grpcLis.Close(); httpLis.Close() }}
	defer func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}()
	if err := store.EnsureDataDir(cfg.DataDir); err != nil {
		return fmt.Errorf("serve: data directory: %w", err)
	}

	// Key store, peppers, key manager. The Admin service works in both
	// modes (with auth=none every caller is an anonymous admin), so keys
	// can be prepared before authentication is switched on.
	st, err := store.OpenInDir(ctx, cfg.DataDir, store.Options{Logger: log})
	if err != nil {
		return fmt.Errorf("serve: key store: %w", err)
	}
	cleanups = append(cleanups, func() {
		if err := st.Close(); err != nil {
			log.Warn("key store close", slog.Any(logging.KeyErr, err))
		}
	})
	peppers, err := auth.LoadPeppers(auth.PepperConfig{File: cfg.PepperFile, DataDir: cfg.DataDir})
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	mgr, err := auth.NewManager(auth.ManagerConfig{Store: st, Peppers: peppers, Logger: log})
	if err != nil {
		return err
	}

	reg := metrics.NewRegistry()
	m := metrics.New(reg)
	// Connections are bounded per listener before anything is parsed: a
	// listener at its limit accepts the next connection only when one
	// closes (idle gRPC connections are closed after max_connection_idle).
	grpcLis = limitListener(grpcLis, cfg.MaxConnections, m, "grpc")
	httpLis = limitListener(httpLis, cfg.MaxConnections, m, "http")

	guard, err := auth.NewGuard(auth.GuardConfig{Mode: mode, Manager: mgr, Logger: log, OnDenied: m.AuthDenied,
		MaxStreamsPerKey: cfg.MaxStreamsPerKey, OnLimit: m.LimitRefused,
		Credentials: auth.CredentialConfig{Backoff: cfg.CredentialBackoff, BackoffMax: cfg.CredentialBackoffMax, OnFailure: m.CredentialFailed}})
	if err != nil {
		return err
	}

	var serverOpts []grpc.ServerOption
	var natsTLS *tls.Config // the same certificate for the NATS listener
	caFile := ""
	switch cfg.TLS {
	case config.TLSFiles:
		cert, err := tlsutil.LoadKeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return fmt.Errorf("serve: %w", err)
		}
		serverOpts = append(serverOpts, grpc.Creds(credentials.NewTLS(tlsutil.ServerConfig(cert))))
		natsTLS = tlsutil.ServerConfig(cert)
	case config.TLSSelfSigned:
		res, err := tlsutil.EnsureSelfSigned(tlsutil.SelfSignedConfig{Dir: cfg.DataDir, ExtraNames: cfg.TLSExtraNames})
		if err != nil {
			return fmt.Errorf("serve: %w", err)
		}
		if res.Generated {
			log.Info("generated a self-signed TLS certificate", slog.String("cert", res.CertFile), slog.Time("not_after", res.NotAfter))
		}
		serverOpts = append(serverOpts, grpc.Creds(credentials.NewTLS(tlsutil.ServerConfig(res.Certificate))))
		natsTLS = tlsutil.ServerConfig(res.Certificate)
		caFile = res.CertFile
	}

	// The simulated Galaxy every sim worker attaches to: an external
	// runtime, or our own (stopped after the sessions).
	var workerEnv []string
	if cfg.WorkerBackend == config.BackendSim {
		if cfg.SimGalaxy != "" {
			if workerEnv, err = attachedGalaxyEnv(cfg.SimGalaxy); err != nil {
				return fmt.Errorf("serve: %w", err)
			}
		} else {
			g, err := startGalaxy(ctx, cfg, log)
			if err != nil {
				return fmt.Errorf("serve: %w", err)
			}
			cleanups = append(cleanups, g.Stop)
			workerEnv = g.Env()
		}
	}

	// Workers.
	tracker := newWorkerTracker(m)
	sup, err := supervisor.New(supervisor.Options{
		Executable:        exe,
		Args:              wargs,
		Env:               workerEnv,
		StartupTimeout:    cfg.StartupTimeout,
		HeartbeatInterval: cfg.HeartbeatInterval,
		HeartbeatGrace:    cfg.HeartbeatGrace,
		HeartbeatCeiling:  cfg.HeartbeatCeiling,
		ShutdownTimeout:   cfg.ShutdownTimeout,
		MaxFrameBytes:     cfg.MaxFrameBytes,
		EventBuffer:       cfg.EventBuffer,
		EventBufferBytes:  int64(cfg.EventBufferBytes),
		WorkerQueueEvents: cfg.WorkerEventQueue,
		WorkerQueueBytes:  int64(cfg.WorkerEventQueueBytes),
		Logger:            log,
	})
	if err != nil {
		return err
	}
	cleanups = append(cleanups, func() {
		// Last but the store: every session is closed by now; this reaps
		// what is left.
		if err := sup.Close(); err != nil {
			log.Warn("supervisor close", slog.Any(logging.KeyErr, err))
		}
		// Every worker is reaped, so every counted one is at its end:
		// the tracker reports the last of them.
		tracker.wait()
	})
	if err := sup.CleanupLeftovers(); err != nil {
		log.Warn("could not clean up after a previous run", slog.Any(logging.KeyErr, err))
	}

	spares, err := newSparePool(cfg, sup, log)
	if err != nil {
		return err
	}
	cleanups = append(cleanups, spares.Close)

	// The dashboard's live tail is fed by every session's events.
	var tap *ui.EventTap
	hooks := sessionHooks(m)
	if cfg.Dashboard == config.On {
		tap = ui.NewEventTap(0)
		hooks.EventPublished = tap.Publish
	}
	sessions, err := session.New(session.Options{
		Acquire:            acquireFrom(spares, tracker),
		Logger:             log,
		MaxSessions:        cfg.MaxSessions,
		MaxPendingCommands: cfg.MaxPendingCommands,
		CommandTimeout:     cfg.CommandTimeout,
		Lease:              cfg.Lease,
		DetachGrace:        cfg.DetachGrace,
		CloseTimeout:       cfg.ShutdownTimeout,
		MaxSubscribers:     cfg.MaxSubscribers,
		SubscriberQueue:    cfg.SubscriberQueue,
		SlowConsumerPolicy: session.SlowConsumerPolicy(cfg.SlowConsumerPolicy),
		ReplaySize:         cfg.ReplaySize,

		SubscriberQueueBytes:   int64(cfg.SubscriberQueueBytes),
		SubscriberStallTimeout: cfg.SubscriberStallTimeout,
		ReplayBytes:            int64(cfg.ReplayBytes),
		ReplayAge:              cfg.ReplayAge,
		Watchdog:               watchdogOptions(cfg),
		MaxSessionsPerKey:      sessionsPerKey(cfg, mode),
		Hooks:                  hooks,
		OnSecuredWriteRefused: func(ctx context.Context, r session.SecuredWriteRefusal) {
			guard.SecuredWriteRefused(ctx, r.SessionID, r.Command.Name(), r.Users())
		},
	})
	if err != nil {
		return err
	}
	m.SetQueueDepthFunc(sessions.QueuedEvents)
	m.SetDataHealthFunc(sessions.DataHealthCounts)
	m.SetSparesFunc(spares.Ready)

	gw, err := gateway.New(gateway.Options{
		Sessions:           sessions,
		Logger:             log,
		MaxMessageBytes:    cfg.MaxMessageBytes,
		UnaryInterceptors:  []grpc.UnaryServerInterceptor{guard.UnaryInterceptor(), gateway.LogUnary(log)},
		StreamInterceptors: []grpc.StreamServerInterceptor{guard.StreamInterceptor(), gateway.LogStream(log)},
		ServerOptions:      serverOpts,
		Identity:           principalKeyID,
		Access:             guard.CheckSession,
		Visible: func(ctx context.Context, owner string) bool {
			p, _ := auth.FromContext(ctx)
			return auth.CanAccessSession(p, owner)
		},
		Constraints: guard,
		Metrics:     m,

		StreamWriteTimeout: cfg.StreamWriteTimeout,
		Credentials:        guard,
		QuotaExempt: func(ctx context.Context) bool {
			p, _ := auth.FromContext(ctx)
			return p.IsAdmin()
		},
		// Bounds before authentication.
		MaxConcurrentStreams: uint32(cfg.MaxConcurrentStreams),
		MaxHeaderListBytes:   cfg.MaxHeaderListBytes,
		MaxHealthWatches:     cfg.MaxHealthWatches,
		MaxConnectionIdle:    cfg.MaxConnectionIdle,
	})
	if err != nil {
		sessions.Close()
		return err
	}
	gwClosed := false
	cleanups = append(cleanups, func() {
		if !gwClosed {
			gw.Close()
		}
	})
	admin := auth.NewAdminServer(mgr).WithStatus(gateway.Status(log))
	mxgatewayv1grpc.RegisterAdminServer(gw.GRPCServer(), admin)
	galaxyStore, stopBrowse, err := startBrowse(ctx, cfg, workerEnv, log)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	if stopBrowse != nil {
		cleanups = append(cleanups, stopBrowse)
	}
	galaxySvc := gateway.NewGalaxyService(galaxyStore, log).StopWith(gw.Stopping())
	mxgatewayv1grpc.RegisterGalaxyServer(gw.GRPCServer(), galaxySvc)
	alarmMon, stopAlarms, err := startAlarms(cfg, sessions, galaxyStore, log)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	cleanups = append(cleanups, stopAlarms)
	alarmsSvc := gateway.NewAlarmsService(alarmMon, log)
	mxgatewayv1grpc.RegisterAlarmsServer(gw.GRPCServer(), alarmsSvc)

	// Shared subscriptions on NATS (docs/nats.md), closed before the
	// sessions: its own session unadvises first.
	bus, err := startNATS(ctx, cfg, sessions, mgr, st, guard, mode, natsTLS, log)
	if err != nil {
		return fmt.Errorf("serve: NATS: %w", err)
	}
	if bus != nil {
		cleanups = append(cleanups, func() {
			cctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
			defer cancel()
			bus.Close(cctx)
		})
	}

	// Readiness: /readyz and the gRPC health status follow the same checks.
	setServing := func(ready bool) {
		st := healthpb.HealthCheckResponse_NOT_SERVING
		if ready {
			st = healthpb.HealthCheckResponse_SERVING
		}
		gw.Health().SetServingStatus("", st)
		gw.Health().SetServingStatus(mxgatewayv1grpc.Gateway_ServiceDesc.ServiceName, st)
	}
	var checks []opshttp.Check
	if mode == auth.ModeAPIKey {
		checks = append(checks, opshttp.Check{Name: "key_store", Func: st.Ping})
	}
	probe := &workerProbe{interval: workerProbeInterval, run: func(ctx context.Context) error {
		return probeWorker(ctx, sup)
	}}
	checks = append(checks,
		opshttp.Check{Name: "worker_executable", Func: func(context.Context) error {
			return config.CheckWorkerExecutable(exe, cfg.WorkerBackend)
		}},
		opshttp.Check{Name: "worker_start", Func: probe.check},
	)
	if watchdogReference(cfg) != "" {
		checks = append(checks, dataHealthCheck(sessions))
	}
	// The dashboard (docs/dashboard.md): under /ui/ of http_listen, or on
	// its own listener.
	var ops *opshttp.Server
	var dash *ui.Server
	var dashUI http.Handler
	var dashLn *dashboardListener
	if cfg.Dashboard == config.On {
		dash, err = ui.New(ui.Options{
			Mode: mode, Keys: mgr, Admin: admin, Galaxy: galaxySvc, Alarms: dashboardAlarms(cfg, alarmsSvc), Sessions: sessions,
			Workers: dashboardWorkers{t: tracker, spares: spares.Ready}, Events: tap,
			Health: dashboardHealth(&ops), NATS: dashboardNATS(cfg, bus), Gatherer: reg, Version: buildinfo.Get().String(), Started: started,
			SessionIdle: cfg.DashboardSessionIdle, SessionMax: cfg.DashboardSessionMax, MaxLogins: cfg.DashboardMaxLogins,
			Logger: log,
		})
		if err != nil {
			return err
		}
		cleanups = append(cleanups, dash.Close)
		if cfg.DashboardOnHTTP() {
			dashUI = dash.Handler()
		}
		if dashLn, err = listenDashboard(cfg, dash.Handler(), m, log); err != nil {
			return err
		}
		if dashLn != nil {
			cleanups = append(cleanups, func() { dashLn.srv.Close() })
		}
	}
	ops, err = opshttp.New(opshttp.Options{
		Addr:          cfg.HTTPListen,
		Listener:      httpLis,
		Gatherer:      reg,
		Checks:        followChecks(checks, setServing),
		OnReadyChange: setServing,
		Logger:        log,
		UI:            dashUI,
	})
	if err != nil {
		return err
	}
	cleanups = append(cleanups, func() { ops.Close() })

	// First run: an admin key, shown once, after the start-up logs (the
	// readiness probe's worker) so that it is the last thing on the screen.
	// The file exists before the addresses are printed.
	var banner func()
	if mode == auth.ModeAPIKey {
		raw, created, err := auth.EnsureBootstrapKey(ctx, mgr, cfg.DataDir)
		path := auth.AdminKeyPath(cfg.DataDir)
		switch {
		case err != nil && created:
			// The screen is the only copy: show it even to a journal.
			log.Warn("first-run admin key not saved to a file", slog.Any(logging.KeyErr, err))
			banner = func() {
				printBootstrapKey(stderr, raw.Reveal(), path, false, true)
				fmt.Fprintf(stderr, "mxgateway: warning: %v\n", err)
			}
		case err != nil:
			return fmt.Errorf("serve: first-run admin key: %w", err)
		case created:
			// A service's or a journal's stderr is kept: the key goes only
			// to its file there, and only a person at a terminal sees it.
			show := isTerminal(stderr)
			banner = func() { printBootstrapKey(stderr, raw.Reveal(), path, true, show) }
		default:
			banner = func() { printAdminKeyHint(stderr, path) }
		}
	} else {
		warnNoAuth(log)
	}

	// One worker start before listening: the first readiness round then
	// answers from the cache, so no probe worker runs beside the first
	// clients' workers, and a broken worker set-up shows at once.
	pctx, cancelProbe := context.WithTimeout(ctx, cfg.StartupTimeout)
	err = probe.check(pctx)
	cancelProbe()
	if err != nil {
		log.Warn("a test worker could not be started; the gateway is not ready until one can",
			slog.String(logging.KeyCheck, "worker_start"), slog.Any(logging.KeyErr, err))
	}

	if err := ops.Listen(); err != nil {
		return fmt.Errorf("serve: HTTP listener: %w", err)
	}
	if bus != nil && bus.Addr() != "" {
		log.Info("NATS listening", slog.String(logging.KeyAddr, bus.Addr()))
		fmt.Fprintf(stdout, "mxgateway: NATS listening on %s\n", bus.Addr())
	}
	if bus != nil && bus.LeafAddr() != "" {
		log.Info("NATS leaf nodes listening", slog.String(logging.KeyAddr, bus.LeafAddr()))
		fmt.Fprintf(stdout, "mxgateway: NATS leaf nodes listening on %s\n", bus.LeafAddr())
	}
	for _, l := range []struct{ what, addr string }{{"gRPC", grpcLis.Addr().String()}, {"HTTP", ops.Addr().String()}} {
		log.Info(l.what+" listening", slog.String(logging.KeyAddr, l.addr))
		fmt.Fprintf(stdout, "mxgateway: %s listening on %s\n", l.what, l.addr)
	}
	switch {
	case dashLn != nil:
		printDashboard(stdout, log, dashLn.url)
	case dashUI != nil:
		printDashboard(stdout, log, "http://"+ops.Addr().String()+ui.Prefix)
	case cfg.Dashboard == config.On:
		log.Warn("the dashboard is not served: http_listen is not a loopback address; set dashboard_listen (with dashboard_tls) to serve it (docs/dashboard.md)")
	}
	if caFile != "" {
		log.Info("TLS certificate for clients to pin", slog.String("ca_file", caFile))
		fmt.Fprintf(stdout, "mxgateway: TLS CA file %s (clients: MXGATEWAY_CA_FILE=%s)\n", caFile, caFile)
	}
	if banner != nil {
		banner()
	}
	served = true

	// Background work, each goroutine owned and waited for here.
	bgCtx, stopBG := context.WithCancel(context.Background())
	var bg sync.WaitGroup
	errc := make(chan error, 3)
	var srv sync.WaitGroup
	srv.Go(func() {
		if err := gw.Serve(grpcLis); !errors.Is(err, gateway.ErrServerClosed) {
			errc <- err
		}
	})
	opsCtx, stopOps := context.WithCancel(context.Background())
	srv.Go(func() {
		err := ops.Serve(opsCtx)
		if err != nil && !errors.Is(err, opshttp.ErrServerClosed) && !errors.Is(err, context.Canceled) {
			errc <- err
		}
	})
	if dashLn != nil {
		srv.Go(func() {
			if err := dashLn.serve(); err != nil {
				errc <- err
			}
		})
	}
	bg.Go(func() { _ = st.RunLastUsedFlusher(bgCtx, 0) })
	if bus != nil && galaxyStore != nil {
		bg.Go(func() { publishDeploys(bgCtx, galaxyStore, bus, log) })
	}
	if bus != nil && alarmMon != nil {
		bg.Go(func() { bus.PublishAlarms(bgCtx, alarmFeeds(alarmMon)) })
	}
	if mode == auth.ModeNone {
		bg.Go(func() {
			t := time.NewTicker(noAuthWarnInterval)
			defer t.Stop()
			for {
				select {
				case <-bgCtx.Done():
					return
				case <-t.C:
					warnNoAuth(log)
				}
			}
		})
	}

	select {
	case <-ctx.Done():
		log.Info("stop requested, shutting down", slog.Duration("grace", cfg.ShutdownGrace))
	case retErr = <-errc:
	}

	// Shutdown: not ready → gRPC (health NOT_SERVING, no new sessions,
	// streams end, drain, sessions close) → HTTP → background → supervisor
	// → key store (deferred cleanups).
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
	defer cancel()
	ops.SetDraining()
	if dash != nil {
		// Live streams end and watch sessions close before the listeners
		// wait for requests in flight.
		dash.Close()
	}
	if dashLn != nil {
		dashLn.shutdown(sctx)
	}
	if bus != nil {
		bus.Close(sctx)
	}
	stopAlarms() // ends the alarm feeds and the monitor's session first
	if err := gw.Shutdown(sctx); err != nil {
		log.Warn("shutdown deadline passed", slog.Any(logging.KeyErr, err))
	}
	gwClosed = true
	stopOps() // ends the readiness refresh (and a probe in flight) at once
	if err := ops.Shutdown(sctx); err != nil {
		ops.Close()
	}
	srv.Wait()
	stopBG()
	bg.Wait()
	log.Info("stopped")
	return retErr
}

// sessionsPerKey is the per-key session cap: max_sessions_per_key (never
// above max_sessions) with API keys; none with auth=none, whose one
// anonymous caller has every session anyway.
func sessionsPerKey(cfg *config.Config, mode auth.Mode) int {
	if mode == auth.ModeNone {
		return 0
	}
	return min(cfg.MaxSessionsPerKey, cfg.MaxSessions)
}

// principalKeyID is the key id of the caller ("anonymous" with auth=none),
// recorded as the owner of the sessions it opens.
func principalKeyID(ctx context.Context) string {
	if p, ok := auth.FromContext(ctx); ok {
		return p.KeyID
	}
	return ""
}

// isTerminal reports whether w is a terminal (a person reads it, nothing
// keeps it).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// printBootstrapKey shows the first-run admin key once, with what to do
// next; show false (standard error is not a terminal) names only the file
// that holds it.
func printBootstrapKey(w io.Writer, key, path string, saved, show bool) {
	fmt.Fprintln(w, "mxgateway: ================================================================")
	if saved && !show {
		fmt.Fprintln(w, "mxgateway: first run: created an admin API key. Standard error is not a")
		fmt.Fprintf(w, "mxgateway: terminal, so it is not shown here: it is in %s\n", path)
		fmt.Fprintln(w, "mxgateway: (readable by this user only); mxctl on this machine uses it. Clients send it as")
		fmt.Fprintln(w, "mxgateway: gRPC metadata \"authorization: Bearer <key>\". Create narrower keys")
		fmt.Fprintln(w, "mxgateway: (mxgateway apikey create --name N --scopes ...), then revoke this one.")
		fmt.Fprintln(w, "mxgateway: ================================================================")
		return
	}
	fmt.Fprintln(w, "mxgateway: first run: created an admin API key (shown only this once):")
	fmt.Fprintln(w, "mxgateway:")
	fmt.Fprintf(w, "mxgateway:   %s\n", key)
	fmt.Fprintln(w, "mxgateway:")
	if saved {
		fmt.Fprintf(w, "mxgateway: saved to %s (readable by this user only);\n", path)
		fmt.Fprintln(w, "mxgateway: mxctl on this machine uses it automatically. Clients send it as")
	} else {
		fmt.Fprintln(w, "mxgateway: it could not be saved to a file: copy it now. Clients send it as")
	}
	fmt.Fprintln(w, "mxgateway: gRPC metadata \"authorization: Bearer <key>\". Create narrower keys")
	fmt.Fprintln(w, "mxgateway: (mxgateway apikey create --name N --scopes ...), then revoke this one.")
	fmt.Fprintln(w, "mxgateway: ================================================================")
}

// printAdminKeyHint says, on every run after the first, where the first-run
// admin key is (or that it is gone).
func printAdminKeyHint(w io.Writer, path string) {
	if _, err := os.Stat(path); err == nil {
		fmt.Fprintf(w, "mxgateway: the first-run admin key is in %s (mxctl on this machine uses it)\n", path)
		return
	}
	fmt.Fprintf(w, "mxgateway: no admin key file (%s is gone): use a key you created, or create one with \"mxgateway apikey create --name N --scopes admin\" (docs/security.md)\n", path)
}

func warnNoAuth(log *slog.Logger) {
	log.Warn("authentication is OFF (auth=none): every local user and process can open sessions, write values and manage API keys; use it for development only")
}

// sessionHooks feeds the session manager's callbacks into the metrics.
func sessionHooks(m *metrics.Metrics) session.Hooks {
	return session.Hooks{
		SessionOpened: func(string) { m.SessionOpened() },
		SessionClosed: func(string, mxgatewayv1.SessionState, string) { m.SessionClosed() },
		SessionFaulted: func(_ string, _ string, cause error) {
			m.Fault(gateway.ReasonOf(cause))
			if errors.Is(cause, workerclient.ErrHeartbeatExpired) {
				m.HeartbeatFailure()
			}
		},
		CommandStarted: m.CommandStarted,
		CommandDone: func(kind *catalog.Kind, d time.Duration, reply *mxgatewayv1.Reply, err error) {
			failed := reply.GetStatus() == mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_MXACCESS_FAILURE
			m.CommandDone(kind, metrics.Outcome(err, failed), d)
		},
		EventReceived:     func(f mxgatewayv1.EventFamily) { m.EventsReceived(f, 1) },
		SlowConsumer:      func(p session.SlowConsumerPolicy) { m.QueueOverflow(string(p)) },
		DataHealthChanged: func(_ string, _, to mxgatewayv1.DataHealth) { m.DataHealthChanged(to) },
	}
}
