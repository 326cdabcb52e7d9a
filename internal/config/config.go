package config

import (
	"log/slog"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/mxgateway/mxgateway/internal/protocol"
	"github.com/mxgateway/mxgateway/internal/session"
)

// AuthMode says how clients authenticate.
type AuthMode string

// Authentication modes.
const (
	AuthAPIKey AuthMode = "apikey" // API keys from the key store (default)
	AuthNone   AuthMode = "none"   // no authentication; loopback listeners only
)

// TLSMode says where the gRPC listener's certificate comes from.
type TLSMode string

// OnOff is a switch key's value.
type OnOff string

// The values of a switch key.
const (
	On  OnOff = "on"
	Off OnOff = "off"
)

// DashboardOnHTTP reports whether the dashboard is served under /ui/ of
// http_listen: it is on, has no listener of its own, and http_listen is
// a loopback address (API keys typed into the login form must not cross
// a network in the clear; /metrics on a plant address stays scrape-only).
func (c *Config) DashboardOnHTTP() bool {
	return c.Dashboard == On && c.DashboardListen == "" && IsLoopbackAddr(c.HTTPListen)
}

// TLS modes.
const (
	TLSOff        TLSMode = "off"         // plaintext h2c (default)
	TLSFiles      TLSMode = "files"       // tls_cert and tls_key
	TLSSelfSigned TLSMode = "self-signed" // generated once and kept in data_dir
)

// Backend names the worker backend sessions run on.
type Backend string

// Worker backends.
const (
	BackendSim      Backend = "sim"      // the Galaxy simulator (every OS; default)
	BackendMXAccess Backend = "mxaccess" // real MXAccess COM (mxworker.exe, windows/386)
)

// SlowConsumerPolicy says what happens when a subscriber's queue is full.
type SlowConsumerPolicy string

// Slow-consumer policies.
const (
	// PolicyFaultSession faults the whole session (default, parity-safe).
	PolicyFaultSession SlowConsumerPolicy = "fault-session"
	// PolicyDisconnectSubscriber ends the slow subscriber's stream; it may
	// resume from the replay ring.
	PolicyDisconnectSubscriber SlowConsumerPolicy = "disconnect-subscriber"
)

// SpareWorkersAuto is the default of spare_workers: DefaultSimSpareWorkers
// with the simulator, none with mxaccess (each spare would hold an idle
// MXAccess connection).
const SpareWorkersAuto = -1

// DefaultSimSpareWorkers is the number of spare workers the simulator
// backend keeps by default.
const DefaultSimSpareWorkers = 2

// EffectiveSpareWorkers resolves spare_workers for the backend.
func (c *Config) EffectiveSpareWorkers() int {
	if c.SpareWorkers != SpareWorkersAuto {
		return c.SpareWorkers
	}
	if c.WorkerBackend == BackendSim {
		return DefaultSimSpareWorkers
	}
	return 0
}

// Special values of data_watchdog_reference.
const (
	// WatchdogAuto watches the demo Galaxy's clock when the simulator runs
	// its built-in model, and nothing otherwise.
	WatchdogAuto = "auto"
	// WatchdogOff runs no data watchdog.
	WatchdogOff = "off"
)

// Log formats.
const (
	LogFormatText = "text"
	LogFormatJSON = "json"
)

