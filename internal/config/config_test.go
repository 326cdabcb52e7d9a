package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mxgateway/mxgateway/internal/protocol"
)

// envMap turns a map into an env lookup func.
func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// fieldErrors flattens a (joined) error into its *FieldError values.
func fieldErrors(err error) []*FieldError {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []*FieldError
		for _, e := range j.Unwrap() {
			out = append(out, fieldErrors(e)...)
		}
		return out
	}
	if fe, ok := err.(*FieldError); ok {
		return []*FieldError{fe}
	}
	return nil
}

func errorKeys(err error) []string {
	var ks []string
	for _, fe := range fieldErrors(err) {
		ks = append(ks, fe.Key)
	}
	slices.Sort(ks)
	return ks
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaultIsValid(t *testing.T) {
	cfg, src, err := Load(nil, envMap(map[string]string{"HOME": "/home/op"}))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	if cfg.Listen != "127.0.0.1:5000" || cfg.HTTPListen != "127.0.0.1:5001" || cfg.WorkerBackend != BackendSim || cfg.Auth != AuthAPIKey {
		t.Fatalf("unexpected defaults: %+v", cfg)
	}
	for _, k := range Keys() {
		if got := src.Of(k.Name); got != SourceDefault {
			t.Errorf("%s: source %s, want default", k.Name, got)
		}
	}
}

func TestPrecedence(t *testing.T) {
	file := writeFile(t, "gw.yaml", `
listen: 127.0.0.1:6000
max_sessions: 10
heartbeat_interval: 2s
tls_extra_names: [gw.example, 10.0.0.5]
log_level: debug
`)
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		key     string
		want    func(*Config) any
		wantVal any
		wantSrc Source
	}{
		{"default", nil, nil, "listen", func(c *Config) any { return c.Listen }, "127.0.0.1:5000", SourceDefault},
		{"file over default", []string{"--config", file}, nil, "listen", func(c *Config) any { return c.Listen }, "127.0.0.1:6000", SourceFile},
		{"file via env var", nil, map[string]string{EnvConfigFile: file}, "max_sessions", func(c *Config) any { return c.MaxSessions }, 10, SourceFile},
		{"env over file", []string{"--config", file}, map[string]string{"MXGATEWAY_LISTEN": "127.0.0.1:7000"}, "listen", func(c *Config) any { return c.Listen }, "127.0.0.1:7000", SourceEnv},
		{"flag over env", []string{"--config", file, "--listen", "127.0.0.1:8000"}, map[string]string{"MXGATEWAY_LISTEN": "127.0.0.1:7000"}, "listen", func(c *Config) any { return c.Listen }, "127.0.0.1:8000", SourceFlag},
		{"flag over default", []string{"--max-sessions=3"}, nil, "max_sessions", func(c *Config) any { return c.MaxSessions }, 3, SourceFlag},
		{"empty env is unset", []string{"--config", file}, map[string]string{"MXGATEWAY_MAX_SESSIONS": ""}, "max_sessions", func(c *Config) any { return c.MaxSessions }, 10, SourceFile},
		{"duration from file", []string{"--config", file}, nil, "heartbeat_interval", func(c *Config) any { return c.HeartbeatInterval }, 2 * time.Second, SourceFile},
		{"duration from env", nil, map[string]string{"MXGATEWAY_LEASE": "90s"}, "lease", func(c *Config) any { return c.Lease }, 90 * time.Second, SourceEnv},
		{"size with unit", []string{"--max-frame-bytes", "4MiB"}, nil, "max_frame_bytes", func(c *Config) any { return c.MaxFrameBytes }, 4 << 20, SourceFlag},
		{"size in bytes", nil, map[string]string{"MXGATEWAY_MAX_MESSAGE_BYTES": "1048576"}, "max_message_bytes", func(c *Config) any { return c.MaxMessageBytes }, 1 << 20, SourceEnv},
		{"list from file", []string{"--config", file}, nil, "tls_extra_names", func(c *Config) any { return strings.Join(c.TLSExtraNames, "|") }, "gw.example|10.0.0.5", SourceFile},
		{"list from env", nil, map[string]string{"MXGATEWAY_TLS_EXTRA_NAMES": "a.example, b.example"}, "tls_extra_names", func(c *Config) any { return strings.Join(c.TLSExtraNames, "|") }, "a.example|b.example", SourceEnv},
		{"repeated list flag", []string{"--tls-extra-names", "a", "--tls-extra-names", "b,c"}, nil, "tls_extra_names", func(c *Config) any { return strings.Join(c.TLSExtraNames, "|") }, "a|b|c", SourceFlag},
		{"enum case folded", nil, map[string]string{"MXGATEWAY_LOG_LEVEL": "WARN"}, "log_level", func(c *Config) any { return c.LogLevel }, "warn", SourceEnv},
		{"last scalar flag wins", []string{"--auth", "none", "--auth", "apikey"}, nil, "auth", func(c *Config) any { return c.Auth }, AuthAPIKey, SourceFlag},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"HOME": "/home/op"}
			for k, v := range tc.env {
				env[k] = v
			}
			cfg, src, err := Load(tc.args, envMap(env))
			if err != nil {
				t.Fatal(err)
			}
			if got := tc.want(cfg); got != tc.wantVal {
				t.Errorf("%s = %v, want %v", tc.key, got, tc.wantVal)
			}
			if got := src.Of(tc.key); got != tc.wantSrc {
				t.Errorf("source of %s = %s, want %s", tc.key, got, tc.wantSrc)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name     string
		file     string // YAML content; "" = no file
		args     []string
		env      map[string]string
		nilCfg   bool     // a flag error returns no config
		wantKeys []string // FieldError keys expected (sorted)
		wantText []string // substrings of the whole error
	}{
		{name: "unknown flag", args: []string{"--no-such-flag"}, nilCfg: true},
		{name: "bad flag duration", args: []string{"--lease", "5"}, nilCfg: true, wantText: []string{"lease"}},
		{name: "positional argument", args: []string{"extra"}, nilCfg: true, wantText: []string{"unexpected argument"}},
		{name: "bad env values all reported", env: map[string]string{"MXGATEWAY_LEASE": "soon", "MXGATEWAY_MAX_SESSIONS": "many"}, wantKeys: []string{"lease", "max_sessions"}},
		{name: "unknown file key", file: "lisen: 1.2.3.4:5\n", wantText: []string{`unknown key "lisen"`}},
		{name: "bad file values all reported", file: "lease: 5\nmax_frame_bytes: lots\nlisten: [a, b]\n", wantKeys: []string{"lease", "listen", "max_frame_bytes"}},
		{name: "duplicate key", file: "lease: 5s\nlease: 6s\n", wantText: []string{"lease"}},
		{name: "top level not a mapping", file: "- a\n- b\n", wantText: []string{"mapping"}},
		{name: "syntax error", file: "listen: [\n", wantText: []string{"config file"}},
		{name: "missing file", args: []string{"--config", "/nonexistent/mxgateway.yaml"}, wantText: []string{"config file"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.file != "" {
				args = append([]string{"--config", writeFile(t, "c.yaml", tc.file)}, args...)
			}
			env := map[string]string{"HOME": "/home/op"}
			for k, v := range tc.env {
				env[k] = v
			}
			cfg, _, err := Load(args, envMap(env))
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			if (cfg == nil) != tc.nilCfg {
				t.Fatalf("cfg nil = %v, want %v (err %v)", cfg == nil, tc.nilCfg, err)
			}
			if tc.wantKeys != nil {
				if got := errorKeys(err); !slices.Equal(got, tc.wantKeys) {
					t.Fatalf("error keys %v, want %v (err %v)", got, tc.wantKeys, err)
				}
			}
			for _, s := range tc.wantText {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}
}

func TestHelpFlag(t *testing.T) {
	_, _, err := Load([]string{"-h"}, nil)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err = %v, want flag.ErrHelp", err)
	}
	var b bytes.Buffer
	Usage(&b)
	for _, k := range Keys() {
		if !strings.Contains(b.String(), "--"+k.Flag+" ") || !strings.Contains(b.String(), k.Env) {
			t.Errorf("usage lacks %s / %s", k.Flag, k.Env)
		}
	}
}

func TestEmptyAndCommentOnlyFiles(t *testing.T) {
	for _, content := range []string{"", "# nothing here\n", "---\n", "listen: ~\n"} {
		p := writeFile(t, "c.yaml", content)
		cfg, src, err := Load([]string{"--config", p}, envMap(map[string]string{"HOME": "/h"}))
		if err != nil {
			t.Fatalf("%q: %v", content, err)
		}
		if cfg.Listen != "127.0.0.1:5000" || src.Of("listen") != SourceDefault {
			t.Fatalf("%q changed listen: %q (%s)", content, cfg.Listen, src.Of("listen"))
		}
		if src.File != p {
			t.Fatalf("src.File = %q", src.File)
		}
	}
}

func TestValidate(t *testing.T) {
	certFile := writeFile(t, "cert.pem", "x")
	keyFile := writeFile(t, "key.pem", "x")
	tests := []struct {
		name     string
		mutate   func(c *Config)
		wantKeys []string
		wantText string // substring of the error for the first key
	}{
		{"valid", func(*Config) {}, nil, ""},
		{"bad listen", func(c *Config) { c.Listen = "localhost" }, []string{"listen"}, `"localhost" is not host:port`},
		{"bad port", func(c *Config) { c.HTTPListen = "127.0.0.1:99999" }, []string{"http_listen"}, "invalid port"},
		{"same listeners", func(c *Config) { c.HTTPListen = c.Listen }, []string{"http_listen"}, "same address as listen"},
		{"wildcard collides", func(c *Config) { c.Listen, c.TLS = ":5001", TLSSelfSigned }, []string{"http_listen"}, "same address"},
		{"port zero never collides", func(c *Config) { c.Listen, c.HTTPListen = "127.0.0.1:0", "127.0.0.1:0" }, nil, ""},
		{"no data dir", func(c *Config) { c.DataDir = "" }, []string{"data_dir"}, "must be set"},
		{"bad log level", func(c *Config) { c.LogLevel = "verbose" }, []string{"log_level"}, `"verbose" must be one of debug|info|warn|error`},
		{"bad log format", func(c *Config) { c.LogFormat = "xml" }, []string{"log_format"}, "text|json"},
		{"bad auth", func(c *Config) { c.Auth = "basic" }, []string{"auth"}, "apikey|none"},
		{"auth none on loopback", func(c *Config) { c.Auth = AuthNone }, nil, ""},
		{"auth none on localhost", func(c *Config) { c.Auth, c.Listen = AuthNone, "localhost:5000" }, nil, ""},
		{"auth none on ipv6 loopback", func(c *Config) { c.Auth, c.Listen = AuthNone, "[::1]:5000" }, nil, ""},
		{"auth none on all interfaces", func(c *Config) { c.Auth, c.Listen, c.TLS = AuthNone, "0.0.0.0:5000", TLSSelfSigned }, []string{"auth"}, "loopback"},
		{"auth none with empty host", func(c *Config) { c.Auth, c.Listen, c.TLS = AuthNone, ":5000", TLSSelfSigned }, []string{"auth"}, "loopback"},
		{"auth none with public http", func(c *Config) { c.Auth, c.HTTPListen = AuthNone, "0.0.0.0:5001" }, []string{"auth"}, "http_listen is a loopback address"},
		{"apikey with public http", func(c *Config) { c.HTTPListen = "0.0.0.0:5001" }, nil, ""},
		{"auth none on ipv6 loopback and localhost http", func(c *Config) { c.Auth, c.Listen, c.HTTPListen = AuthNone, "[::1]:5000", "localhost:5001" }, nil, ""},
		{"auth none and plaintext on all interfaces", func(c *Config) { c.Auth, c.Listen = AuthNone, "0.0.0.0:5000" }, []string{"auth", "tls"}, "loopback"},
		{"public listeners with tls files", func(c *Config) {
			c.Listen, c.HTTPListen, c.TLS, c.TLSCert, c.TLSKey = "0.0.0.0:5000", "0.0.0.0:5001", TLSFiles, certFile, keyFile
		}, nil, ""},
		{"plaintext on all interfaces", func(c *Config) { c.Listen = "0.0.0.0:5000" }, []string{"tls"}, "plaintext is allowed on loopback only"},
		{"plaintext with empty host", func(c *Config) { c.Listen = ":5000" }, []string{"tls"}, "loopback"},
		{"tls on all interfaces", func(c *Config) { c.Listen, c.TLS = "0.0.0.0:5000", TLSSelfSigned }, nil, ""},
		{"bad tls mode", func(c *Config) { c.TLS = "on" }, []string{"tls"}, "off|files|self-signed"},
		{"tls files missing both", func(c *Config) { c.TLS = TLSFiles }, []string{"tls_cert", "tls_key"}, "must be set when tls is files"},
		{"tls files unreadable", func(c *Config) { c.TLS, c.TLSCert, c.TLSKey = TLSFiles, "/nonexistent/c.pem", keyFile }, []string{"tls_cert"}, "cannot be read"},
		{"tls files directory", func(c *Config) { c.TLS, c.TLSCert, c.TLSKey = TLSFiles, t.TempDir(), keyFile }, []string{"tls_cert"}, "is a directory"},
		{"tls files present", func(c *Config) { c.TLS, c.TLSCert, c.TLSKey = TLSFiles, certFile, keyFile }, nil, ""},
		{"bad extra name", func(c *Config) { c.TLSExtraNames = []string{"a b"} }, []string{"tls_extra_names"}, "not a valid name"},
		{"bad backend", func(c *Config) { c.WorkerBackend = "com" }, []string{"worker_backend"}, "sim|mxaccess"},
		{"mxaccess needs exe", func(c *Config) { c.WorkerBackend = BackendMXAccess }, []string{"worker_exe"}, "must be set when worker_backend is mxaccess"},
		{"mxaccess needs prog id", func(c *Config) {
			c.WorkerBackend, c.WorkerExe, c.MXAccessProgID = BackendMXAccess, `C:\mx\mxworker.exe`, " "
		}, []string{"mxaccess_prog_id"}, "must be set"},
		{"bad sim profile", func(c *Config) { c.SimProfile = "chaos" }, []string{"sim_profile"}, "default|test"},
		{"startup timeout too small", func(c *Config) { c.StartupTimeout = time.Millisecond }, []string{"startup_timeout"}, "1ms is out of range [1s, 10m]"},
		{"interval too small", func(c *Config) { c.HeartbeatInterval = time.Millisecond }, []string{"heartbeat_interval"}, "out of range"},
		{"grace not above interval", func(c *Config) { c.HeartbeatGrace = time.Second }, []string{"heartbeat_grace"}, "heartbeat_grace: 1s must be greater than heartbeat_interval (5s)"},
		{"grace equal to interval", func(c *Config) { c.HeartbeatGrace = 5 * time.Second }, []string{"heartbeat_grace"}, "greater than heartbeat_interval"},
		{"ceiling below grace", func(c *Config) { c.HeartbeatCeiling = 10 * time.Second }, []string{"heartbeat_ceiling"}, "10s must be at least heartbeat_grace (15s)"},
		{"ceiling equal to grace", func(c *Config) { c.HeartbeatCeiling = c.HeartbeatGrace }, nil, ""},
		{"shutdown timeout zero", func(c *Config) { c.ShutdownTimeout = 0 }, []string{"shutdown_timeout"}, "out of range"},
		{"command timeout huge", func(c *Config) { c.CommandTimeout = 48 * time.Hour }, []string{"command_timeout"}, "48h is out of range"},
		{"max sessions zero", func(c *Config) { c.MaxSessions = 0 }, []string{"max_sessions"}, "max_sessions: 0 is out of range [1, 10000]"},
		{"pending zero", func(c *Config) { c.MaxPendingCommands = 0 }, []string{"max_pending_commands"}, "out of range"},
		{"pending above the worker's queue", func(c *Config) { c.MaxPendingCommands = protocol.CommandQueueSize + 1 }, []string{"max_pending_commands"}, "4097 is out of range [1, 4096]"},
		{"pending at the worker's queue", func(c *Config) { c.MaxPendingCommands = protocol.CommandQueueSize }, nil, ""},
		{"subscribers too many", func(c *Config) { c.MaxSubscribers = 5000 }, []string{"max_subscribers"}, "[1, 1024]"},
		{"subscriber queue zero", func(c *Config) { c.SubscriberQueue = 0 }, []string{"subscriber_queue"}, "out of range"},
		{"event buffer negative", func(c *Config) { c.EventBuffer = -1 }, []string{"event_buffer"}, "out of range"},
		{"bad policy", func(c *Config) { c.SlowConsumerPolicy = "drop" }, []string{"slow_consumer_policy"}, "fault-session|disconnect-subscriber"},
		{"replay zero", func(c *Config) { c.ReplaySize, c.ReplayAge = 0, 0 }, []string{"replay_age", "replay_size"}, "out of range"},
		{"replay negative", func(c *Config) { c.ReplaySize = -5 }, []string{"replay_size"}, "out of range"},
		{"replay age too long", func(c *Config) { c.ReplayAge = 25 * time.Hour }, []string{"replay_age"}, "out of range"},
		{"lease too short", func(c *Config) { c.Lease = 0 }, []string{"lease"}, "out of range"},
		{"detach grace zero", func(c *Config) { c.DetachGrace = 0 }, []string{"detach_grace"}, "0s is out of range [1s, 24h]"},
		{"message too small", func(c *Config) { c.MaxMessageBytes = 100 }, []string{"max_message_bytes"}, "100 is out of range [64KiB, 1GiB]"},
		{"frame too large", func(c *Config) { c.MaxFrameBytes = 1<<30 + 1 }, []string{"max_frame_bytes"}, "out of range"},
		{"shutdown grace too long", func(c *Config) { c.ShutdownGrace = 2 * time.Hour }, []string{"shutdown_grace"}, "out of range"},
		{"watchdog fail not above stale", func(c *Config) { c.DataWatchdogStaleAfter, c.DataWatchdogFailAfter = 20*time.Second, 20*time.Second }, []string{"data_watchdog_fail_after"}, "greater than data_watchdog_stale_after (20s)"},
		{"watchdog stale too short", func(c *Config) { c.DataWatchdogStaleAfter = 100 * time.Millisecond }, []string{"data_watchdog_stale_after"}, "out of range"},
		{"watchdog reference empty", func(c *Config) { c.DataWatchdogReference = " " }, []string{"data_watchdog_reference"}, "auto or off"},
		{"watchdog off", func(c *Config) { c.DataWatchdogReference = WatchdogOff }, nil, ""},
		{"many problems at once", func(c *Config) {
			c.MaxSessions, c.LogLevel, c.HeartbeatGrace, c.Listen = 0, "loud", time.Second, "nope"
		}, []string{"heartbeat_grace", "listen", "log_level", "max_sessions"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := defaults(envMap(map[string]string{"HOME": "/home/op"}), "linux")
			tc.mutate(&c)
			err := c.Validate()
			got := errorKeys(err)
			want := slices.Clone(tc.wantKeys)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("problem keys %v, want %v (err: %v)", got, want, err)
			}
			if tc.wantText != "" && !strings.Contains(err.Error(), tc.wantText) {
				t.Fatalf("error %q does not contain %q", err, tc.wantText)
			}
		})
	}
}

func TestDefaultDataDir(t *testing.T) {
	tests := []struct {
		goos string
		env  map[string]string
		want string
	}{
		{"linux", map[string]string{"XDG_STATE_HOME": "/xdg/state", "HOME": "/home/op"}, "/xdg/state/mxgateway"},
		{"linux", map[string]string{"HOME": "/home/op/"}, "/home/op/.local/state/mxgateway"},
		{"linux", nil, ""},
		{"freebsd", map[string]string{"HOME": "/home/op"}, "/home/op/.local/state/mxgateway"},
		{"windows", map[string]string{"ProgramData": `D:\ProgramData`}, `D:\ProgramData\mxgateway`},
		{"windows", nil, `C:\ProgramData\mxgateway`},
		{"darwin", map[string]string{"HOME": "/Users/op"}, "/Users/op/Library/Application Support/mxgateway"},
		{"linux", map[string]string{"XDG_STATE_HOME": "rel", "HOME": "/home/u"}, "/home/u/.local/state/mxgateway"},
		{"linux", map[string]string{"MXGATEWAY_DATA_DIR": "/srv/mx", "HOME": "/home/u"}, "/home/u/.local/state/mxgateway"},
	}
	for _, tc := range tests {
		if got := DefaultDataDir(envMap(tc.env), tc.goos); got != tc.want {
			t.Errorf("%s %v: %q, want %q", tc.goos, tc.env, got, tc.want)
		}
	}
}

func TestEnvDataDir(t *testing.T) {
	tests := []struct {
		goos string
		env  map[string]string
		want string
	}{
		{"linux", map[string]string{"MXGATEWAY_DATA_DIR": "/srv/mx", "HOME": "/home/u"}, "/srv/mx"},
		{"windows", map[string]string{"MXGATEWAY_DATA_DIR": `E:\mx`, "ProgramData": `D:\PD`}, `E:\mx`},
		{"windows", map[string]string{"ProgramData": `D:\PD`}, `D:\PD\mxgateway`},
		{"linux", map[string]string{"HOME": "/home/u"}, "/home/u/.local/state/mxgateway"},
		{"linux", nil, ""},
	}
	for _, tc := range tests {
		if got := EnvDataDir(envMap(tc.env), tc.goos); got != tc.want {
			t.Errorf("%s %v: %q, want %q", tc.goos, tc.env, got, tc.want)
		}
	}
}

func TestIsLoopbackAddr(t *testing.T) {
	for _, a := range []string{"127.0.0.1:5000", "[::1]:5001", "localhost:1", "LOCALHOST:1", "127.5.5.5:80", "127.0.0.1", "::1", "[::1]"} {
		if !IsLoopbackAddr(a) {
			t.Errorf("IsLoopbackAddr(%q) = false, want true", a)
		}
	}
	for _, a := range []string{":5000", "0.0.0.0:5000", "[::]:5000", "10.0.0.1:5000", "example.com:5000", "", "10.0.0.1"} {
		if IsLoopbackAddr(a) {
			t.Errorf("IsLoopbackAddr(%q) = true, want false", a)
		}
	}
}

func TestPepperPath(t *testing.T) {
	c := Config{DataDir: `C:\ProgramData\mxgateway`}
	if got := c.PepperPath(); got != `C:\ProgramData\mxgateway\pepper` {
		t.Errorf("windows: %q", got)
	}
	c = Config{DataDir: "/var/lib/mxgateway/"}
	if got := c.PepperPath(); got != "/var/lib/mxgateway/pepper" {
		t.Errorf("unix: %q", got)
	}
	c.PepperFile = "/etc/mxgateway/pepper"
	if got := c.PepperPath(); got != c.PepperFile {
		t.Errorf("explicit: %q", got)
	}
}

func TestSize(t *testing.T) {
	good := map[string]int64{"0": 0, "1024": 1024, "16MiB": 16 << 20, " 1GiB ": 1 << 30, "512KiB": 512 << 10, "10MB": 10e6, "64B": 64, "2KB": 2000}
	for in, want := range good {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "-1", "1.5MiB", "16mib", "9999999999GiB", "abc"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) succeeded", in)
		}
	}
	for _, n := range []int64{0, 1, 1000, 1024, 16 << 20, 3 << 30, 1<<20 + 1} {
		back, err := ParseSize(FormatSize(n))
		if err != nil || back != n {
			t.Errorf("round trip %d -> %q -> %d, %v", n, FormatSize(n), back, err)
		}
	}
	if FormatSize(16<<20) != "16MiB" {
		t.Errorf("FormatSize(16MiB) = %q", FormatSize(16<<20))
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		10 * time.Minute: "10m", time.Hour: "1h", 90 * time.Minute: "1h30m", 15 * time.Second: "15s",
		0: "0s", 1500 * time.Millisecond: "1.5s", time.Hour + time.Second: "1h0m1s",
	} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
		if back, err := time.ParseDuration(FormatDuration(d)); err != nil || back != d {
			t.Errorf("round trip %v: %v %v", d, back, err)
		}
	}
}

