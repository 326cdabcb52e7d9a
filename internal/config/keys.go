package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mxgateway/mxgateway/internal/protocol"
)

// EnvPrefix starts every configuration environment variable.
const EnvPrefix = "MXGATEWAY_"

// EnvConfigFile names the config file when --config is not given.
const EnvConfigFile = EnvPrefix + "CONFIG"

// KeyInfo describes one configuration key for documentation and help.
type KeyInfo struct {
	Name    string   // YAML key, e.g. "http_listen"
	Flag    string   // flag name without dashes, e.g. "http-listen"
	Env     string   // environment variable, e.g. "MXGATEWAY_HTTP_LISTEN"
	Type    string   // string, duration, int, size, list or one of Allowed
	Default string   // default value as `config print` shows it
	Allowed []string // the allowed values of an enumerated key
	Range   string   // the allowed range of a numeric key, e.g. "[1, 10000]"
	Help    string   // one-line description
	Secret  bool     // masked by Print
}

type kind int

const (
	kindString kind = iota
	kindEnum
	kindDuration
	kindInt
	kindSize
	kindList
)

// key is one row of the key table: how to parse, format and range-check one
// Config field.
type key struct {
	name    string
	help    string
	kind    kind
	allowed []string
	secret  bool
	// rangeText is the allowed range shown in errors and docs ("" = none).
	rangeText string
	// set parses s into the field of c.
	set func(c *Config, s string) error
	// format returns the field of c as text that set accepts again.
	format func(c *Config) string
	// value returns the field of c for JSON output.
	value func(c *Config) any
	// check returns the problem with the field's value, or "" when it is fine.
	check func(c *Config) string
}

func (k *key) flagName() string { return strings.ReplaceAll(k.name, "_", "-") }
func (k *key) envName() string  { return EnvPrefix + strings.ToUpper(k.name) }

func (k *key) typeName() string {
	switch k.kind {
	case kindEnum:
		return strings.Join(k.allowed, "|")
	case kindDuration:
		return "duration"
	case kindInt:
		return "int"
	case kindSize:
		return "size"
	case kindList:
		return "list"
	default:
		return "string"
	}
}

func stringKey(name, help string, p func(*Config) *string) key {
	return key{
		name: name, help: help, kind: kindString,
		set:    func(c *Config, s string) error { *p(c) = s; return nil },
		format: func(c *Config) string { return *p(c) },
		value:  func(c *Config) any { return *p(c) },
		check:  func(*Config) string { return "" },
	}
}

func enumKey[T ~string](name, help string, allowed []T, p func(*Config) *T) key {
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = string(a)
	}
	return key{
		name: name, help: help, kind: kindEnum, allowed: names,
		set:    func(c *Config, s string) error { *p(c) = T(strings.ToLower(strings.TrimSpace(s))); return nil },
		format: func(c *Config) string { return string(*p(c)) },
		value:  func(c *Config) any { return string(*p(c)) },
		check: func(c *Config) string {
			if slices.Contains(names, string(*p(c))) {
				return ""
			}
			return fmt.Sprintf("%q must be one of %s", string(*p(c)), strings.Join(names, "|"))
		},
	}
}

func durationKey(name, help string, lo, hi time.Duration, p func(*Config) *time.Duration) key {
	return key{
		name: name, help: help, kind: kindDuration,
		rangeText: fmt.Sprintf("[%s, %s]", FormatDuration(lo), FormatDuration(hi)),
		set: func(c *Config, s string) error {
			d, err := time.ParseDuration(strings.TrimSpace(s))
			if err != nil {
				return fmt.Errorf("%q is not a duration (use Go syntax such as 500ms, 15s, 2m, 1h30m)", s)
			}
			*p(c) = d
			return nil
		},
		format: func(c *Config) string { return FormatDuration(*p(c)) },
		value:  func(c *Config) any { return FormatDuration(*p(c)) },
		check: func(c *Config) string {
			if d := *p(c); d < lo || d > hi {
				return fmt.Sprintf("%s is out of range [%s, %s]", FormatDuration(d), FormatDuration(lo), FormatDuration(hi))
			}
			return ""
		},
	}
}