// Config is the gateway's whole configuration. Default returns the working
// configuration every field comment describes: loopback listeners, API-key
// authentication, no TLS and the simulator backend. Load layers a config
// file, the environment and flags on top; Validate checks it.
type Config struct {
	// Listen is the gRPC listen address. Default 127.0.0.1:5000; MXGATEWAY_LISTEN.
	Listen string
	// HTTPListen is the metrics and health listen address. Default
	// 127.0.0.1:5001; MXGATEWAY_HTTP_LISTEN.
	HTTPListen string
	// DataDir holds the key store, pepper, self-signed certificate and the
	// first-run admin key. Default per OS (see DefaultDataDir); MXGATEWAY_DATA_DIR.
	DataDir string

	// LogLevel is debug, info, warn or error. Default info; MXGATEWAY_LOG_LEVEL.
	LogLevel string
	// LogFormat is text or json. Default text; MXGATEWAY_LOG_FORMAT.
	LogFormat string
	// LogFile, when set, receives the log instead of stderr (a Windows
	// service has no stderr). Default empty; MXGATEWAY_LOG_FILE.
	LogFile string

	// Auth is apikey or none. Default apikey; MXGATEWAY_AUTH.
	Auth AuthMode
	// PepperFile is the path of the API-key pepper. Default empty, meaning
	// <data_dir>/pepper (see PepperPath); MXGATEWAY_PEPPER_FILE.
	PepperFile string

	// TLS is off, files or self-signed. Default off; MXGATEWAY_TLS.
	TLS TLSMode
	// TLSCert is the PEM certificate chain path (tls=files); MXGATEWAY_TLS_CERT.
	TLSCert string
	// TLSKey is the PEM private key path (tls=files); MXGATEWAY_TLS_KEY.
	TLSKey string
	// TLSExtraNames are extra DNS names or IPs for the self-signed
	// certificate. Default none; MXGATEWAY_TLS_EXTRA_NAMES (comma-separated).
	TLSExtraNames []string

	// Dashboard turns the web dashboard (docs/dashboard.md) on or off.
	// Default on; MXGATEWAY_DASHBOARD.
	Dashboard OnOff
	// DashboardListen, when set, serves the dashboard on its own listener
	// instead of under /ui/ of http_listen. Default empty;
	// MXGATEWAY_DASHBOARD_LISTEN.
	DashboardListen string
	// DashboardTLS is off, files (tls_cert, tls_key) or self-signed for
	// dashboard_listen. Default off; MXGATEWAY_DASHBOARD_TLS.
	DashboardTLS TLSMode
	// DashboardSessionIdle ends a dashboard login unused this long.
	// Default 30m; MXGATEWAY_DASHBOARD_SESSION_IDLE.
	DashboardSessionIdle time.Duration
	// DashboardSessionMax ends a dashboard login this long after it began.
	// Default 12h; MXGATEWAY_DASHBOARD_SESSION_MAX.
	DashboardSessionMax time.Duration
	// DashboardMaxLogins bounds the dashboard's logins held at once.
	// Default 64; MXGATEWAY_DASHBOARD_MAX_LOGINS.
	DashboardMaxLogins int

	// WorkerBackend is sim or mxaccess. Default sim; MXGATEWAY_WORKER_BACKEND.
	WorkerBackend Backend
	// WorkerExe is the worker executable. Default empty (sim only): mxworker
	// beside the gateway, else the gateway re-executes itself as `mxgateway
	// worker` (docs/worker.md); MXGATEWAY_WORKER_EXE.
	WorkerExe string
	// MXAccessProgID is the COM ProgID the mxaccess worker creates. Default
	// LMXProxy.LMXProxyServer; MXGATEWAY_MXACCESS_PROG_ID.
	MXAccessProgID string
	// SimModel is a Galaxy model file for the simulator. Default empty: the
	// built-in demo Galaxy; MXGATEWAY_SIM_MODEL.
	SimModel string
	// SimProfile is the simulator behaviour profile, default or test.
	// Default default; MXGATEWAY_SIM_PROFILE.
	SimProfile string
	// WorkerMaxProcs is the GOMAXPROCS of every worker process. Default 0:
	// the worker's own choice (worker.DefaultMaxProcs: two at most, or Go's
	// default for the mxaccess backend); MXGATEWAY_WORKER_MAX_PROCS.
	WorkerMaxProcs int
	// SimGalaxy is the directory of an external simulated Galaxy runtime
	// (mxgateway galaxy --listen DIR) the sim workers attach to, so that
	// gateways share one Galaxy. Default empty: the gateway starts and
	// supervises its own runtime; MXGATEWAY_SIM_GALAXY.
	SimGalaxy string
	// SimPlant, when > 0, makes the gateway's own runtime serve the
	// generated plant of that many areas instead of sim_model. Default 0;
	// MXGATEWAY_SIM_PLANT.
	SimPlant int
	// Alarms runs the gateway's alarm monitor (docs/alarms.md): one
	// gateway-internal session watching every alarm of the Galaxy model.
	// Default "on"; MXGATEWAY_ALARMS.
	Alarms string
	// AlarmProvider chooses the alarm monitor's providers (AlarmProvider*
	// constants). Default "auto"; MXGATEWAY_ALARM_PROVIDER.
	AlarmProvider string

	// GalaxyRepository is the connection string of the Galaxy Repository
	// database browse reads (go-mssqldb syntax: Windows integrated login
	// "server=localhost;database=ZB;Integrated Security=true", or SQL
	// login with user id and password). Default empty: browse serves the
	// simulated Galaxy with the sim backend, nothing otherwise;
	// MXGATEWAY_GALAXY_REPOSITORY. Secret: config print masks it.
	GalaxyRepository string
	// GalaxyPoll is the period of the deploy probe of the Galaxy
	// Repository. Default 30s; MXGATEWAY_GALAXY_POLL.
	GalaxyPoll time.Duration
	// GalaxySnapshot keeps the last model read from the Galaxy Repository
	// in <data_dir>/galaxy-snapshot.json, served (stale) by a gateway that
	// starts while the database is unreachable. Default on;
	// MXGATEWAY_GALAXY_SNAPSHOT.
	GalaxySnapshot string

	// StartupTimeout bounds worker launch and handshake. Default 15s;
	// MXGATEWAY_STARTUP_TIMEOUT.
	StartupTimeout time.Duration
	// HeartbeatInterval is how often workers send heartbeats. Default 5s;
	// MXGATEWAY_HEARTBEAT_INTERVAL.
	HeartbeatInterval time.Duration
	// HeartbeatGrace is how long a silent idle worker lives before it is
	// faulted. Default 15s; MXGATEWAY_HEARTBEAT_GRACE.
	HeartbeatGrace time.Duration
	// HeartbeatCeiling bounds how long a running command may keep a silent
	// worker alive. Default 75s; MXGATEWAY_HEARTBEAT_CEILING.
	HeartbeatCeiling time.Duration
	// ShutdownTimeout is how long a worker gets to shut down before it is
	// killed. Default 10s; MXGATEWAY_SHUTDOWN_TIMEOUT.
	ShutdownTimeout time.Duration
	// CommandTimeout bounds one command's round trip when the client set no
	// deadline. Default 30s; MXGATEWAY_COMMAND_TIMEOUT.
	CommandTimeout time.Duration

	// MaxSessions caps open sessions (one worker each). Default 64;
	// MXGATEWAY_MAX_SESSIONS.
	MaxSessions int
	// MaxPendingCommands caps in-flight commands per session. Default 256;
	// MXGATEWAY_MAX_PENDING_COMMANDS.
	MaxPendingCommands int
	// MaxSubscribers caps event streams per session. Default 8;
	// MXGATEWAY_MAX_SUBSCRIBERS.
	MaxSubscribers int
	// SubscriberQueue is each subscriber's queue length in events. Default
	// 10000; MXGATEWAY_SUBSCRIBER_QUEUE.
	SubscriberQueue int
	// EventBuffer is the per-session queue between the worker pipe and the
	// distributor, in events. Default 10000; MXGATEWAY_EVENT_BUFFER.
	EventBuffer int
	// SlowConsumerPolicy is fault-session or disconnect-subscriber. Default
	// fault-session; MXGATEWAY_SLOW_CONSUMER_POLICY.
	SlowConsumerPolicy SlowConsumerPolicy
	// ReplaySize is the per-session replay ring length in events. Default
	// 100000; MXGATEWAY_REPLAY_SIZE.
	ReplaySize int
	// ReplayAge is the oldest event the replay ring keeps. Default 10m;
	// MXGATEWAY_REPLAY_AGE.
	ReplayAge time.Duration
	// Lease is how long a session lives without calls or an attached stream.
	// Default 5m; MXGATEWAY_LEASE.
	Lease time.Duration
	// DetachGrace is how long a session outlives its last subscriber so a
	// client can reconnect and resume. Default 2m; MXGATEWAY_DETACH_GRACE.
	DetachGrace time.Duration
	// MaxMessageBytes is the largest gRPC message received or sent. Default
	// 16MiB; MXGATEWAY_MAX_MESSAGE_BYTES.
	MaxMessageBytes int
	// MaxFrameBytes is the largest gateway-worker frame. Default 16MiB;
	// MXGATEWAY_MAX_FRAME_BYTES.
	MaxFrameBytes int
	// SpareWorkers is how many pre-started, handshaken workers wait for the
	// next OpenSession; -1 (the default) means 2 with the simulator and 0
	// with mxaccess; MXGATEWAY_SPARE_WORKERS.
	SpareWorkers int

	// DataWatchdogReference is the attribute every session's data watchdog
	// advises; it must change at least every DataWatchdogStaleAfter.
	// Default auto: the demo Galaxy's clock (see WatchdogAuto) with the
	// simulator's built-in model, off otherwise; off disables it;
	// MXGATEWAY_DATA_WATCHDOG_REFERENCE.
	DataWatchdogReference string
	// DataWatchdogStaleAfter: no change of the reference for this long makes
	// a session's data DEGRADED. Default 10s; MXGATEWAY_DATA_WATCHDOG_STALE_AFTER.
	DataWatchdogStaleAfter time.Duration
	// DataWatchdogFailAfter: no change for this long makes it FAILED. Default
	// 30s; MXGATEWAY_DATA_WATCHDOG_FAIL_AFTER.
	DataWatchdogFailAfter time.Duration

	// ShutdownGrace bounds a graceful gateway shutdown: streams end, sessions
	// close in parallel, and whatever remains after it is killed. Default
	// 30s; MXGATEWAY_SHUTDOWN_GRACE.
	ShutdownGrace time.Duration

	// Event-path bounds (flow control, docs/performance.md). Every queue an
	// event passes is bounded by count and by bytes.

	// WorkerEventQueue is the most events a worker queues for its pipe
	// while the gateway is behind; past it (or WorkerEventQueueBytes) the
	// worker faults the session with event_overflow. Announced to each
	// worker at launch. Default 1000000; MXGATEWAY_WORKER_EVENT_QUEUE.
	WorkerEventQueue int
	// WorkerEventQueueBytes bounds the encoded bytes of that queue. Default
	// 256MiB; MXGATEWAY_WORKER_EVENT_QUEUE_BYTES.
	WorkerEventQueueBytes int
	// EventBufferBytes bounds the frame bytes of event_buffer. Default
	// 64MiB; MXGATEWAY_EVENT_BUFFER_BYTES.
	EventBufferBytes int
	// SubscriberQueueBytes bounds the frame bytes of each subscriber's
	// queue. Default 32MiB; MXGATEWAY_SUBSCRIBER_QUEUE_BYTES.
	SubscriberQueueBytes int
	// SubscriberStallTimeout is how long a subscriber with a full queue may
	// make no room before the slow-consumer policy applies; meanwhile the
	// session's events wait upstream. Default 5s;
	// MXGATEWAY_SUBSCRIBER_STALL_TIMEOUT.
	SubscriberStallTimeout time.Duration
	// ReplayBytes bounds the frame bytes of the replay ring. Default 64MiB;
	// MXGATEWAY_REPLAY_BYTES.
	ReplayBytes int

	// Hardening limits (docs/security.md): per-key quotas, bounds before
	// authentication, stuck clients and credential guessing.

	// MaxSessionsPerKey caps the sessions one API key has open or opening
	// (never more than max_sessions). Default 16; MXGATEWAY_MAX_SESSIONS_PER_KEY.
	MaxSessionsPerKey int
	// MaxStreamsPerKey caps the concurrent streams of one API key. Default
	// 64; MXGATEWAY_MAX_STREAMS_PER_KEY.
	MaxStreamsPerKey int
	// StreamWriteTimeout ends an event stream whose send stays blocked this
	// long (a client that stopped reading). Default 30s;
	// MXGATEWAY_STREAM_WRITE_TIMEOUT.
	StreamWriteTimeout time.Duration
	// MaxHeaderListBytes bounds a request's header block, parsed before the
	// key is checked. Default 16KiB; MXGATEWAY_MAX_HEADER_LIST_BYTES.
	MaxHeaderListBytes int
	// MaxConcurrentStreams caps the concurrent calls of one connection.
	// Default 128; MXGATEWAY_MAX_CONCURRENT_STREAMS.
	MaxConcurrentStreams int
	// MaxHealthWatches caps the open grpc.health.v1 Watch streams, which
	// need no key. Default 64; MXGATEWAY_MAX_HEALTH_WATCHES.
	MaxHealthWatches int
	// MaxConnections caps the open connections of each listener (gRPC and
	// HTTP). Default 256; MXGATEWAY_MAX_CONNECTIONS.
	MaxConnections int
	// MaxConnectionIdle closes a gRPC connection without calls for this
	// long. Default 5m; MXGATEWAY_MAX_CONNECTION_IDLE.
	MaxConnectionIdle time.Duration
	// CredentialBackoff is the first wait after repeated failed MXAccess
	// credential checks; it doubles per failure. Default 1s;
	// MXGATEWAY_CREDENTIAL_BACKOFF.
	CredentialBackoff time.Duration
	// CredentialBackoffMax bounds that wait. Default 5m;
	// MXGATEWAY_CREDENTIAL_BACKOFF_MAX.
	CredentialBackoffMax time.Duration

	// NATS is the nats_* section: shared subscriptions on NATS (nats.go).
	NATS NATSConfig
}

