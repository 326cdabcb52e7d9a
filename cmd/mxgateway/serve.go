package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mxgateway/mxgateway/internal/gateway"
	"github.com/mxgateway/mxgateway/internal/logging"
	"github.com/mxgateway/mxgateway/internal/protocol"
	"github.com/mxgateway/mxgateway/internal/session"
	"github.com/mxgateway/mxgateway/internal/supervisor"
)

// serveConfig is the configuration of `mxgateway serve`, from flags for now
// (a typed config with environment and file support replaces it later; the
// flag names stay).
type serveConfig struct {
	Listen             string
	HTTPListen         string
	DataDir            string
	WorkerExe          string
	WorkerBackend      string
	SimModel           string
	SimProfile         string
	StartupTimeout     time.Duration
	HeartbeatInterval  time.Duration
	HeartbeatGrace     time.Duration
	HeartbeatCeiling   time.Duration
	ShutdownTimeout    time.Duration
	CommandTimeout     time.Duration
	MaxSessions        int
	MaxPendingCommands int
	MaxSubscribers     int
	SubscriberQueue    int
	SlowConsumerPolicy string
	ReplaySize         int
	ReplayAge          time.Duration
	Lease              time.Duration
	DetachGrace        time.Duration
	MaxMessageBytes    int
	ShutdownGrace      time.Duration
	LogLevel           string
	LogFormat          string
}

// parseServeFlags parses and validates the flags of `mxgateway serve`,
// reporting every problem at once.
func parseServeFlags(args []string, out io.Writer) (serveConfig, error) {
	var c serveConfig
	fs := flag.NewFlagSet("mxgateway serve", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&c.Listen, "listen", "127.0.0.1:5000", "gRPC listen address (loopback only until authentication is configured)")
	fs.StringVar(&c.HTTPListen, "http-listen", "127.0.0.1:5001", "HTTP listen address for /healthz (loopback only)")
	fs.StringVar(&c.DataDir, "data-dir", "", "data directory for persistent state (default: %ProgramData%\\mxgateway on Windows, $XDG_STATE_HOME/mxgateway or ~/.local/state/mxgateway elsewhere)")
	fs.StringVar(&c.WorkerExe, "worker-exe", "", "worker executable (default: this binary, re-executed as `mxgateway worker`)")
	fs.StringVar(&c.WorkerBackend, "worker-backend", "sim", "worker backend: sim or mxaccess")
	fs.StringVar(&c.SimModel, "sim-model", "", "simulator Galaxy model file (default: the built-in demo Galaxy)")
	fs.StringVar(&c.SimProfile, "sim-profile", "default", "simulator timing profile: default or test")
	fs.DurationVar(&c.StartupTimeout, "startup-timeout", protocol.DefaultStartupTimeout, "how long a worker may take to become ready")
	fs.DurationVar(&c.HeartbeatInterval, "heartbeat-interval", protocol.DefaultHeartbeatInterval, "worker heartbeat interval")
	fs.DurationVar(&c.HeartbeatGrace, "heartbeat-grace", protocol.DefaultHeartbeatGrace, "silence after which a worker is faulted")
	fs.DurationVar(&c.HeartbeatCeiling, "heartbeat-ceiling", protocol.DefaultHeartbeatCeiling, "longest silence tolerated while a command runs")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", protocol.DefaultShutdownTimeout, "graceful worker shutdown deadline before a kill")
	fs.DurationVar(&c.CommandTimeout, "command-timeout", session.DefaultCommandTimeout, "default per-command timeout")
	fs.IntVar(&c.MaxSessions, "max-sessions", session.DefaultMaxSessions, "maximum open sessions")
	fs.IntVar(&c.MaxPendingCommands, "max-pending-commands", session.DefaultMaxPendingCommands, "maximum in-flight commands per session")
	fs.IntVar(&c.MaxSubscribers, "max-subscribers", session.DefaultMaxSubscribers, "maximum event subscribers per session")
	fs.IntVar(&c.SubscriberQueue, "subscriber-queue", session.DefaultSubscriberQueue, "events queued per subscriber before the slow-consumer policy applies")
	fs.StringVar(&c.SlowConsumerPolicy, "slow-consumer-policy", string(session.DefaultSlowConsumerPolicy), "disconnect-subscriber or fault-session")
	fs.IntVar(&c.ReplaySize, "replay-size", session.DefaultReplaySize, "events kept per session for resume")
	fs.DurationVar(&c.ReplayAge, "replay-age", session.DefaultReplayAge, "how long the replay ring keeps an event")
	fs.DurationVar(&c.Lease, "lease", session.DefaultLease, "session lease, renewed by every call and kept alive by an attached stream")
	fs.DurationVar(&c.DetachGrace, "detach-grace", session.DefaultDetachGrace, "how long a session outlives its last subscriber")
	fs.IntVar(&c.MaxMessageBytes, "max-message-bytes", gateway.DefaultMaxMessageBytes, "largest gRPC message and worker frame, in bytes")
	fs.DurationVar(&c.ShutdownGrace, "shutdown-grace", 30*time.Second, "how long a gateway shutdown may take before everything is stopped hard")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", "text", "log format on stderr: text or json")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	var errs []error
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("serve: unexpected arguments: %s", strings.Join(fs.Args(), " ")))
	}
	errs = append(errs, checkLoopback("--listen", c.Listen), checkLoopback("--http-listen", c.HTTPListen))
	if c.WorkerBackend != "sim" && c.WorkerBackend != "mxaccess" {
		errs = append(errs, fmt.Errorf("serve: --worker-backend must be sim or mxaccess (got %q)", c.WorkerBackend))
	}
	if c.SimProfile != "default" && c.SimProfile != "test" {
		errs = append(errs, fmt.Errorf("serve: --sim-profile must be default or test (got %q)", c.SimProfile))
	}
	if _, err := session.ParseSlowConsumerPolicy(c.SlowConsumerPolicy); err != nil {
		errs = append(errs, fmt.Errorf("serve: --slow-consumer-policy: %w", err))
	}
	positive := []struct {
		name string
		v    time.Duration
	}{
		{"--startup-timeout", c.StartupTimeout}, {"--heartbeat-interval", c.HeartbeatInterval},
		{"--heartbeat-grace", c.HeartbeatGrace}, {"--heartbeat-ceiling", c.HeartbeatCeiling},
		{"--shutdown-timeout", c.ShutdownTimeout}, {"--command-timeout", c.CommandTimeout},
		{"--replay-age", c.ReplayAge}, {"--lease", c.Lease}, {"--detach-grace", c.DetachGrace},
		{"--shutdown-grace", c.ShutdownGrace},
	}
	for _, p := range positive {
		if p.v <= 0 {
			errs = append(errs, fmt.Errorf("serve: %s must be positive (got %v)", p.name, p.v))
		}
	}
	if c.HeartbeatGrace <= c.HeartbeatInterval {
		errs = append(errs, fmt.Errorf("serve: --heartbeat-grace (%v) must exceed --heartbeat-interval (%v)", c.HeartbeatGrace, c.HeartbeatInterval))
	}
	if c.HeartbeatCeiling < c.HeartbeatGrace {
		errs = append(errs, fmt.Errorf("serve: --heartbeat-ceiling (%v) must not be below --heartbeat-grace (%v)", c.HeartbeatCeiling, c.HeartbeatGrace))
	}
	counts := []struct {
		name string
		v    int
	}{
		{"--max-sessions", c.MaxSessions}, {"--max-pending-commands", c.MaxPendingCommands},
		{"--max-subscribers", c.MaxSubscribers}, {"--subscriber-queue", c.SubscriberQueue},
		{"--replay-size", c.ReplaySize}, {"--max-message-bytes", c.MaxMessageBytes},
	}
	for _, p := range counts {
		if p.v <= 0 {
			errs = append(errs, fmt.Errorf("serve: %s must be positive (got %d)", p.name, p.v))
		}
	}
	if _, err := logging.ParseLevel(c.LogLevel); err != nil {
		errs = append(errs, fmt.Errorf("serve: --log-level: %w", err))
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("serve: --log-format must be text or json (got %q)", c.LogFormat))
	}
	if c.DataDir == "" {
		c.DataDir = defaultDataDir()
		if c.DataDir == "" {
			errs = append(errs, errors.New("serve: --data-dir is required (no default: neither XDG_STATE_HOME nor HOME is set)"))
		}
	}
	return c, errors.Join(errs...)
}

