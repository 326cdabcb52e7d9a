package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mxgateway/mxgateway/test/e2e/harness"
	"go.uber.org/goleak"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func TestMain(m *testing.M) { harness.Main(m) }

type result struct {
	code           int
	stdout, stderr string
}

// invoke runs mxctl in-process.
func invoke(t *testing.T, envMap map[string]string, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	code := run(ctx, args, strings.NewReader(stdin), &out, &errb, func(k string) string { return envMap[k] })
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

var (
	timeRE = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z`)
	durRE  = regexp.MustCompile(`in [0-9.]+(ms|s|m)`)
	// keyRE matches a full API key; keyIDRE captures its id.
	keyRE    = regexp.MustCompile(`mxgw_[a-z2-7]{16}_[A-Za-z0-9_-]{43}`)
	keyIDRE  = regexp.MustCompile(`^mxgw_([a-z2-7]{16})_([A-Za-z0-9_-]{43})$`)
	lastUsed = regexp.MustCompile(`"last_used_at":"[^"]*"`)
	// prefaceRE matches the socket-level cause of a refused handshake, which
	// the OS reports as EOF or as a reset depending on timing.
	prefaceRE = regexp.MustCompile(`error reading server preface: [^)]*`)
)

// mask makes output deterministic: timestamps, full keys and the gateway
// address vary; repl replaces further strings (key ids, paths) first.
func mask(s, addr string, repl ...string) string {
	s = keyRE.ReplaceAllString(s, "<KEY>")
	// Last-use times reach the key store about once a minute: "-" or a time.
	s = lastUsed.ReplaceAllString(s, `"last_used_at":"<LAST_USED>"`)
	s = prefaceRE.ReplaceAllString(s, "error reading server preface: <CAUSE>")
	if len(repl) > 0 {
		s = strings.NewReplacer(repl...).Replace(s)
	}
	if addr != "" {
		s = strings.ReplaceAll(s, addr, "<ADDR>")
	}
	s = timeRE.ReplaceAllStringFunc(s, func(m string) string {
		// Keep the demo Galaxy's fixed times; mask "now".
		if strings.HasPrefix(m, "2025-") {
			return m
		}
		return "<TIME>"
	})
	return durRE.ReplaceAllString(s, "in <DUR>")
}

func golden(t *testing.T, name string, r result, addr string, repl ...string) {
	t.Helper()
	got := fmt.Sprintf("exit: %d\n--- stdout\n%s--- stderr\n%s", r.code, mask(r.stdout, addr, repl...), mask(r.stderr, addr, repl...))
	compareGolden(t, name, got)
}

func compareGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s:\n--- got\n%s\n--- want\n%s", name, path, got, want)
	}
}