func intKey(name, help string, lo, hi int, p func(*Config) *int) key {
	return key{
		name: name, help: help, kind: kindInt,
		rangeText: fmt.Sprintf("[%d, %d]", lo, hi),
		set: func(c *Config, s string) error {
			n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
			if err != nil || n < minInt || n > maxInt {
				return fmt.Errorf("%q is not an integer", s)
			}
			*p(c) = int(n)
			return nil
		},
		format: func(c *Config) string { return strconv.Itoa(*p(c)) },
		value:  func(c *Config) any { return *p(c) },
		check: func(c *Config) string {
			if n := *p(c); n < lo || n > hi {
				return fmt.Sprintf("%d is out of range [%d, %d]", n, lo, hi)
			}
			return ""
		},
	}
}

func sizeKey(name, help string, lo, hi int, p func(*Config) *int) key {
	return key{
		name: name, help: help, kind: kindSize,
		rangeText: fmt.Sprintf("[%s, %s]", FormatSize(int64(lo)), FormatSize(int64(hi))),
		set: func(c *Config, s string) error {
			n, err := ParseSize(s)
			if err != nil {
				return err
			}
			if n > maxInt {
				return fmt.Errorf("%q is too large", s)
			}
			*p(c) = int(n)
			return nil
		},
		format: func(c *Config) string { return FormatSize(int64(*p(c))) },
		value:  func(c *Config) any { return *p(c) },
		check: func(c *Config) string {
			if n := *p(c); n < lo || n > hi {
				return fmt.Sprintf("%s is out of range [%s, %s]", FormatSize(int64(n)), FormatSize(int64(lo)), FormatSize(int64(hi)))
			}
			return ""
		},
	}
}

func listKey(name, help string, p func(*Config) *[]string) key {
	return key{
		name: name, help: help, kind: kindList,
		set:    func(c *Config, s string) error { *p(c) = splitList(s); return nil },
		format: func(c *Config) string { return strings.Join(*p(c), ",") },
		value: func(c *Config) any {
			if *p(c) == nil {
				return []string{}
			}
			return *p(c)
		},
		check: func(c *Config) string {
			for _, v := range *p(c) {
				if v == "" || strings.ContainsAny(v, " \t,") {
					return fmt.Sprintf("%q is not a valid name (no blanks or commas)", v)
				}
			}
			return ""
		},
	}
}

// secret marks k as holding a secret: config print masks it.
func secret(k key) key {
	k.secret = true
	return k
}

