package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	mxgatewayv1grpc "github.com/mxgateway/mxgateway/api/mxgateway/v1/mxgatewayv1grpc"
	"github.com/mxgateway/mxgateway/internal/testutil"
	"github.com/mxgateway/mxgateway/test/e2e/harness"
)

// TestOpsMetricsAfterRun runs one client journey (open, stream,
// subscribe, write, events, close) plus one refused call, then scrapes
// /metrics and checks that every counter it touched moved by at least the
// expected amount since a baseline scrape, and the gauges are back to zero.
func TestOpsMetricsAfterRun(t *testing.T) {
	t.Parallel()
	g := harness.Start(t)
	admin := g.AdminKey
	c := g.Client()
	// The baseline: the gateway's own start-up (a readiness probe worker)
	// may already have moved some counters.
	base := scrape(t, g)

	s := openSession(t, c, "metrics")
	ev := s.streamEvents(&mxgatewayv1.StreamEventsRequest{})
	hlmx := s.register()
	sp := s.subscribe("TIC101.SP")
	ev.waitFor("first value of TIC101.SP", dataChangeOf(hlmx, sp))
	s.write(sp, doubleValue(66.5))
	ev.waitFor("OnWriteComplete", func(e *mxgatewayv1.Event) bool { return e.GetWriteComplete() != nil })

	// Mid-run: one session, one worker.
	mid := scrape(t, g)
	for name, want := range map[string]float64{"mxgateway_sessions_open": 1, "mxgateway_workers_running": 1} {
		if v, ok := mid.sum(name); !ok || v != want {
			t.Errorf("during the run %s = %v (present %v), want %v", name, v, ok, want)
		}
	}

	// One authentication denial.
	_, err := mxgatewayv1grpc.NewGatewayClient(g.Dial(t, "")).ListSessions(harness.Context(t, step), &mxgatewayv1.ListSessionsRequest{})
	wantCode(t, err, codes.Unauthenticated, mxgatewayv1.ReasonUnauthenticated)

	s.close()
	if _, err := ev.end(); err != nil {
		t.Fatalf("stream end: %v", err)
	}

	atLeast := []struct {
		name   string
		labels []string
		min    float64
	}{
		{"mxgateway_sessions_opened_total", nil, 1},
		{"mxgateway_sessions_closed_total", nil, 1},
		{"mxgateway_workers_started_total", nil, 1},
		{"mxgateway_workers_exited_total", nil, 1},
		{"mxgateway_workers_ended_total", []string{`cause="closed"`}, 1},
		{"mxgateway_worker_startup_duration_seconds_count", nil, 1},
		{"mxgateway_commands_started_total", []string{`command="write"`}, 1},
		{"mxgateway_commands_total", []string{`command="register"`, `outcome="ok"`}, 1},
		{"mxgateway_commands_total", []string{`command="add_item"`, `outcome="ok"`}, 1},
		{"mxgateway_commands_total", []string{`command="advise"`, `outcome="ok"`}, 1},
		{"mxgateway_commands_total", []string{`command="write"`, `outcome="ok"`}, 1},
		{"mxgateway_command_duration_seconds_count", []string{`command="write"`}, 1},
		{"mxgateway_events_received_total", nil, 2},
		{"mxgateway_events_sent_total", nil, 2},
		{"mxgateway_stream_send_latency_seconds_count", nil, 2},
		{"mxgateway_auth_denials_total", []string{`reason="UNAUTHENTICATED"`}, 1},
		{"mxgateway_build_info", nil, 1},
	}
	zero := []string{"mxgateway_sessions_open", "mxgateway_workers_running", "mxgateway_subscriber_queue_depth"}
	var m metricSamples
	eventually(t, "metrics after the run", func() error {
		m = scrape(t, g)
		var errs []error
		for _, a := range atLeast {
			v, ok := m.sum(a.name, a.labels...)
			was, _ := base.sum(a.name, a.labels...)
			if a.name == "mxgateway_build_info" {
				was = 0 // a constant, not a counter
			}
			if !ok || v-was < a.min {
				errs = append(errs, fmt.Errorf("%s%v went from %v to %v (present %v), want an increase of at least %v", a.name, a.labels, was, v, ok, a.min))
			}
		}
		for _, name := range zero {
			if v, ok := m.sum(name); !ok || v != 0 {
				errs = append(errs, fmt.Errorf("%s = %v (present %v), want 0", name, v, ok))
			}
		}
		return errors.Join(errs...)
	})
	// Per-family events: data changes and the write completion.
	for _, fam := range []string{"mxgateway_events_received_total", "mxgateway_events_sent_total"} {
		for _, label := range []string{`family="on_data_change"`, `family="on_write_complete"`} {
			if v, _ := m.sum(fam, label); v < 1 {
				t.Errorf("%s{%s} = %v, want >= 1", fam, label, v)
			}
		}
	}
	// Bounded labels: no session id, key id or reference anywhere.
	keyID := strings.Split(admin, "_")[1]
	for series := range m {
		if strings.Contains(series, s.id) || strings.Contains(series, keyID) || strings.Contains(series, "TIC101") {
			t.Errorf("series %s carries a per-session, per-key or per-reference label", series)
		}
		if !strings.HasPrefix(series, "mxgateway_") && !strings.HasPrefix(series, "go_") &&
			!strings.HasPrefix(series, "process_") && !strings.HasPrefix(series, "promhttp_") && !strings.HasPrefix(series, "grpc_") {
			t.Errorf("unexpected series %s", series)
		}
	}
}