// TestGolden runs mxctl against the real gateway and simulator and compares
// output formats and exit codes with testdata/*.golden.
func TestGolden(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	g := harness.Start(t)
	env := map[string]string{"MXGATEWAY_ADDR": g.GRPCAddr, "MXGATEWAY_DATA_DIR": g.DataDir}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range env {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	emptyDir := t.TempDir() // a data directory without admin.key
	fixed := []string{"Tank1.Material", "Tank1.Volume", "Pump1.StartCount", "Tank1.HighLevel", "Line1.Counts[]",
		"Line1.Recipe[]", "Valve1.TravelTime", "Tank1.LastCleaned", "Line1.Operator"}
	cases := []struct {
		name  string
		env   map[string]string
		stdin string
		args  []string
	}{
		{"read_table", env, "", append([]string{"read"}, fixed...)},
		{"read_json", env, "", append([]string{"read", "--json"}, fixed...)},
		{"read_bad_reference", env, "", []string{"read", "Tank1.Material", "Nope.Missing", "Line1.Counts"}},
		{"write_ok", env, "", []string{"write", "TIC101.SP", "42.5"}},
		{"write_negative", env, "", []string{"write", "Pump1.StartCount", "-5"}},
		{"write_json", env, "", []string{"write", "Pump1.StartCount", "7", "--json"}},
		{"write_typed", env, "", []string{"write", "Tank1.Material", "Water", "--type", "string", "--timestamp", "2026-01-02T03:04:05Z"}},
		{"write_array", env, "", []string{"write", "Line1.Counts[]", "[1,2,3,4,5,6,7,8]"}},
		{"write_security_refused", env, "", []string{"write", "TIC101.PV", "1"}},
		{"write_bad_value", env, "", []string{"write", "TIC101.SP", "abc"}},
		{"write_bad_reference", env, "", []string{"write", "Nope.Missing", "1"}},
		{"write_secured", with("MXCTL_PASSWORD", "operator1"), "", []string{"write", "Pump1.StartCmd", "true", "--secured", "--user", "operator"}},
		{"write_verified", with("MXCTL_PASSWORD", "operator1", "MXCTL_VERIFIER_PASSWORD", "supervisor1"), "", []string{"write", "Valve1.Cmd", "2", "--secured", "--user", "operator", "--verifier", "supervisor"}},
		{"write_password_stdin", env, "operator1\n", []string{"write", "Pump1.StartCmd", "true", "--secured", "--user", "operator"}},
		{"write_bad_password", with("MXCTL_PASSWORD", "wrong"), "", []string{"write", "Pump1.StartCmd", "true", "--user", "operator"}},
		{"write_no_password", env, "", []string{"write", "Pump1.StartCmd", "true", "--secured", "--user", "operator"}},
		// The first values of several items come in their advise order;
		// a bad reference's error is not ordered with them (the valid ones
		// wait for the Galaxy's current value), so it has a case of its own.
		{"subscribe_json", env, "", []string{"subscribe", "Tank1.Material", "Pump1.StartCount", "--duration", "2s"}},
		{"subscribe_json_bad_reference", env, "", []string{"subscribe", "Nope.Missing", "--duration", "500ms"}},
		{"health", env, "", []string{"health"}},
		{"health_json", env, "", []string{"health", "--json"}},
		{"usage_read_no_args", env, "", []string{"read"}},
		{"usage_unknown_command", env, "", []string{"frobnicate"}},
		{"usage_bad_flag", env, "", []string{"read", "--bogus", "X"}},
		{"usage_write_verifier_without_secured", env, "", []string{"write", "A.B", "1", "--verifier", "x"}},
		{"usage_apikey_create", env, "", []string{"apikey", "create", "--name", "x"}},
		{"unreachable", with("MXGATEWAY_ADDR", "127.0.0.1:1"), "", []string{"read", "Tank1.Material"}},
		{"tls_to_plaintext", env, "", []string{"read", "--tls", "Tank1.Material"}},
		{"key_garbage", with("MXGATEWAY_API_KEY", "garbage"), "", []string{"read", "Tank1.Material"}},
		{"key_unknown", with("MXGATEWAY_API_KEY", "mxgw_aaaaaaaaaaaaaaaa_"+strings.Repeat("A", 43)), "", []string{"read", "Tank1.Material"}},
		{"key_flag_wins", env, "", []string{"sessions", "--api-key", "garbage"}},
		{"key_none", with("MXGATEWAY_DATA_DIR", emptyDir), "", []string{"read", "Tank1.Material"}},
		{"usage_apikey_no_subcommand", env, "", []string{"apikey"}},
		{"usage_apikey_unknown_subcommand", env, "", []string{"apikey", "delete", "x"}},
		{"usage_apikey_revoke_no_id", env, "", []string{"apikey", "revoke"}},
		{"help_apikey", env, "", []string{"help", "apikey"}},
		{"insecure_remote", with("MXGATEWAY_ADDR", "192.0.2.1:5000"), "", []string{"read", "--insecure", "Tank1.Material"}},
		{"help_read", env, "", []string{"help", "read"}},
		{"help_write", env, "", []string{"write", "--help"}},
		{"help", env, "", []string{"--help"}},
		{"global_flags_before_command", env, "", []string{"--api-key", "garbage", "--timeout", "10s", "read", "Tank1.Material"}},
		{"usage_unknown_flag_before_command", env, "", []string{"--json", "read", "Tank1.Material"}},
		{"usage_bench_sessions", env, "", []string{"bench", "--calls", "2", "--sessions", "3"}},
		{"browse_roots", env, "", []string{"browse"}},
		{"browse_area", env, "", []string{"browse", "Plant.TankFarm"}},
		{"browse_object_json", env, "", []string{"browse", "Tank1", "--json"}},
		{"browse_builtin", env, "", []string{"browse", "Plant.TankFarm.Tank1", "--builtin"}},
		{"browse_unknown", env, "", []string{"browse", "Plant.Nowhere"}},
		{"usage_browse_two_paths", env, "", []string{"browse", "A", "B"}},
		{"tree", env, "", []string{"tree"}},
		{"tree_depth", env, "", []string{"tree", "Plant", "--depth", "1"}},
		{"tree_json", env, "", []string{"tree", "Plant.Packaging", "--json"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := invoke(t, tc.env, tc.stdin, tc.args...)
			oneLineErrors(t, r)
			golden(t, tc.name, r, g.GRPCAddr, emptyDir, "<EMPTY_DATA_DIR>")
		})
	}
}

// TestBench: mxctl bench makes the calls it says, over the sessions it
// says, all answered from the cache, and reports ordered percentiles.
func TestBench(t *testing.T) {
	g := harness.Start(t)
	env := map[string]string{"MXGATEWAY_ADDR": g.GRPCAddr, "MXGATEWAY_DATA_DIR": g.DataDir}
	r := invoke(t, env, "", "bench", "Tank1.Level", "--calls", "50", "--sessions", "3", "--json")
	if r.code != exitOK {
		t.Fatalf("bench: %+v", r)
	}
	var got struct {
		Calls, Failed, Sessions  int
		P50, P90, P99, Max, Rate float64
	}
	var raw map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &raw); err != nil {
		t.Fatalf("bench --json: %v\n%s", err, r.stdout)
	}
	num := func(k string) float64 { f, _ := raw[k].(float64); return f }
	got.Calls, got.Failed, got.Sessions = int(num("calls")), int(num("failed")), int(num("sessions"))
	got.P50, got.P90, got.P99, got.Max, got.Rate = num("p50_ms"), num("p90_ms"), num("p99_ms"), num("max_ms"), num("calls_per_second")
	if got.Calls != 50 || got.Failed != 0 || got.Sessions != 3 || got.Rate <= 0 ||
		!(0 < got.P50 && got.P50 <= got.P90 && got.P90 <= got.P99 && got.P99 <= got.Max) {
		t.Fatalf("bench reported %+v", got)
	}
	// The sessions are closed afterwards.
	list := invoke(t, env, "", "sessions", "--json")
	if strings.Contains(list.stdout, "mxctl bench") {
		t.Fatalf("bench left sessions open: %s", list.stdout)
	}
	// A bad reference fails before measuring.
	if r := invoke(t, env, "", "bench", "Nope.Missing", "--calls", "5", "--sessions", "1"); r.code != exitFailed {
		t.Fatalf("bench on a bad reference: %+v", r)
	}
}