// defaultDataDir is the per-OS default data directory (as in
// docs/configuration.md), or "" when there is none.
func defaultDataDir() string {
	switch runtime.GOOS {
	case "windows":
		if pd := os.Getenv("ProgramData"); pd != "" {
			return filepath.Join(pd, "mxgateway")
		}
		return `C:\ProgramData\mxgateway`
	case "darwin":
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, "Library", "Application Support", "mxgateway")
		}
		return ""
	}
	if st := os.Getenv("XDG_STATE_HOME"); st != "" {
		return filepath.Join(st, "mxgateway")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "state", "mxgateway")
	}
	return ""
}

// checkLoopback refuses addresses other hosts can reach: authentication
// does not exist yet.
func checkLoopback(name, addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("serve: %s %q: %w", name, addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("serve: %s %q is not a loopback address; without authentication the gateway listens on loopback only", name, addr)
}

// workerCommand returns the worker executable and its arguments (the
// supervisor adds --session-id, --endpoint and --protocol-version).
func workerCommand(c serveConfig) (string, []string, error) {
	var args []string
	exe := c.WorkerExe
	if exe == "" {
		self, err := os.Executable()
		if err != nil {
			return "", nil, fmt.Errorf("serve: find own executable: %w", err)
		}
		exe, args = self, []string{"worker"}
	}
	args = append(args, "--backend="+c.WorkerBackend, "--log-level="+c.LogLevel)
	if c.WorkerBackend == "sim" {
		args = append(args, "--sim-profile="+c.SimProfile)
		if c.SimModel != "" {
			model, err := filepath.Abs(c.SimModel)
			if err != nil {
				return "", nil, fmt.Errorf("serve: --sim-model: %w", err)
			}
			args = append(args, "--sim-model="+model)
		}
	}
	return exe, args, nil
}

func runServe(args []string) int {
	cfg, err := parseServeFlags(args, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	log, err := logging.New(os.Stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, cfg, log, os.Stdout); err != nil {
		log.Error("gateway stopped", slog.Any(logging.KeyErr, err))
		return 1
	}
	return 0
}

// serve runs the gateway until ctx ends, then shuts it down in order.
func serve(ctx context.Context, cfg serveConfig, log *slog.Logger, stdout io.Writer) error {
	exe, wargs, err := workerCommand(cfg)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("serve: create data directory: %w", err)
	}
	// Worker endpoints live in the supervisor's default runtime directory
	// under os.TempDir() ($TMPDIR): Unix socket paths must stay short and
	// must not sit on a network home directory.
	sup, err := supervisor.New(supervisor.Options{
		Executable:        exe,
		Args:              wargs,
		StartupTimeout:    cfg.StartupTimeout,
		HeartbeatInterval: cfg.HeartbeatInterval,
		HeartbeatGrace:    cfg.HeartbeatGrace,
		HeartbeatCeiling:  cfg.HeartbeatCeiling,
		ShutdownTimeout:   cfg.ShutdownTimeout,
		MaxFrameBytes:     cfg.MaxMessageBytes,
		Logger:            log,
	})
	if err != nil {
		return err
	}
	defer func() {
		// Last: every session is closed by now; this reaps what is left.
		if err := sup.Close(); err != nil {
			log.Warn("supervisor close", slog.Any(logging.KeyErr, err))
		}
	}()
	if err := sup.CleanupLeftovers(); err != nil {
		log.Warn("could not clean up after a previous run", slog.Any(logging.KeyErr, err))
	}
	policy, _ := session.ParseSlowConsumerPolicy(cfg.SlowConsumerPolicy)
	sessions, err := session.New(session.Options{
		Launch: func(ctx context.Context, id string) (session.Worker, error) {
			c, err := sup.Launch(ctx, id)
			if err != nil {
				return nil, err // never a typed nil in the interface
			}
			return c, nil
		},
		Logger:             log,
		MaxSessions:        cfg.MaxSessions,
		MaxPendingCommands: cfg.MaxPendingCommands,
		CommandTimeout:     cfg.CommandTimeout,
		Lease:              cfg.Lease,
		DetachGrace:        cfg.DetachGrace,
		CloseTimeout:       cfg.ShutdownTimeout,
		MaxSubscribers:     cfg.MaxSubscribers,
		SubscriberQueue:    cfg.SubscriberQueue,
		SlowConsumerPolicy: policy,
		ReplaySize:         cfg.ReplaySize,
		ReplayAge:          cfg.ReplayAge,
	})
	if err != nil {
		return err
	}
	gw, err := gateway.New(gateway.Options{
		Sessions:        sessions,
		Logger:          log,
		MaxMessageBytes: cfg.MaxMessageBytes,
	})
	if err != nil {
		sessions.Close()
		return err
	}

	grpcLis, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		gw.Close()
		return fmt.Errorf("serve: gRPC listener: %w", err)
	}
	httpLis, err := net.Listen("tcp", cfg.HTTPListen)
	if err != nil {
		grpcLis.Close()
		gw.Close()
		return fmt.Errorf("serve: HTTP listener: %w", err)
	}
	httpSrv := &http.Server{Handler: opsMux(), ReadHeaderTimeout: 10 * time.Second}

	for _, l := range []struct{ what, addr string }{{"gRPC", grpcLis.Addr().String()}, {"HTTP", httpLis.Addr().String()}} {
		log.Info(l.what+" listening", slog.String(logging.KeyAddr, l.addr))
		fmt.Fprintf(stdout, "mxgateway: %s listening on %s\n", l.what, l.addr)
	}

	errc := make(chan error, 2)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := gw.Serve(grpcLis); !errors.Is(err, gateway.ErrServerClosed) {
			errc <- err
		}
	})
	wg.Go(func() {
		if err := httpSrv.Serve(httpLis); !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("serve: HTTP: %w", err)
		}
	})

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("signal received, shutting down", slog.Duration("grace", cfg.ShutdownGrace))
	case runErr = <-errc:
	}

	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
	defer cancel()
	if err := gw.Shutdown(sctx); err != nil {
		log.Warn("shutdown deadline passed", slog.Any(logging.KeyErr, err))
	}
	if err := httpSrv.Shutdown(sctx); err != nil {
		httpSrv.Close()
	}
	wg.Wait()
	log.Info("stopped")
	return runErr
}

// opsMux serves the HTTP side: /healthz (alive) for now.
func opsMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	return mux
}
