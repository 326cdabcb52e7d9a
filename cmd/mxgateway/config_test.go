package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/mxgateway/mxgateway/internal/config"
)

func testEnv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestConfigCommandPrint(t *testing.T) {
	var out, errOut bytes.Buffer
	env := testEnv(map[string]string{"HOME": "/home/op", "MXGATEWAY_MAX_SESSIONS": "9"})
	code := configCommand([]string{"print", "--json", "--lease", "1m"}, &out, &errOut, env)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut.String())
	}
	var p config.Printed
	if err := json.Unmarshal(out.Bytes(), &p); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out.String())
	}
	src := map[string]config.Source{}
	for _, k := range p.Keys {
		src[k.Key] = k.Source
	}
	if src["max_sessions"] != config.SourceEnv || src["lease"] != config.SourceFlag || src["listen"] != config.SourceDefault {
		t.Fatalf("sources %v", src)
	}

	out.Reset()
	if code := configCommand([]string{"print"}, &out, &errOut, env); code != 0 || !strings.Contains(out.String(), "max_sessions") {
		t.Fatalf("text print: exit %d, %q", code, out.String())
	}
}

func TestConfigCommandValidate(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "gw.yaml")
	if err := os.WriteFile(file, []byte("max_sessions: 0\nlisten: nowhere\nlease: forever\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir() // the default data_dir is under it
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		code     int
		stdout   string   // substring
		problems []string // keys that must each be named on stderr
	}{
		{"valid defaults", []string{"validate"}, nil, 0, "configuration is valid", nil},
		{"all problems listed", []string{"validate", "--config", file, "--heartbeat-grace", "1s"}, nil, 1, "",
			[]string{"lease", "max_sessions", "listen", "heartbeat_grace"}},
		{"env problem", []string{"validate"}, map[string]string{"MXGATEWAY_LOG_LEVEL": "loud"}, 1, "", []string{"log_level"}},
		{"missing worker exe", []string{"validate", "--worker-exe", filepath.Join(dir, "nope")}, nil, 1, "", []string{"worker_exe"}},
		{"flag syntax error", []string{"validate", "--max-sessions", "x"}, nil, 2, "", []string{"max-sessions"}},
		{"unknown subcommand", []string{"frobnicate"}, nil, 2, "", nil},
		{"no subcommand", nil, nil, 2, "", nil},
		{"help", []string{"validate", "-h"}, nil, 0, "--heartbeat-grace", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"HOME": home}
			for k, v := range tc.env {
				env[k] = v
			}
			var out, errOut bytes.Buffer
			code := configCommand(tc.args, &out, &errOut, testEnv(env))
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tc.code, errOut.String())
			}
			if !strings.Contains(out.String(), tc.stdout) {
				t.Fatalf("stdout %q lacks %q", out.String(), tc.stdout)
			}
			for _, p := range tc.problems {
				if !strings.Contains(errOut.String(), p) {
					t.Errorf("stderr does not name %s:\n%s", p, errOut.String())
				}
			}
			if len(tc.problems) > 1 {
				lines := slices.DeleteFunc(strings.Split(errOut.String(), "\n"), func(s string) bool { return !strings.HasPrefix(s, "  - ") })
				if len(lines) < len(tc.problems) {
					t.Errorf("want one line per problem, got:\n%s", errOut.String())
				}
			}
		})
	}
}

func TestServiceCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := serviceCommand([]string{"install", "--config", "x.yaml"}, &out, &errOut, "linux"); code != 2 || !strings.Contains(errOut.String(), "windows only") {
		t.Fatalf("linux install: exit %d, %q", code, errOut.String())
	}
	errOut.Reset()
	if code := serviceCommand([]string{"bogus"}, &out, &errOut, "windows"); code != 2 {
		t.Fatalf("bogus: exit %d", code)
	}
	if code := serviceCommand(nil, &out, &errOut, "linux"); code != 2 {
		t.Fatalf("no args: exit %d", code)
	}
	errOut.Reset()
	// On a non-Windows build the real calls return ErrNotSupported, so the
	// windows path can be driven up to the SCM call.
	if code := serviceCommand([]string{"install", "--no-such-flag"}, &out, &errOut, "windows"); code != 2 || !strings.Contains(errOut.String(), "no-such-flag") {
		t.Fatalf("bad serve flag: exit %d, %q", code, errOut.String())
	}
}