// TestOpsHealth: /healthz is 200, /readyz becomes 200 once the readiness
// checks ran, and the gRPC health service (no key needed) says SERVING for
// the server and for mxgateway.v1.Gateway.
func TestOpsHealth(t *testing.T) {
	t.Parallel()
	g := harness.Start(t)
	if code, body := g.Get(t, "/healthz"); code != http.StatusOK || strings.TrimSpace(body) != "ok" {
		t.Fatalf("/healthz = %d %q", code, body)
	}
	testutil.Eventually(t, step, func() error {
		code, body := g.Get(t, "/readyz")
		if code != http.StatusOK || !strings.HasPrefix(body, "ready") {
			return fmt.Errorf("/readyz = %d %q", code, body)
		}
		return nil
	})
	_, body := g.Get(t, "/readyz")
	for _, line := range strings.Split(strings.TrimSpace(body), "\n")[1:] {
		if !strings.HasSuffix(line, ": ok") {
			t.Errorf("/readyz check line %q is not ok", line)
		}
	}
	hc := healthpb.NewHealthClient(g.Dial(t, ""))
	ctx := harness.Context(t, step)
	for _, svc := range []string{"", "mxgateway.v1.Gateway"} {
		hr, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || hr.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("gRPC health %q = %v, %v; want SERVING", svc, hr, err)
		}
	}
	_, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "no.such.Service"})
	wantCode(t, err, codes.NotFound, "")
}