// Default returns the default configuration for this machine: the data
// directory is resolved from the process environment (see DefaultDataDir).
func Default() Config {
	return defaults(os.Getenv, runtime.GOOS)
}

func defaults(env func(string) string, goos string) Config {
	return Config{
		Listen:             "127.0.0.1:5000",
		HTTPListen:         "127.0.0.1:5001",
		DataDir:            DefaultDataDir(env, goos),
		LogLevel:           "info",
		LogFormat:          LogFormatText,
		Auth:               AuthAPIKey,
		TLS:                TLSOff,
		WorkerBackend:      BackendSim,
		MXAccessProgID:     "LMXProxy.LMXProxyServer",
		SimProfile:         "default",
		Alarms:             AlarmsOn,
		AlarmProvider:      AlarmProviderAuto,
		GalaxyPoll:         30 * time.Second,
		GalaxySnapshot:     GalaxySnapshotOn,
		StartupTimeout:     protocol.DefaultStartupTimeout,
		HeartbeatInterval:  protocol.DefaultHeartbeatInterval,
		HeartbeatGrace:     protocol.DefaultHeartbeatGrace,
		HeartbeatCeiling:   protocol.DefaultHeartbeatCeiling,
		ShutdownTimeout:    protocol.DefaultShutdownTimeout,
		CommandTimeout:     session.DefaultCommandTimeout,
		MaxSessions:        session.DefaultMaxSessions,
		MaxPendingCommands: session.DefaultMaxPendingCommands,
		MaxSubscribers:     session.DefaultMaxSubscribers,
		SubscriberQueue:    session.DefaultSubscriberQueue,
		EventBuffer:        protocol.DefaultGatewayQueueEvents,
		SlowConsumerPolicy: SlowConsumerPolicy(session.DefaultSlowConsumerPolicy),
		ReplaySize:         session.DefaultReplaySize,
		ReplayAge:          session.DefaultReplayAge,
		Lease:              session.DefaultLease,
		DetachGrace:        session.DefaultDetachGrace,
		MaxMessageBytes:    16 << 20,
		MaxFrameBytes:      protocol.DefaultMaxFrameBytes,
		ShutdownGrace:      30 * time.Second,

		WorkerEventQueue:       protocol.DefaultWorkerQueueEvents,
		WorkerEventQueueBytes:  protocol.DefaultWorkerQueueBytes,
		EventBufferBytes:       protocol.DefaultGatewayQueueBytes,
		SubscriberQueueBytes:   session.DefaultSubscriberQueueBytes,
		SubscriberStallTimeout: session.DefaultSubscriberStallTimeout,
		ReplayBytes:            session.DefaultReplayBytes,

		SpareWorkers:           SpareWorkersAuto,
		DataWatchdogReference:  WatchdogAuto,
		DataWatchdogStaleAfter: 10 * time.Second,
		DataWatchdogFailAfter:  30 * time.Second,

		// Hardening limits.
		MaxSessionsPerKey:    16,
		MaxStreamsPerKey:     64,
		StreamWriteTimeout:   30 * time.Second,
		MaxHeaderListBytes:   16 << 10,
		MaxConcurrentStreams: 128,
		MaxHealthWatches:     64,
		MaxConnections:       256,
		MaxConnectionIdle:    5 * time.Minute,
		CredentialBackoff:    time.Second,
		CredentialBackoffMax: 5 * time.Minute,
		NATS:                 defaultNATS(),

		Dashboard:            On,
		DashboardTLS:         TLSOff,
		DashboardSessionIdle: 30 * time.Minute,
		DashboardSessionMax:  12 * time.Hour,
		DashboardMaxLogins:   64,
	}
}