// TestReadAfterWriteSameSession checks exit codes that depend on gateway
// state beyond one command: sessions and version.
func TestSessionsAndVersion(t *testing.T) {
	g := harness.Start(t)
	env := map[string]string{"MXGATEWAY_ADDR": g.GRPCAddr, "MXGATEWAY_DATA_DIR": g.DataDir}
	r := invoke(t, env, "", "sessions")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "SESSION") {
		t.Fatalf("sessions: %+v", r)
	}
	r = invoke(t, env, "", "sessions", "--json")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "[") {
		t.Fatalf("sessions --json: %+v", r)
	}
	r = invoke(t, env, "", "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "mxctl ") {
		t.Fatalf("version: %+v", r)
	}
	// Only an admin key may list keys: the local first-run key was found.
	r = invoke(t, env, "", "apikey", "list")
	if r.code != exitOK || !strings.HasPrefix(r.stdout, "ID  ") || !strings.Contains(r.stdout, "bootstrap admin") {
		t.Fatalf("apikey list with the local admin key: %+v", r)
	}
}

func TestDataDir(t *testing.T) {
	cases := []struct {
		env  map[string]string
		goos string
		want string
	}{
		{map[string]string{"MXGATEWAY_DATA_DIR": "/d"}, "linux", "/d"},
		{map[string]string{"XDG_STATE_HOME": "/s/", "HOME": "/h"}, "linux", "/s/mxgateway"},
		{map[string]string{"HOME": "/h"}, "linux", "/h/.local/state/mxgateway"},
		{map[string]string{"HOME": "/h"}, "darwin", "/h/Library/Application Support/mxgateway"},
		{map[string]string{"ProgramData": `D:\PD`}, "windows", `D:\PD\mxgateway`},
		{map[string]string{}, "windows", `C:\ProgramData\mxgateway`},
		{map[string]string{}, "linux", ""},
	}
	for _, tc := range cases {
		if got := dataDir(func(k string) string { return tc.env[k] }, tc.goos); got != tc.want {
			t.Errorf("dataDir(%v, %s) = %q, want %q", tc.env, tc.goos, got, tc.want)
		}
	}
}