func TestTakeNameFlag(t *testing.T) {
	tests := []struct {
		args []string
		name string
		rest []string
		bad  bool
	}{
		{nil, "mxgateway", nil, false},
		{[]string{"--name", "gw2", "--config", "c.yaml"}, "gw2", []string{"--config", "c.yaml"}, false},
		{[]string{"--config", "c.yaml", "--name=gw3"}, "gw3", []string{"--config", "c.yaml"}, false},
		{[]string{"--name"}, "", nil, true},
		{[]string{"--name="}, "", nil, true},
		{[]string{"--name", `a\b`}, "", nil, true},
	}
	for _, tc := range tests {
		name, rest, err := takeNameFlag(tc.args)
		if (err != nil) != tc.bad || name != tc.name || !slices.Equal(rest, tc.rest) {
			t.Errorf("takeNameFlag(%q) = %q, %q, %v", tc.args, name, rest, err)
		}
	}
}

func TestLoadServeConfig(t *testing.T) {
	env := testEnv(map[string]string{"HOME": t.TempDir()})
	var out, errOut bytes.Buffer
	cfg, code := loadServeConfig([]string{"--max-sessions", "5"}, &out, &errOut, env)
	if code != 0 || cfg == nil || cfg.MaxSessions != 5 {
		t.Fatalf("valid: code %d, cfg %v, stderr %q", code, cfg, errOut.String())
	}
	cfg, code = loadServeConfig([]string{"--max-sessions", "0", "--worker-backend", "mxaccess"}, &out, &errOut, env)
	if code != 2 || cfg != nil || !strings.Contains(errOut.String(), "max_sessions") || !strings.Contains(errOut.String(), "worker_exe") {
		t.Fatalf("invalid: code %d, stderr %q", code, errOut.String())
	}
	errOut.Reset()
	cfg, code = loadServeConfig([]string{"--worker-exe", filepath.Join(t.TempDir(), "missing")}, &out, &errOut, env)
	if code != 2 || cfg != nil || !strings.Contains(errOut.String(), "does not exist") {
		t.Fatalf("missing exe: code %d, stderr %q", code, errOut.String())
	}
	out.Reset()
	if cfg, code = loadServeConfig([]string{"-h"}, &out, &errOut, env); code != 0 || cfg != nil || !strings.Contains(out.String(), "--listen") {
		t.Fatalf("help: code %d, %q", code, out.String())
	}
}