func TestPrint(t *testing.T) {
	file := writeFile(t, "c.yaml", "max_sessions: 12\n")
	cfg, src, err := Load([]string{"--config", file, "--lease", "1m"},
		envMap(map[string]string{"HOME": "/home/op", "MXGATEWAY_LOG_LEVEL": "debug"}))
	if err != nil {
		t.Fatal(err)
	}

	var text bytes.Buffer
	if err := Print(&text, cfg, src, false); err != nil {
		t.Fatal(err)
	}
	rows := map[string][]string{}
	for _, line := range strings.Split(text.String(), "\n") {
		if f := strings.Fields(line); len(f) >= 3 {
			rows[f[0]] = f[1:]
		}
	}
	for key, want := range map[string][2]string{
		"max_sessions": {"12", "file"}, "lease": {"1m", "flag"}, "log_level": {"debug", "env"},
		"listen": {"127.0.0.1:5000", "default"}, "max_frame_bytes": {"16MiB", "default"}, "worker_exe": {`""`, "default"},
	} {
		r := rows[key]
		if len(r) != 2 || r[0] != want[0] || r[1] != want[1] {
			t.Errorf("row %s = %v, want %v", key, r, want)
		}
	}
	if len(rows) != len(keys)+2 { // + "# config file" and the column header
		t.Errorf("text output has %d rows, want %d", len(rows), len(keys)+2)
	}
	if !strings.HasPrefix(text.String(), "# config file: "+file+"\n") {
		t.Errorf("text output does not start with the config file:\n%s", text.String())
	}

	var js bytes.Buffer
	if err := Print(&js, cfg, src, true); err != nil {
		t.Fatal(err)
	}
	var out Printed
	if err := json.Unmarshal(js.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	if out.ConfigFile != file || len(out.Keys) != len(keys) {
		t.Fatalf("json: file %q, %d keys", out.ConfigFile, len(out.Keys))
	}
	for _, k := range out.Keys {
		switch k.Key {
		case "max_sessions":
			if k.Value != float64(12) || k.Source != SourceFile || k.Env != "MXGATEWAY_MAX_SESSIONS" || k.Flag != "--max-sessions" {
				t.Errorf("json max_sessions: %+v", k)
			}
		case "lease":
			if k.Value != "1m" || k.Source != SourceFlag {
				t.Errorf("json lease: %+v", k)
			}
		}
	}
}

// TestPrintMasksSecrets prints a table with a secret key and checks that
// its value never appears.
func TestPrintMasksSecrets(t *testing.T) {
	const secret = "hunter2-very-secret"
	table := []key{
		stringKey("listen", "", func(c *Config) *string { return &c.Listen }),
		stringKey("pepper_file", "", func(c *Config) *string { return &c.PepperFile }),
	}
	table[1].secret = true
	cfg := Config{Listen: "127.0.0.1:1", PepperFile: secret}
	for _, asJSON := range []bool{false, true} {
		var b bytes.Buffer
		if err := printKeys(&b, table, &cfg, nil, asJSON); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(b.String(), secret) {
			t.Fatalf("json=%v: secret printed:\n%s", asJSON, b.String())
		}
		if !strings.Contains(b.String(), Masked) || !strings.Contains(b.String(), "127.0.0.1:1") {
			t.Fatalf("json=%v: output lacks mask or plain value:\n%s", asJSON, b.String())
		}
	}
}

// TestRoundTrip prints the effective configuration as YAML-compatible
// key: value text and loads it back unchanged.
func TestRoundTrip(t *testing.T) {
	c := defaults(envMap(map[string]string{"HOME": "/home/op"}), "linux")
	c.TLSExtraNames = []string{"a.example", "10.1.2.3"}
	c.ReplayAge = 90 * time.Minute
	c.MaxFrameBytes = 1<<20 + 7
	var b strings.Builder
	for i := range keys {
		fmtd := keys[i].format(&c)
		b.WriteString(keys[i].name + ": " + strconvQuote(fmtd) + "\n")
	}
	p := writeFile(t, "rt.yaml", b.String())
	got, _, err := Load([]string{"--config", p}, envMap(map[string]string{"HOME": "/elsewhere"}))
	if err != nil {
		t.Fatal(err)
	}
	for i := range keys {
		if a, b := keys[i].format(&c), keys[i].format(got); a != b {
			t.Errorf("%s: %q became %q", keys[i].name, a, b)
		}
	}
}

func strconvQuote(s string) string {
	b, _ := json.Marshal(s) // JSON strings are YAML strings
	return string(b)
}

func TestKeysNaming(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range Keys() {
		if seen[k.Name] {
			t.Errorf("duplicate key %s", k.Name)
		}
		seen[k.Name] = true
		if k.Flag != strings.ReplaceAll(k.Name, "_", "-") || k.Env != "MXGATEWAY_"+strings.ToUpper(k.Name) {
			t.Errorf("%s: flag %s env %s", k.Name, k.Flag, k.Env)
		}
		if k.Help == "" {
			t.Errorf("%s has no help", k.Name)
		}
	}
}

// TestDocsListEveryKey keeps docs/configuration.md complete.
func TestDocsListEveryKey(t *testing.T) {
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range Keys() {
		for _, s := range []string{"`" + k.Name + "`", k.Env, "--" + k.Flag} {
			if !bytes.Contains(doc, []byte(s)) {
				t.Errorf("docs/configuration.md does not mention %s", s)
			}
		}
	}
}

func FuzzLoadYAML(f *testing.F) {
	f.Add([]byte("listen: 127.0.0.1:6000\nmax_sessions: 3\n"))
	f.Add([]byte("tls_extra_names: [a, b]\nlease: 5m\n"))
	f.Add([]byte("max_frame_bytes: 16MiB\nreplay_age: 0s\n"))
	f.Add([]byte("a: &x [1]\nb: *x\n"))
	f.Add([]byte("listen: {a: b}\n"))
	f.Add([]byte("- 1\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := defaults(envMap(nil), "linux")
		var src Sources
		errs := applyYAML(&c, &src, data)
		for _, k := range keys {
			if src.Of(k.name) == SourceFile && len(errs) == 0 {
				// A value the file set must format and parse back.
				var c2 Config
				if err := k.set(&c2, k.format(&c)); err != nil {
					t.Fatalf("%s: formatted value does not parse: %v", k.name, err)
				}
			}
		}
		_ = c.Validate()
	})
}