// The values of galaxy_snapshot.
const (
	GalaxySnapshotOn  = "on"
	GalaxySnapshotOff = "off"
)

// DefaultDataDir returns the default data directory for goos, reading the
// environment through env:
//
//   - windows: %ProgramData%\mxgateway (C:\ProgramData when unset)
//   - darwin: $HOME/Library/Application Support/mxgateway
//   - others: $XDG_STATE_HOME/mxgateway, else $HOME/.local/state/mxgateway
//     (a relative XDG_STATE_HOME is ignored, as the XDG spec asks)
//
// It returns "" when the needed variables are unset; Validate then asks for
// data_dir explicitly. It does not read MXGATEWAY_DATA_DIR (Load applies
// that like every other key); see EnvDataDir.
func DefaultDataDir(env func(string) string, goos string) string {
	switch goos {
	case "windows":
		base := env("ProgramData")
		if base == "" {
			base = `C:\ProgramData`
		}
		return strings.TrimRight(base, `\/`) + `\mxgateway`
	case "darwin":
		if home := env("HOME"); home != "" {
			return strings.TrimRight(home, "/") + "/Library/Application Support/mxgateway"
		}
		return ""
	default:
		if state := env("XDG_STATE_HOME"); strings.HasPrefix(state, "/") {
			return strings.TrimRight(state, "/") + "/mxgateway"
		}
		if home := env("HOME"); home != "" {
			return strings.TrimRight(home, "/") + "/.local/state/mxgateway"
		}
		return ""
	}
}