// TestOpsConfigValidate: `config validate` names the key, the bad value
// and the range for flags, environment and file alike, and accepts a good
// configuration; `serve` refuses the same bad value before listening.
func TestOpsConfigValidate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if code, out, errOut := runBinary(t, nil, "config", "validate", "--data-dir", dir); code != 0 || !strings.Contains(out, "configuration is valid") {
		t.Fatalf("config validate of the defaults = %d\n%s%s", code, out, errOut)
	}

	code, _, errOut := runBinary(t, nil, "config", "validate", "--data-dir", dir, "--max-sessions", "0", "--heartbeat-grace", "1s")
	if code == 0 {
		t.Fatal("config validate --max-sessions 0 exited 0")
	}
	for _, want := range []string{"max_sessions", "0", "[1, 10000]", "heartbeat_grace", "1s"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("config validate output lacks %q:\n%s", want, errOut)
		}
	}

	code, _, errOut = runBinary(t, []string{"MXGATEWAY_LEASE=0s"}, "config", "validate", "--data-dir", dir)
	if code == 0 || !strings.Contains(errOut, "lease") || !strings.Contains(errOut, "0s") {
		t.Errorf("config validate with MXGATEWAY_LEASE=0s = %d:\n%s", code, errOut)
	}

	// Rules between keys that serve enforces are reported by validate too.
	for _, bad := range [][]string{
		{"--listen", "0.0.0.0:5000"}, // plaintext off loopback
		{"--auth", "none", "--http-listen", "0.0.0.0:5001"},
	} {
		code, _, errOut = runBinary(t, nil, append([]string{"config", "validate", "--data-dir", dir}, bad...)...)
		if code == 0 || !strings.Contains(errOut, "0.0.0.0") || !strings.Contains(errOut, "loopback") {
			t.Errorf("config validate %v = %d, want a refusal naming the address:\n%s", bad, code, errOut)
		}
	}

	file := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(file, []byte("max_sesions: 3\nmax_subscribers: 5000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runBinary(t, nil, "config", "validate", "--data-dir", dir, "--config", file)
	if code == 0 || !strings.Contains(errOut, "max_sesions") {
		t.Errorf("config validate of a file with a typo = %d:\n%s", code, errOut)
	}

	code, out, errOut := runBinary(t, []string{"TMPDIR=" + dir}, "serve", "--listen=127.0.0.1:0", "--http-listen=127.0.0.1:0",
		"--nats-listen=127.0.0.1:0", "--data-dir", filepath.Join(dir, "data"), "--max-sessions", "0")
	if code == 0 || strings.Contains(out, "listening on") || !strings.Contains(errOut, "max_sessions") {
		t.Errorf("serve --max-sessions 0 = exit %d, want non-zero before listening, naming max_sessions\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}

// TestOpsConfigPrint: `config print` shows each key's effective value and
// its source, in text and JSON, and never the pepper.
func TestOpsConfigPrint(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "mxgateway.yaml")
	if err := os.WriteFile(file, []byte("max_sessions: 7\nlog_level: warn\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const pepper = "1:c2VjcmV0LXBlcHBlci1mb3ItdGhlLWUyZS10ZXN0LTAxMjM0NQ"
	env := []string{"MXGATEWAY_LOG_LEVEL=debug", "MXGATEWAY_PEPPER=" + pepper, "MXGATEWAY_CONFIG=" + file}
	args := []string{"--data-dir", dir, "--lease", "3s"}

	code, out, errOut := runBinary(t, env, append([]string{"config", "print"}, args...)...)
	if code != 0 {
		t.Fatalf("config print exited %d: %s", code, errOut)
	}
	rows := map[string][2]string{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 3 {
			rows[f[0]] = [2]string{f[1], f[2]}
		}
	}
	for key, want := range map[string][2]string{
		"max_sessions": {"7", "file"},
		"log_level":    {"debug", "env"}, // env beats file
		"lease":        {"3s", "flag"},
		"listen":       {"127.0.0.1:5000", "default"},
		"data_dir":     {dir, "flag"},
	} {
		if rows[key] != want {
			t.Errorf("config print: %s = %v, want %v", key, rows[key], want)
		}
	}
	if !strings.Contains(out, file) {
		t.Errorf("config print does not name the config file %s", file)
	}

	code, out, errOut = runBinary(t, env, append([]string{"config", "print", "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("config print --json exited %d: %s", code, errOut)
	}
	var printed struct {
		ConfigFile string `json:"config_file"`
		Keys       []struct {
			Key    string `json:"key"`
			Value  any    `json:"value"`
			Source string `json:"source"`
			Env    string `json:"env"`
			Flag   string `json:"flag"`
		} `json:"keys"`
	}
	if err := json.Unmarshal([]byte(out), &printed); err != nil {
		t.Fatalf("config print --json: %v\n%s", err, out)
	}
	if printed.ConfigFile != file {
		t.Errorf("config_file = %q, want %q", printed.ConfigFile, file)
	}
	found := 0
	for _, k := range printed.Keys {
		switch k.Key {
		case "max_sessions":
			found++
			if k.Source != "file" || fmt.Sprint(k.Value) != "7" || k.Env != "MXGATEWAY_MAX_SESSIONS" || k.Flag != "--max-sessions" {
				t.Errorf("json max_sessions = %+v", k)
			}
		case "lease":
			found++
			if k.Source != "flag" {
				t.Errorf("json lease = %+v", k)
			}
		}
	}
	if found != 2 {
		t.Errorf("config print --json lacks max_sessions or lease: %s", out)
	}

	// The pepper (environment) is never printed, in any form.
	for _, o := range []string{out, errOut} {
		if strings.Contains(o, pepper) || strings.Contains(o, pepper[2:]) {
			t.Error("config print shows MXGATEWAY_PEPPER")
		}
	}
}

// TestOpsBadWorkerExecutable: serve refuses a missing, non-executable or
// wrong-architecture worker executable with a clear message, before it
// listens.
func TestOpsBadWorkerExecutable(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	text := filepath.Join(dir, "not-executable")
	if err := os.WriteFile(text, []byte("hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		want *regexp.Regexp
	}{
		{"missing", []string{"--worker-exe", filepath.Join(dir, "no-such-worker")}, regexp.MustCompile(`(?i)no-such-worker.*(not exist|not found|no such)`)},
		{"not executable", []string{"--worker-exe", text}, regexp.MustCompile(`(?i)not-executable.*(executable|permission)`)},
		// The mxaccess backend needs a windows/386 PE image; the Linux
		// binary is not one.
		{"wrong architecture", []string{"--worker-backend", "mxaccess", "--worker-exe", harness.Binary(t)}, regexp.MustCompile(`(?i)(PE|386|architecture)`)},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := filepath.Join(dir, fmt.Sprintf("data%d", i))
			args := append([]string{"serve", "--listen=127.0.0.1:0", "--http-listen=127.0.0.1:0", "--nats-listen=127.0.0.1:0", "--data-dir", data, "--sim-profile=test"}, c.args...)
			code, out, errOut := runBinary(t, []string{"TMPDIR=" + dir}, args...)
			if code == 0 || strings.Contains(out, "listening on") {
				t.Fatalf("serve %v = exit %d, want non-zero before listening\nstdout:\n%s\nstderr:\n%s", c.args, code, out, errOut)
			}
			if !c.want.MatchString(errOut) || !strings.Contains(errOut, "worker") {
				t.Fatalf("serve %v: the message does not explain the worker executable (want %v):\n%s", c.args, c.want, errOut)
			}
		})
	}
}

// TestOpsGracefulShutdown: SIGTERM with an open session and an attached
// stream: the gateway exits 0, the stream ends, and no worker or socket is
// left (TestGatewayKilled covers SIGKILL).
func TestOpsGracefulShutdown(t *testing.T) {
	t.Parallel()
	g := harness.Start(t)
	c := g.Client()
	s := openSession(t, c, "shutdown")
	ev := s.streamEvents(&mxgatewayv1.StreamEventsRequest{})
	hlmx := s.register()
	h := s.subscribe("Tank1.Level")
	ev.waitFor("first value", dataChangeOf(hlmx, h))
	// (The readiness check may run a worker of its own at any time.)
	if pids := g.WorkerPIDs(); !slices.Contains(pids, s.pid) {
		t.Fatalf("worker processes %v, want %d among them", pids, s.pid)
	}

	if err := g.Stop(); err != nil {
		t.Fatalf("gateway exit after SIGTERM: %v, want exit 0", err)
	}
	ev.end() // ends one way or another; a hang fails the test
	eventually(t, "nothing left after a graceful stop", g.Leftovers)
	reemitted := false
	for _, line := range strings.Split(g.Stderr.String(), "\n") {
		var rec struct {
			Level, Msg, Session string
			WorkerPID           int  `json:"worker_pid"`
			WorkerStderr        bool `json:"worker_stderr"`
		}
		if json.Unmarshal([]byte(line), &rec) != nil {
			continue
		}
		if rec.Level == "ERROR" {
			t.Errorf("error logged during a graceful shutdown: %s", line)
		}
		// The worker's own records come through the gateway's log with
		// the session and worker pid attached.
		if rec.WorkerStderr && rec.Session == s.id && rec.WorkerPID == s.pid {
			reemitted = true
		}
	}
	if !reemitted {
		t.Errorf("no worker log record re-emitted with session %s and worker_pid %d", s.id, s.pid)
	}
}