func TestOpenServeLog(t *testing.T) {
	cfg := config.Default()
	cfg.LogFile = filepath.Join(t.TempDir(), "logs", "gw.log")
	cfg.LogFormat = "json"
	log, closeLog, err := openServeLog(&cfg, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hello", "api_key", "mxgw_abc_secretsecret")
	log.Debug("hidden")
	if err := closeLog(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(cfg.LogFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"msg":"hello"`) || strings.Contains(string(data), "secretsecret") || strings.Contains(string(data), "hidden") {
		t.Fatalf("log file: %s", data)
	}

	var stderr bytes.Buffer
	cfg = config.Default()
	cfg.LogLevel = "debug"
	log, closeLog, err = openServeLog(&cfg, &stderr, "")
	if err != nil {
		t.Fatal(err)
	}
	log.Debug("to stderr")
	closeLog()
	if !strings.Contains(stderr.String(), "msg=\"to stderr\"") {
		t.Fatalf("stderr: %q", stderr.String())
	}
}

func TestOpenServeLogWithoutEventLog(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("opens the real event log on Windows")
	}
	var stderr bytes.Buffer
	cfg := config.Default()
	log, closeLog, err := openServeLog(&cfg, &stderr, "mxgateway")
	if err != nil {
		t.Fatal(err)
	}
	defer closeLog()
	log.Info("still logs")
	if !strings.Contains(stderr.String(), "no event log") || !strings.Contains(stderr.String(), "still logs") {
		t.Fatalf("stderr: %q", stderr.String())
	}
}

// TestConfigValidateHostChecks: `config validate` (and serve, through
// loadServeConfig) refuses what cannot work on this machine, each problem
// named by its key.
func TestConfigValidateHostChecks(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "plain")
	brokenModel := filepath.Join(dir, "model.yaml")
	goodModel := filepath.Join(dir, "good.yaml")
	for name, body := range map[string]string{
		file:        "x",
		brokenModel: "galaxy: G\nobjects:\n  - tag: A\n    attributes:\n      - {name: X, type: MxWidget}\n",
		goodModel:   "galaxy: G\nobjects:\n  - tag: A\n",
	} {
		if err := os.WriteFile(name, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		args []string
		key  string   // the key with the problem; "" when valid
		text []string // substrings of the problem
	}{
		{"missing sim model", []string{"--sim-model", filepath.Join(dir, "none.yaml")}, "sim_model", []string{"none.yaml"}},
		{"broken sim model", []string{"--sim-model", brokenModel}, "sim_model", []string{"model.yaml:5:", "MxWidget"}},
		{"good sim model", []string{"--sim-model", goodModel}, "", nil},
		{"data dir is a file", []string{"--data-dir", file}, "data_dir", []string{"is a file"}},
		{"data dir under a file", []string{"--data-dir", filepath.Join(file, "data")}, "data_dir", []string{"cannot be created", "is not a directory"}},
		{"log file cannot be created", []string{"--log-file", filepath.Join(file, "gw.log")}, "log_file", []string{"cannot be created"}},
		{"log file is a directory", []string{"--log-file", dir}, "log_file", []string{"is a directory"}},
		{"log file creatable", []string{"--log-file", filepath.Join(dir, "logs", "gw.log")}, "", nil},
		{"same socket, mapped spelling", []string{"--listen", "127.0.0.1:5000", "--http-listen", "[::ffff:127.0.0.1]:5000"}, "http_listen", []string{"same socket"}},
		{"same socket, host name", []string{"--listen", "127.0.0.1:5000", "--http-listen", "localhost:5000"}, "http_listen", []string{"same socket"}},
		{"different ports", []string{"--listen", "127.0.0.1:5000", "--http-listen", "localhost:5001"}, "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := testEnv(map[string]string{"HOME": t.TempDir()})
			var out, errOut bytes.Buffer
			code := configCommand(append([]string{"validate"}, tc.args...), &out, &errOut, env)
			if tc.key == "" {
				if code != 0 {
					t.Fatalf("exit %d, want 0; stderr:\n%s", code, errOut.String())
				}
			} else {
				if code != 1 || !strings.Contains(errOut.String(), "- "+tc.key+":") {
					t.Fatalf("exit %d; want 1 naming %s; stderr:\n%s", code, tc.key, errOut.String())
				}
				for _, s := range tc.text {
					if !strings.Contains(errOut.String(), s) {
						t.Errorf("stderr lacks %q:\n%s", s, errOut.String())
					}
				}
			}
			// serve refuses the same before it listens.
			errOut.Reset()
			cfg, code := loadServeConfig(tc.args, &out, &errOut, env)
			if (tc.key != "") != (cfg == nil) || (tc.key != "" && !strings.Contains(errOut.String(), "- "+tc.key+":")) {
				t.Fatalf("loadServeConfig: code %d, stderr %q", code, errOut.String())
			}
		})
	}
}