// EnvDataDir returns the data directory a gateway started without a
// configured data_dir uses: $MXGATEWAY_DATA_DIR when set, else
// DefaultDataDir(env, goos). Tools that find a local gateway's data
// (mxgateway apikey, mxctl) use it. It returns "" when neither is known.
func EnvDataDir(env func(string) string, goos string) string {
	if d := env(EnvPrefix + "DATA_DIR"); d != "" {
		return d
	}
	return DefaultDataDir(env, goos)
}

// PepperPath returns the effective pepper file: PepperFile, or "pepper" in
// DataDir when it is empty.
func (c *Config) PepperPath() string {
	if c.PepperFile != "" {
		return c.PepperFile
	}
	return joinPath(c.DataDir, "pepper")
}

// SlogLevel returns LogLevel as a slog.Level (info when it is not valid).
func (c *Config) SlogLevel() slog.Level {
	switch strings.ToLower(c.LogLevel) {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

// joinPath joins dir and name with the separator dir already uses, so that
// a Windows path stays a Windows path whichever OS formats it.
func joinPath(dir, name string) string {
	if dir == "" {
		return name
	}
	sep := "/"
	if strings.Contains(dir, `\`) && !strings.Contains(dir, "/") {
		sep = `\`
	}
	return strings.TrimRight(dir, `\/`) + sep + name
}