// splitList splits a comma-separated list, trimming blanks and dropping
// empty elements.
func splitList(s string) []string {
	var out []string
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// Values of the alarms key.
const (
	AlarmsOff = "off"
	AlarmsOn  = "on"
)

// Values of the alarm_provider key.
const (
	// AlarmProviderAuto: the native alarm consumer first, the subtag
	// provider as its standby, with real MXAccess; the subtag provider
	// alone with the simulator.
	AlarmProviderAuto = "auto"
	// AlarmProviderNative: the native alarm consumer first, the subtag
	// provider as its standby, whatever the backend (the simulator has a
	// consumer too).
	AlarmProviderNative = "native"
	// AlarmProviderSubtag: the subtag provider alone.
	AlarmProviderSubtag = "subtag"
)

// MaxSimPlantAreas bounds sim_plant (and mxgateway galaxy --sim-plant):
// about 2,000 attributes per area.
const MaxSimPlantAreas = 200

const (
	minInt = -1 << 31
	maxInt = 1<<31 - 1
)

// keys is the key table, in the order `config print` and the docs use.
var keys = []key{
	stringKey("listen", "gRPC listen address (host:port)", func(c *Config) *string { return &c.Listen }),
	stringKey("http_listen", "HTTP listen address for /metrics, /healthz and /readyz (host:port)", func(c *Config) *string { return &c.HTTPListen }),
	stringKey("data_dir", "directory for the key store, pepper, certificates and the first-run admin key", func(c *Config) *string { return &c.DataDir }),
	enumKey("log_level", "log level", []string{"debug", "info", "warn", "error"}, func(c *Config) *string { return &c.LogLevel }),
	enumKey("log_format", "log format", []string{LogFormatText, LogFormatJSON}, func(c *Config) *string { return &c.LogFormat }),
	stringKey("log_file", "append the log to this file instead of stderr (use for the Windows service)", func(c *Config) *string { return &c.LogFile }),
	enumKey("auth", "client authentication; none is allowed only on loopback listeners", []AuthMode{AuthAPIKey, AuthNone}, func(c *Config) *AuthMode { return &c.Auth }),
	stringKey("pepper_file", "API-key pepper file (empty: <data_dir>/pepper)", func(c *Config) *string { return &c.PepperFile }),
	enumKey("tls", "gRPC TLS: off, certificate files, or a persisted self-signed certificate", []TLSMode{TLSOff, TLSFiles, TLSSelfSigned}, func(c *Config) *TLSMode { return &c.TLS }),
	stringKey("tls_cert", "PEM certificate chain file (tls=files)", func(c *Config) *string { return &c.TLSCert }),
	stringKey("tls_key", "PEM private key file (tls=files)", func(c *Config) *string { return &c.TLSKey }),
	listKey("tls_extra_names", "extra DNS names or IP addresses for the self-signed certificate (comma-separated)", func(c *Config) *[]string { return &c.TLSExtraNames }),
	// The web dashboard (docs/dashboard.md).
	enumKey("dashboard", "the web dashboard under /ui/", []OnOff{On, Off}, func(c *Config) *OnOff { return &c.Dashboard }),
	stringKey("dashboard_listen", "serve the dashboard on this address of its own instead of http_listen (host:port; empty: http_listen when it is loopback)", func(c *Config) *string { return &c.DashboardListen }),
	enumKey("dashboard_tls", "TLS of dashboard_listen: off, certificate files (tls_cert, tls_key), or the persisted self-signed certificate", []TLSMode{TLSOff, TLSFiles, TLSSelfSigned}, func(c *Config) *TLSMode { return &c.DashboardTLS }),
	durationKey("dashboard_session_idle", "a dashboard login unused this long ends", time.Minute, 24*time.Hour, func(c *Config) *time.Duration { return &c.DashboardSessionIdle }),
	durationKey("dashboard_session_max", "a dashboard login ends this long after it began", time.Minute, 7*24*time.Hour, func(c *Config) *time.Duration { return &c.DashboardSessionMax }),
	intKey("dashboard_max_logins", "most dashboard logins held at once", 1, 10000, func(c *Config) *int { return &c.DashboardMaxLogins }),
	enumKey("worker_backend", "worker backend", []Backend{BackendSim, BackendMXAccess}, func(c *Config) *Backend { return &c.WorkerBackend }),
	stringKey("worker_exe", "worker executable (empty: mxworker beside the gateway, else the gateway re-executes itself; required for mxaccess)", func(c *Config) *string { return &c.WorkerExe }),
	intKey("worker_max_procs", "GOMAXPROCS of each worker process (0: the worker's default, 2 at most except for mxaccess, which keeps Go's)", 0, protocol.MaxWorkerProcs, func(c *Config) *int { return &c.WorkerMaxProcs }),
	stringKey("mxaccess_prog_id", "COM ProgID of the MXAccess server", func(c *Config) *string { return &c.MXAccessProgID }),
	stringKey("sim_model", "simulator Galaxy model file (empty: the built-in demo Galaxy)", func(c *Config) *string { return &c.SimModel }),
	enumKey("sim_profile", "simulator behaviour profile", []string{"default", "test"}, func(c *Config) *string { return &c.SimProfile }),
	stringKey("sim_galaxy", "directory of an external simulated Galaxy runtime to attach to (empty: start our own)", func(c *Config) *string { return &c.SimGalaxy }),
	secret(stringKey("galaxy_repository", "Galaxy Repository connection string for browse (empty: the simulated Galaxy with the sim backend)", func(c *Config) *string { return &c.GalaxyRepository })),
	durationKey("galaxy_poll", "period of the Galaxy Repository deploy probe", time.Second, time.Hour, func(c *Config) *time.Duration { return &c.GalaxyPoll }),
	enumKey("galaxy_snapshot", "keep the last Galaxy Repository model in <data_dir>/galaxy-snapshot.json, served stale while the database is unreachable", []string{GalaxySnapshotOn, GalaxySnapshotOff}, func(c *Config) *string { return &c.GalaxySnapshot }),
	intKey("sim_plant", "serve the generated plant of N areas (0: sim_model or the demo Galaxy)", 0, MaxSimPlantAreas, func(c *Config) *int { return &c.SimPlant }),
	enumKey("alarms", "run the alarm monitor: one gateway-internal session watching the Galaxy's alarms (docs/alarms.md)", []string{AlarmsOff, AlarmsOn}, func(c *Config) *string { return &c.Alarms }),
	enumKey("alarm_provider", "the alarm monitor's providers: auto (native consumer then subtags with MXAccess, subtags with the simulator), native (native consumer then subtags), subtag (docs/alarms.md)", []string{AlarmProviderAuto, AlarmProviderNative, AlarmProviderSubtag}, func(c *Config) *string { return &c.AlarmProvider }),
	durationKey("startup_timeout", "worker launch and handshake deadline", time.Second, 10*time.Minute, func(c *Config) *time.Duration { return &c.StartupTimeout }),
	durationKey("heartbeat_interval", "worker heartbeat interval", 100*time.Millisecond, 5*time.Minute, func(c *Config) *time.Duration { return &c.HeartbeatInterval }),
	durationKey("heartbeat_grace", "silence after which an idle worker is faulted (> heartbeat_interval)", 200*time.Millisecond, 30*time.Minute, func(c *Config) *time.Duration { return &c.HeartbeatGrace }),
	durationKey("heartbeat_ceiling", "longest silence a running command may cover (>= heartbeat_grace)", 200*time.Millisecond, 2*time.Hour, func(c *Config) *time.Duration { return &c.HeartbeatCeiling }),
	durationKey("shutdown_timeout", "time a worker gets to shut down before it is killed", 100*time.Millisecond, 10*time.Minute, func(c *Config) *time.Duration { return &c.ShutdownTimeout }),
	durationKey("command_timeout", "command deadline when the client sets none", 100*time.Millisecond, 24*time.Hour, func(c *Config) *time.Duration { return &c.CommandTimeout }),
	intKey("max_sessions", "most open sessions (one worker process each)", 1, 10000, func(c *Config) *int { return &c.MaxSessions }),
	intKey("max_pending_commands", "most in-flight commands per session (at most the worker's command queue)", 1, protocol.CommandQueueSize, func(c *Config) *int { return &c.MaxPendingCommands }),
	intKey("max_subscribers", "most event streams per session", 1, 1024, func(c *Config) *int { return &c.MaxSubscribers }),
	intKey("subscriber_queue", "events queued per subscriber; a full queue is waited for up to subscriber_stall_timeout", 1, 10000000, func(c *Config) *int { return &c.SubscriberQueue }),
	intKey("event_buffer", "events buffered per session between the worker pipe and the distributor", 1, 10000000, func(c *Config) *int { return &c.EventBuffer }),
	enumKey("slow_consumer_policy", "what happens to a subscriber whose full queue stalls past subscriber_stall_timeout", []SlowConsumerPolicy{PolicyFaultSession, PolicyDisconnectSubscriber}, func(c *Config) *SlowConsumerPolicy { return &c.SlowConsumerPolicy }),
	intKey("replay_size", "events kept per session for resume", 1, 100000000, func(c *Config) *int { return &c.ReplaySize }),
	durationKey("replay_age", "oldest event kept for resume", time.Second, 24*time.Hour, func(c *Config) *time.Duration { return &c.ReplayAge }),
	durationKey("lease", "session lifetime without calls or an attached stream", time.Second, 24*time.Hour, func(c *Config) *time.Duration { return &c.Lease }),
	durationKey("detach_grace", "how long a session outlives its last subscriber", time.Second, 24*time.Hour, func(c *Config) *time.Duration { return &c.DetachGrace }),
	sizeKey("max_message_bytes", "largest gRPC message (bytes; 16MiB style accepted)", 64<<10, 1<<30, func(c *Config) *int { return &c.MaxMessageBytes }),
	sizeKey("max_frame_bytes", "largest gateway-worker frame (bytes; 16MiB style accepted)", 64<<10, 1<<30, func(c *Config) *int { return &c.MaxFrameBytes }),
	intKey("spare_workers", "pre-started workers waiting for OpenSession (-1: 2 with sim, 0 with mxaccess)", -1, 64, func(c *Config) *int { return &c.SpareWorkers }),
	// The data watchdog (docs/operations.md).
	stringKey("data_watchdog_reference", "attribute each session advises that must keep changing (auto: the demo Galaxy's clock with the built-in model; off: none)", func(c *Config) *string { return &c.DataWatchdogReference }),
	durationKey("data_watchdog_stale_after", "no change of the watchdog reference for this long makes a session's data DEGRADED", time.Second, time.Hour, func(c *Config) *time.Duration { return &c.DataWatchdogStaleAfter }),
	durationKey("data_watchdog_fail_after", "no change for this long makes it FAILED (> data_watchdog_stale_after)", 2*time.Second, 24*time.Hour, func(c *Config) *time.Duration { return &c.DataWatchdogFailAfter }),
	durationKey("shutdown_grace", "graceful gateway shutdown deadline; what remains is then killed", time.Second, time.Hour, func(c *Config) *time.Duration { return &c.ShutdownGrace }),

	// Event-path bounds (flow control).
	intKey("worker_event_queue", "events a worker buffers for its pipe while the gateway is behind; past it the session faults (event_overflow)", 1, 100000000, func(c *Config) *int { return &c.WorkerEventQueue }),
	sizeKey("worker_event_queue_bytes", "encoded event bytes a worker buffers for its pipe (bytes; 256MiB style accepted)", 64<<10, 1<<30, func(c *Config) *int { return &c.WorkerEventQueueBytes }),
	sizeKey("event_buffer_bytes", "event bytes buffered per session between the worker pipe and the distributor (bytes; 64MiB style accepted)", 64<<10, 1<<30, func(c *Config) *int { return &c.EventBufferBytes }),
	sizeKey("subscriber_queue_bytes", "event bytes queued per subscriber (bytes; 32MiB style accepted)", 64<<10, 1<<30, func(c *Config) *int { return &c.SubscriberQueueBytes }),
	durationKey("subscriber_stall_timeout", "how long a subscriber with a full queue may make no room before the slow-consumer policy applies", time.Millisecond, time.Hour, func(c *Config) *time.Duration { return &c.SubscriberStallTimeout }),
	sizeKey("replay_bytes", "event bytes kept per session for resume (bytes; 64MiB style accepted)", 64<<10, 1<<30, func(c *Config) *int { return &c.ReplayBytes }),

	// Hardening limits (docs/security.md).
	intKey("max_sessions_per_key", "most sessions one API key has open or opening (at most max_sessions)", 1, 10000, func(c *Config) *int { return &c.MaxSessionsPerKey }),
	intKey("max_streams_per_key", "most concurrent streams of one API key", 1, 100000, func(c *Config) *int { return &c.MaxStreamsPerKey }),
	durationKey("stream_write_timeout", "an event stream whose send stays blocked this long ends", 100*time.Millisecond, time.Hour, func(c *Config) *time.Duration { return &c.StreamWriteTimeout }),
	sizeKey("max_header_list_bytes", "largest request header block, parsed before the key is checked", 1<<10, 8<<20, func(c *Config) *int { return &c.MaxHeaderListBytes }),
	intKey("max_concurrent_streams", "most concurrent calls on one gRPC connection", 1, 100000, func(c *Config) *int { return &c.MaxConcurrentStreams }),
	intKey("max_health_watches", "most open health Watch streams (they need no key)", 1, 100000, func(c *Config) *int { return &c.MaxHealthWatches }),
	intKey("max_connections", "most open connections per listener (gRPC and HTTP each)", 1, 100000, func(c *Config) *int { return &c.MaxConnections }),
	durationKey("max_connection_idle", "a gRPC connection without calls for this long is closed", time.Second, 24*time.Hour, func(c *Config) *time.Duration { return &c.MaxConnectionIdle }),
	durationKey("credential_backoff", "first wait after repeated failed MXAccess credential checks (doubles per failure)", 10*time.Millisecond, time.Hour, func(c *Config) *time.Duration { return &c.CredentialBackoff }),
	durationKey("credential_backoff_max", "longest wait after failed MXAccess credential checks (>= credential_backoff)", 10*time.Millisecond, 24*time.Hour, func(c *Config) *time.Duration { return &c.CredentialBackoffMax }),
}

// lookupKey returns the key named name, or nil.
func lookupKey(name string) *key {
	for i := range keys {
		if keys[i].name == name {
			return &keys[i]
		}
	}
	return nil
}

// Keys describes every configuration key, in table order, with the defaults
// of this machine.
func Keys() []KeyInfo {
	def := Default()
	out := make([]KeyInfo, len(keys))
	for i := range keys {
		k := &keys[i]
		out[i] = KeyInfo{
			Name: k.name, Flag: k.flagName(), Env: k.envName(), Type: k.typeName(),
			Default: k.format(&def), Allowed: k.allowed, Range: k.rangeText, Help: k.help, Secret: k.secret,
		}
	}
	return out
}

// FormatDuration formats d without zero trailing units: 10m rather than
// 10m0s. time.ParseDuration reads the result back.
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