// TestLocalAdminKeyOnlyForLoopback: the first-run key is read from the data
// directory, and never offered to a remote address.
func TestLocalAdminKey(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, adminKeyFile), []byte("mxgw_abc_def\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, adminKeyFile)
	envs := map[string]string{"MXGATEWAY_DATA_DIR": dir}
	c := &cli{env: func(k string) string { return envs[k] }}
	if got, from := c.localAdminKey(); got != "mxgw_abc_def" || from != path {
		t.Fatalf("localAdminKey = %q from %q", got, from)
	}
	cases := []struct {
		flag, env, addr  string
		wantKey, wantSrc string
	}{
		{"", "", "127.0.0.1:5000", "mxgw_abc_def", path},
		{"", "", "localhost:7000", "mxgw_abc_def", path},
		{"", "", "[::1]:5000", "mxgw_abc_def", path},
		{"", "", "192.0.2.1:5000", "", ""}, // never sent to a remote address
		{"", "", "gw.example.com", "", ""},
		{"", "mxgw_env", "192.0.2.1:5000", "mxgw_env", "MXGATEWAY_API_KEY"},
		{"mxgw_flag", "mxgw_env", "127.0.0.1:5000", "mxgw_flag", "--api-key"},
		{"", "mxgw_env", "127.0.0.1:5000", "mxgw_env", "MXGATEWAY_API_KEY"},
	}
	for _, tc := range cases {
		envs["MXGATEWAY_API_KEY"] = tc.env
		key, src := c.apiKey(&connFlags{apiKey: tc.flag}, tc.addr)
		if key != tc.wantKey || src != tc.wantSrc {
			t.Errorf("apiKey(flag %q, env %q, %s) = %q from %q, want %q from %q", tc.flag, tc.env, tc.addr, key, src, tc.wantKey, tc.wantSrc)
		}
	}
	// An empty data directory: no key.
	envs = map[string]string{"MXGATEWAY_DATA_DIR": t.TempDir()}
	if key, src := c.apiKey(&connFlags{}, "127.0.0.1:5000"); key != "" || src != "" {
		t.Fatalf("apiKey without admin.key = %q from %q", key, src)
	}
}

func TestParseInterspersed(t *testing.T) {
	cmd := &command{name: "x"}
	c := &cli{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
	fs := c.flagSet(cmd, nil)
	j := fs.Bool("json", false, "")
	d := fs.Duration("d", 0, "")
	pos, _, ok := c.parse(cmd, fs, []string{"-7", "A", "--json", "-5", "B", "--d", "-1s", "--", "--C", "-3"})
	if !ok || !*j || *d != -time.Second || strings.Join(pos, " ") != "-7 A -5 B --C -3" {
		t.Fatalf("pos=%q json=%v d=%v ok=%v", pos, *j, *d, ok)
	}
}
